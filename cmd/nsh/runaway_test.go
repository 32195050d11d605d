package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"nsh.dev/nsh/internal/leakcheck"
)

// cancelBound is what issue 18 item 4 asks of a SIGINT: the script is
// cancelled and nsh has exited, teardown done, within 100 ms. It is
// checked on the median of several runs (and a second round of them if
// the first median is over), so that runs delayed by the scheduler of a
// loaded shared machine do not fail the test, while a cancellation that
// is slow every time does.
const cancelBound = 100 * time.Millisecond

// cancelRuns is how many times each case runs.
const cancelRuns = 5

// TestSIGINTCancelsWithin100ms sends a real SIGINT to the real nsh binary
// while its script spins in a loop or blocks in a builtin (ping with a
// long timeout, p.wait(), run("sleep ..."), sleep(), p.expect(),
// readline()), and measures from the kill(2) to nsh's exit: status 130,
// no process of the script is left, and the
// median over cancelRuns runs is under cancelBound. (It would have caught
// none of issue 15's fourteen defects: it guards the cancellation of every
// blocking builtin, which TestInterruptEndsWaits checks in-process only.)
func TestSIGINTCancelsWithin100ms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (rootless mode puts a supervisor in between)")
	}
	leakcheck.Check(t)
	// A script that made nothing yet handles no signals: the kernel ends
	// nsh (death by SIGINT, "plain"). From the first builtin that may make
	// something (here namespaces()), nsh cancels the script, tears down
	// and exits 130.
	cases := []struct{ name, script, sleep string }{
		{"plain loop", "x = 0\nwhile True:\n    x += 1\n", ""},
		{"plain sleep", "sleep(100)\n", ""},
		{"loop", "namespaces()\nx = 0\nwhile True:\n    x += 1\n", ""},
		{"ping", `unshare("net")
veth("cn-a", "cn-b", addr = "10.77.0.1/24")
ping("10.77.0.2", timeout = 100)
`, ""},
		{"wait", `namespaces()
p = spawn(["sleep", "4101"])
p.wait()
`, "4101"},
		{"run", `namespaces()
run(["sleep", "4102"])
`, "4102"},
		{"sleep", "namespaces()\nsleep(100)\n", ""},
		{"expect", `namespaces()
p = spawn(["sleep", "4103"], stdout = True)
p.expect("never", timeout = None)
`, "4103"},
		{"readline", `namespaces()
p = spawn(["sleep", "4104"], stdout = True)
p.readline()
`, "4104"},
	}
	var figures []string
	for _, c := range cases {
		if c.sleep != "" {
			killSleepers(t, c.sleep)
		}
		// A second round only when the first one's median is over the
		// bound: a burst of load on the shared machine passes, a
		// cancellation that is slow every time does not.
		var took []time.Duration
		var med time.Duration
		for round := 0; round < 2 && (round == 0 || med > cancelBound); round++ {
			took = took[:0]
			for i := 0; i < cancelRuns; i++ {
				d, err := cancelOnce(c.script, c.sleep, strings.HasPrefix(c.name, "plain"))
				if err != nil {
					t.Errorf("%s, run %d: %v", c.name, i, err)
					break
				}
				took = append(took, d)
			}
			if len(took) < cancelRuns {
				break
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			med = took[len(took)/2]
		}
		if len(took) < cancelRuns {
			continue
		}
		figures = append(figures, fmt.Sprintf("%s %v (%v-%v)", c.name, med.Round(100*time.Microsecond), took[0].Round(100*time.Microsecond), took[len(took)-1].Round(100*time.Microsecond)))
		if med > cancelBound {
			t.Errorf("%s: SIGINT to exit took %v (median of %v, in two rounds), want under %v", c.name, med, took, cancelBound)
		}
	}
	t.Logf("SIGINT to exit, median (min-max) of %d runs: %s", cancelRuns, strings.Join(figures, "; "))
}

// cancelOnce starts nsh with script (after a line that prints "ready"),
// waits until it blocks, sends SIGINT and returns how long nsh took to
// exit. plain says nsh dies of the signal rather than exiting 130. sleep
// is the argument of a sleep the script starts, which must be gone when
// nsh has exited.
func cancelOnce(script, sleep string, plain bool) (time.Duration, error) {
	cmd := exec.Command(nshBin, "-c", "print(\"ready\")\n"+script)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	buf := make([]byte, 6)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, fmt.Errorf("did not start: %q %v; stderr %q", buf, err, stderr.String())
	}
	// The script is in its loop or blocking call well before this.
	time.Sleep(300 * time.Millisecond)
	if sleep != "" && len(sleepers(sleep)) == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, fmt.Errorf("sleep %s is not running; stderr %q", sleep, stderr.String())
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	took := time.Since(start)
	ee, ok := err.(*exec.ExitError)
	if plain {
		if ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGINT {
			return 0, fmt.Errorf("exit %v, want death by SIGINT; stderr %q", err, stderr.String())
		}
	} else if !ok || ee.ExitCode() != 130 {
		return 0, fmt.Errorf("exit %v, want status 130; stderr %q", err, stderr.String())
	}
	if sleep != "" {
		if pids := sleepers(sleep); len(pids) > 0 {
			return 0, fmt.Errorf("sleep %s survived nsh: %v", sleep, pids)
		}
	}
	return took, nil
}

// TestStepLimitEdges runs a script at the exact step count it needs
// (found by bisection, so the test does not depend on go.starlark.net's
// accounting) and one step less: the first passes, the second fails with
// the limit and the script's line, exit 1, and tears down what the script
// made (a named netns with persist=False, whose /run/netns entry must go).
// Issue 18 item 4. (Issue 15 item 5 asked for the flag; no defect of the
// fourteen was about it: this guards the flag's edges and its teardown.)
func TestStepLimitEdges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a named netns)")
	}
	leakcheck.Check(t)
	const script = `netns("ms-edge", persist = False)
n = 0
for i in range(1000):
    n += i
print(n)
`
	passes := func(steps int) (bool, string) {
		out, stderr, code := nsh(t, "", fmt.Sprintf("--max-steps=%d", steps), "-c", script)
		if _, err := os.Stat("/run/netns/ms-edge"); err == nil {
			t.Fatalf("--max-steps=%d: /run/netns/ms-edge left behind", steps)
		}
		if code == 0 && out == "499500\n" {
			return true, ""
		}
		crashFree(t, fmt.Sprintf("--max-steps=%d", steps), stderr, code, fmt.Sprintf("step limit of %d exceeded (nsh --max-steps)", steps))
		if !regexp.MustCompile(`(?m)^-c:[2-5]:[0-9]+: `).MatchString(stderr) {
			t.Errorf("--max-steps=%d: the error names no line of the loop: %q", steps, stderr)
		}
		return false, stderr
	}
	lo, hi := 1, 1<<20 // lo fails, hi passes
	if ok, stderr := passes(hi); !ok {
		t.Fatalf("the script fails with %d steps: %s", hi, stderr)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if ok, _ := passes(mid); ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	// The loop's 1,000 iterations cost a few steps each.
	if hi < 1000 || hi > 20000 {
		t.Errorf("the script needs %d steps; want between 1,000 and 20,000", hi)
	}
	if ok, _ := passes(hi); !ok {
		t.Errorf("--max-steps=%d (exactly what it needs) fails", hi)
	}
	if ok, _ := passes(hi - 1); ok {
		t.Errorf("--max-steps=%d (one step less) passes", hi-1)
	}
	t.Logf("the script needs %d steps: --max-steps=%d passes, %d fails", hi, hi, hi-1)
}

// TestMemoryLimitEdges holds a heap of about 0.6 and 1.4 times a
// --max-memory of 100 MiB: the first passes, the second is cancelled with
// the limit named, exit 1, teardown done (a named netns with
// persist=False). Issue 18 item 4; the memory limit is issue 15 item 5's
// fix, and the second run is its defect (growth until the OOM killer)
// made small.
func TestMemoryLimitEdges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a named netns)")
	}
	leakcheck.Check(t)
	hold := func(mib int) string {
		return fmt.Sprintf(`netns("mm-edge", persist = False)
x = []
for i in range(%d):
    x.append("a" * 1048576 + str(i))
print(len(x))
`, mib)
	}
	out, stderr, code := nsh(t, "", "--max-memory=100MiB", "-c", hold(60))
	if code != 0 || out != "60\n" {
		t.Errorf("60 MiB under a 100 MiB limit: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	_, stderr, code = nsh(t, "", "--max-memory=100MiB", "-c", hold(140))
	crashFree(t, "140 MiB under a 100 MiB limit", stderr, code, "memory limit of 100 MiB exceeded (nsh --max-memory)")
	if !regexp.MustCompile(`(?m)^-c:[2-5]:[0-9]+: `).MatchString(stderr) {
		t.Errorf("the error names no line of the script: %q", stderr)
	}
	if _, err := os.Stat("/run/netns/mm-edge"); err == nil {
		t.Error("/run/netns/mm-edge left behind after the memory limit")
	}
}
