package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 15 item 4: captured output is capped, so a producer of hundreds of
// megabytes costs nsh the cap, not the stream: the peak RSS of the nsh
// process (its rusage) stays well under what it read.
func TestItem4OutputCapBoundsMemory(t *testing.T) {
	for _, c := range []struct {
		script, want string
		maxKB        int64
	}{
		// 200 MB through a 1 MiB cap, and yes(1) for a second.
		{`r = run("head -c 200000000 /dev/zero", max_output = 1 << 20)
print(len(r.stdout), r.truncated)
s = spawn("yes", stdout = True, max_output = 1 << 20)
run("sleep 1")
s.kill()
s.wait()
print(len(s.stdout), s.truncated)
`, "1048576 True\n1048576 True\n", 100 << 10},
		// The default cap, 64 MiB: before it, this run peaked at 900 MB.
		{`r = run("head -c 200000000 /dev/zero")
print(len(r.stdout), r.truncated)
`, "67108864 True\n", 400 << 10},
	} {
		cmd := exec.Command(nshBin, "-c", c.script)
		out, stderr, code := runCmd(t, cmd)
		if code != 0 || out != c.want {
			t.Errorf("%s: code %d, stdout %q, stderr %q; want %q", c.script, code, out, stderr, c.want)
			continue
		}
		peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
		if peak > c.maxKB {
			t.Errorf("%s: nsh peaked at %d MB, want under %d MB", c.script, peak>>10, c.maxKB>>10)
		}
	}
}

// sleepers returns the pids of live (not zombie) processes whose command
// line is "sleep ARG".
func sleepers(arg string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || string(b) != "sleep\x00"+arg+"\x00" {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && strings.HasPrefix(string(st[i+1:]), " Z") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// noSleepers fails t if a "sleep ARG" for one of args is still alive after
// a grace period (the kernel's exit is asynchronous), and kills it.
func noSleepers(t *testing.T, grace time.Duration, args ...string) {
	t.Helper()
	deadline := time.Now().Add(grace)
	for _, a := range args {
		for {
			pids := sleepers(a)
			if len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("sleep %s survived nsh: pids %v", a, pids)
				for _, pid := range pids {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// killSleepers is the cleanup of a test that starts "sleep ARG"s.
func killSleepers(t *testing.T, args ...string) {
	t.Cleanup(func() {
		for _, a := range args {
			for _, pid := range sleepers(a) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// grandchildren starts, from a script, a spawn() and a run() whose shells
// leave background sleeps (uniquely numbered from base) and waits until
// they all run; run()'s sleep outlives run() (as a daemon would). The
// sleeps do not hold the test's pipes: without the fix, the test fails
// rather than hangs.
func grandchildren(base int) (string, []string) {
	a := []string{strconv.Itoa(base), strconv.Itoa(base + 1), strconv.Itoa(base + 2)}
	script := fmt.Sprintf(`
p = spawn(["sh", "-c", "sleep %[1]s & sleep %[2]s"], stdout = False, stderr = False)
run(["sh", "-c", "sleep %[3]s >/dev/null 2>&1 &"])
run(["sh", "-c", "until pgrep -xf 'sleep %[1]s' && pgrep -xf 'sleep %[2]s'; do sleep 0.01; done"], timeout = 10)
r = run(["pgrep", "-xf", "sleep %[3]s"], check = False)
if not r.ok:
    fail("the daemon-like sleep of run() did not outlive run()")
`, a[0], a[1], a[2])
	return script, a
}

// Issue 15 item 8: no process a run starts, nor any descendant, outlives
// the run: background sleeps of a spawn() and of a run() are gone once the
// script ends.
func TestItem8GrandchildrenDie(t *testing.T) {
	script, args := grandchildren(3021)
	killSleepers(t, args...)
	out, stderr, code := nsh(t, "", "-c", script)
	if code != 0 {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, stderr)
	}
	noSleepers(t, time.Second, args...)
}

// The same without root and without rootless mode (no cgroup can be made:
// nsh is a child subreaper and kills the orphans it adopted).
func TestItem8GrandchildrenDieUnprivileged(t *testing.T) {
	script, args := grandchildren(3024)
	killSleepers(t, args...)
	out, stderr, code := asUser(t, "65534", "-c", script)
	if code != 0 {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, stderr)
	}
	noSleepers(t, time.Second, args...)
}

// ... and when nsh is killed with SIGKILL (no teardown runs): the reaper
// kills the run's cgroup.
func TestItem8SIGKILLTakesGrandchildren(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a cgroup for the run; rootless nsh has no way after SIGKILL)")
	}
	script, args := grandchildren(3027)
	killSleepers(t, args...)
	cmd := startUntilReady(t, script)
	for _, a := range args {
		if len(sleepers(a)) == 0 {
			t.Fatalf("sleep %s is not running", a)
		}
	}
	reaper := childNamed(cmd.Process.Pid, "nsh-reaper")
	cmd.Process.Kill()
	cmd.Wait()
	noSleepers(t, 2*time.Second, args...)
	if reaper == 0 {
		t.Fatal("nsh started no reaper")
	}
	waitExited(t, reaper, "the reaper")
}

// waitExited fails the test unless process pid (what) has exited, or is a
// zombie, within 5 seconds of nsh's SIGKILL.
func waitExited(t *testing.T, pid int, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs 5 s after SIGKILL of nsh", what, pid)
		}
	}
}

// childNamed returns the pid of a child of pid whose comm is name, or 0.
func childNamed(pid int, name string) int {
	// A child is named once it runs: the reaper, say, is /proc/self/exe
	// re-executed, which names itself nsh-reaper a moment after its exec,
	// and nsh does not wait for that. Look for 5 s.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c := childNamedNow(pid, name); c != 0 || time.Now().After(deadline) {
			return c
		}
	}
}

// childNamedNow is childNamed without waiting.
func childNamedNow(pid int, name string) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if comm, _ := os.ReadFile("/proc/" + f + "/comm"); strings.TrimSpace(string(comm)) == name {
				c, _ := strconv.Atoi(f)
				return c
			}
		}
	}
	return 0
}

// run() returns when its command exits, not when the captured pipes
// close: a background process that keeps stdout open does not hold it up
// (before, this run() waited for the sleep, 3030 s). What was written
// before the exit is kept.
func TestItem8RunReturnsAtExit(t *testing.T) {
	killSleepers(t, "3030", "3031")
	cmd := exec.Command(nshBin, "-c", `
r = run(["sh", "-c", "echo before; sleep 3030 & echo after >&2"])
print(r.stdout.strip(), r.stderr.strip())
r = run(["sh", "-c", "sleep 3031 & exec sleep 5"], timeout = 0.3, check = False)
`)
	done := make(chan struct{})
	var out, stderr string
	var code int
	cmd.WaitDelay = 5 * time.Second // the sleeps hold nsh's stdout if they survive
	go func() { out, stderr, code = runCmd(t, cmd); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("run() still waits for the background process's pipe after 60 s")
	}
	if out != "before after\n" || code != 1 || !strings.Contains(stderr, "timed out after 300ms") {
		t.Errorf("code %d, stdout %q, stderr %q", code, out, stderr)
	}
	noSleepers(t, time.Second, "3030", "3031")
}

// ... and by rootless nsh killed with SIGKILL: its reaper kills every
// process in the user namespace nsh made for the run.
func TestItem8SIGKILLTakesGrandchildrenRootless(t *testing.T) {
	script, args := grandchildren(3032)
	killSleepers(t, args...)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("setpriv not installed")
		}
		os.Chmod(filepath.Dir(nshBin), 0o755)
		cmd = exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", nshBin, "--rootless", "-c", script+readyLoop)
		cmd.Env = append(os.Environ(), "HOME=/tmp")
	} else {
		cmd = exec.Command(nshBin, "--rootless", "-c", script+readyLoop)
	}
	waitReady(t, cmd)
	for _, a := range args {
		if len(sleepers(a)) == 0 {
			t.Fatalf("sleep %s is not running", a)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	noSleepers(t, 3*time.Second, args...)
}
