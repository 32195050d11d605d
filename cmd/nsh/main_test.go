package main_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/startup"
)

var nshBin string

func TestMain(m *testing.M) {
	if os.Getenv("XDG_RUNTIME_DIR") == "" {
		// Where a rootless nsh keeps its labs (setpriv leaves it unset).
		if d, err := os.MkdirTemp("", "nsh-xdg"); err == nil {
			os.Setenv("XDG_RUNTIME_DIR", d)
			code := runTests(m.Run)
			os.RemoveAll(d)
			os.Exit(code)
		}
	}
	os.Exit(runTests(m.Run))
}

// runTests builds nsh (unless NSH_BIN names a prebuilt one) and runs the
// tests.
func runTests(run func() int) int {
	if bin := os.Getenv("NSH_BIN"); bin != "" {
		// Prebuilt (the rootless run cannot build).
		nshBin = bin
		return run()
	}
	dir, err := os.MkdirTemp("", "nsh-cmd-test")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	nshBin = filepath.Join(dir, "nsh")
	if out, err := exec.Command("go", "build", "-o", nshBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building nsh: %v\n%s", err, out)
		return 1
	}
	defer func() {
		if faultDir != "" {
			os.RemoveAll(faultDir)
		}
	}()
	return run()
}

func nsh(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(nshBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns its stdout, stderr and exit code.
func runCmd(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestArgv(t *testing.T) {
	out, _, code := nsh(t, "", "-c", "print(argv)", "a", "b")
	if code != 0 || out != "[\"-c\", \"a\", \"b\"]\n" {
		t.Errorf("got %d %q", code, out)
	}
	script := filepath.Join(t.TempDir(), "s.star")
	os.WriteFile(script, []byte("print(argv)\n"), 0o644)
	out, _, _ = nsh(t, "", script, "x")
	if out != fmt.Sprintf("[%q, \"x\"]\n", script) {
		t.Errorf("script argv %q", out)
	}
	out, _, _ = nsh(t, "print(argv)\n", "-", "y")
	if out != "[\"-\", \"y\"]\n" {
		t.Errorf("stdin argv %q", out)
	}
	out, _, _ = nsh(t, "print('from stdin')\n")
	if out != "from stdin\n" {
		t.Errorf("non-terminal stdin: %q", out)
	}
}

func TestExitStatus(t *testing.T) {
	script := filepath.Join(t.TempDir(), "bad.star")
	os.WriteFile(script, []byte("x = 1\nunshare(\"bogus\")\n"), 0o644)
	_, stderr, code := nsh(t, "", script)
	if code != 1 || !strings.HasPrefix(stderr, script+":2:8: unshare: unknown namespace kind \"bogus\"") {
		t.Errorf("got %d %q", code, stderr)
	}
	if _, _, code := nsh(t, "", "-c", "fail('no')"); code != 1 {
		t.Errorf("fail(): %d", code)
	}
	if _, _, code := nsh(t, "", "-c", "exit(7)"); code != 7 {
		t.Errorf("exit(7): %d", code)
	}
	if _, stderr, code := nsh(t, "", "--nope"); code != 2 || !strings.Contains(stderr, `unknown flag "--nope"`) {
		t.Errorf("unknown flag: %d %q", code, stderr)
	}
	if _, _, code := nsh(t, "", "/no/such/file.star"); code != 2 {
		t.Errorf("missing file: %d", code)
	}
	out, _, code := nsh(t, "", "--help")
	for _, flag := range []string{"-c CODE", "-x", "--trace FILE", "-i", "--help", "--version", "nsh doc"} {
		if code != 0 || !strings.Contains(out, flag) {
			t.Errorf("--help does not document %s", flag)
		}
	}
	if out, _, code := nsh(t, "", "doc", "hostname"); code != 0 || !strings.Contains(out, "hostname(name=None, ns=None)") {
		t.Errorf("nsh doc hostname: %d %q", code, out)
	}
}

// startUntilReady starts `nsh -c setup` followed by a busy loop, and returns
// once the setup has run (the script printed "ready").
func startUntilReady(t *testing.T, setup string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(nshBin, "-c", setup+readyLoop)
	waitReady(t, cmd)
	// A test that fails before it ends nsh leaves no spinning nsh behind.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// readyLoop ends a script that startUntilReady or waitReady runs: it says
// "ready" and spins until killed.
const readyLoop = "\nprint(\"ready\")\nwhile True:\n    pass\n"

// waitReady starts cmd, an nsh whose script ends with readyLoop, and
// returns once the script printed "ready"; it fails the test, showing
// nsh's stderr, if it never does.
func waitReady(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// A process that outlives nsh (the bug some callers test for) keeps
	// stderr open: Wait must not wait for it.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("did not start: %q %v; stderr %q", buf, err, stderr.String())
	}
}

// SIGINT and SIGTERM end a running script with 128+N after teardown: the
// named netns it made with persist=False is gone.
func TestSignalsTearDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		leakcheck.Check(t)
		cmd := startUntilReady(t, `netns("nsh-sigtest", persist=False)
unshare("net")
`)
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 128+int(sig) {
			t.Errorf("%v: exit %v, want %d", sig, err, 128+int(sig))
		}
		if _, err := os.Stat("/run/netns/nsh-sigtest"); err == nil {
			t.Errorf("%v: /run/netns/nsh-sigtest left behind", sig)
		}
	}
}

// openPTY returns the controller and the terminal of a new pseudo-terminal.
func openPTY(t *testing.T) (*os.File, *os.File) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, ptmx.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	return ptmx, tty
}

// screen accumulates what the REPL writes to the terminal.
type screen struct {
	buf  bytes.Buffer
	ch   chan []byte
	ptmx *os.File
}

func (s *screen) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(s.buf.String(), want) {
		select {
		case b, ok := <-s.ch:
			if !ok {
				t.Fatalf("terminal closed before %q appeared; screen:\n%s", want, s.buf.String())
			}
			s.buf.Write(b)
		case <-deadline:
			t.Fatalf("%q did not appear; screen:\n%s", want, s.buf.String())
		}
	}
}

func (s *screen) typeIn(text string) {
	s.buf.Reset()
	s.ptmx.Write([]byte(text))
}

// startOnPTY starts nsh with args on a new pseudo-terminal, as the session
// leader with it as controlling terminal, and returns the command and the
// screen its output accumulates on.
func startOnPTY(t *testing.T, env []string, args ...string) (*exec.Cmd, *screen) {
	t.Helper()
	ptmx, tty := openPTY(t)
	t.Cleanup(func() { ptmx.Close() })
	cmd := exec.Command(nshBin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.Env = append(append(os.Environ(), "TERM=xterm"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	tty.Close()
	s := &screen{ch: make(chan []byte, 100), ptmx: ptmx}
	go func() {
		for {
			b := make([]byte, 4096)
			n, err := ptmx.Read(b)
			if n > 0 {
				s.ch <- b[:n]
			}
			if err != nil {
				close(s.ch)
				return
			}
		}
	}()
	return cmd, s
}

// TestREPL types into the REPL over a real pseudo-terminal.
func TestREPL(t *testing.T) {
	if os.Geteuid() == 0 {
		leakcheck.Check(t)
	}
	state := t.TempDir()
	cmd, s := startOnPTY(t, []string{"XDG_STATE_HOME=" + state})
	s.waitFor(t, "nsh> ")
	s.typeIn("x = 40 + 2\r")
	s.waitFor(t, "nsh> ")
	s.typeIn("x\r")
	s.waitFor(t, "42")
	// A multi-line block continues until a blank line.
	s.typeIn("def f(a):\r")
	s.waitFor(t, "... ")
	s.typeIn("    return a * 2\r")
	s.waitFor(t, "... ")
	s.typeIn("\r")
	s.waitFor(t, "nsh> ")
	s.typeIn("f(21)\r")
	s.waitFor(t, "42")
	// Tab completes global names...
	s.typeIn("hostn\t")
	s.waitFor(t, "hostname")
	s.typeIn("\x15") // Ctrl-U: clear the line
	// ...and attributes of values.
	s.typeIn("n = namespaces()\r")
	s.waitFor(t, "nsh> ")
	s.typeIn("n.ch\t")
	s.waitFor(t, "n.changed")
	s.typeIn("\r")
	s.waitFor(t, "[]")
	// help() prints a builtin's doc.
	s.typeIn("help(setns)\r")
	s.waitFor(t, "Moves the current context")
	// Ctrl-C abandons the input line; the REPL goes on.
	s.typeIn("this is not finished\x03")
	s.waitFor(t, "nsh> ")
	// Ctrl-C cancels a running statement; the REPL goes on.
	s.typeIn("while True: pass\r\r")
	time.Sleep(300 * time.Millisecond)
	s.typeIn("\x03")
	s.waitFor(t, "interrupted by SIGINT")
	s.waitFor(t, "nsh> ")
	s.typeIn("1 + 1\r")
	s.waitFor(t, "2")
	if os.Geteuid() == 0 {
		// The prompt shows the context when it differs from the start.
		s.typeIn("unshare(\"net\")\r")
		s.waitFor(t, "nsh[net:")
	}
	// Ctrl-D leaves, with exit status 0. The prompt is drawn just before
	// readline puts the terminal in raw mode; a ^D that arrives in between
	// is read in cooked mode as end of file, so give it a moment.
	time.Sleep(200 * time.Millisecond)
	s.typeIn("\x04")
	done := make(chan error)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			for b := range s.ch {
				s.buf.Write(b)
			}
			t.Errorf("REPL exit: %v\n%s", err, s.buf.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("REPL did not exit on Ctrl-D")
	}
	hist, err := os.ReadFile(filepath.Join(state, "nsh", "history"))
	if err != nil || !strings.Contains(string(hist), "x = 40 + 2") {
		t.Errorf("history not kept: %q %v", hist, err)
	}
}

// nsh -i runs the script, then the REPL sees its globals.
func TestInteractiveAfterScript(t *testing.T) {
	script := filepath.Join(t.TempDir(), "s.star")
	os.WriteFile(script, []byte("built = 'still here'\n"), 0o644)
	cmd, s := startOnPTY(t, []string{"XDG_STATE_HOME=" + t.TempDir()}, "-i", script)
	s.waitFor(t, "nsh> ")
	s.typeIn("built\r")
	s.waitFor(t, "still here")
	s.typeIn("exit(5)\r")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
		t.Errorf("exit(5) in REPL: %v", err)
	}
}

// Started by a user other than root, nsh re-enters itself in a user
// namespace where that user is root; --no-rootless turns that off.
func TestRootlessMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user with setpriv")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	leakcheck.Check(t)
	os.Chmod(filepath.Dir(nshBin), 0o755)
	asNobody := func(args ...string) (string, string, int) {
		return runCmd(t, exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", nshBin}, args...)...))
	}
	out, stderr, code := asNobody("-c", `
unshare("net", "uts")
hostname("rootless-box")
print(hostname())
`)
	if code != 0 || out != "rootless-box\n" {
		t.Errorf("rootless unshare: code %d out %q err %q", code, out, stderr)
	}
	_, stderr, code = asNobody("-c", `netns("rootless-nope")`)
	if code != 1 || !strings.Contains(stderr, "nsh runs rootless") {
		t.Errorf("host object rootless: code %d err %q", code, stderr)
	}
	_, stderr, code = asNobody("--no-rootless", "-c", `unshare("net")`)
	if code != 1 || !strings.Contains(stderr, "EPERM") {
		t.Errorf("--no-rootless: code %d err %q", code, stderr)
	}
}

// Even SIGKILL of nsh leaves nothing behind: namespaces are held by
// descriptor, children have a parent-death signal, a PID namespace dies
// with its nsh-init, and a veth end in the host goes with its peer's
// namespace.
func TestSIGKILLLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a veth end in the host)")
	}
	leakcheck.Check(t)
	cmd := startUntilReady(t, `
host = namespaces()
red = unshare("net", "uts", "mnt").net
mount("tmpfs", "/mnt", "tmpfs")
setns(host)
veth("kill-a", "kill-b", peer_ns = red)
unshare("pid")
spawn("sleep 6001")
setns(host)
spawn("sleep 6002")
`)
	cmd.Process.Kill()
	cmd.Wait()
	// The sleeps are nsh's children, not the test's: once nsh is gone they
	// would be orphans, which the leak checker cannot see. Look for them.
	if out := survivors("sleep 600[12]"); out != "" {
		t.Fatalf("processes survived SIGKILL of nsh: %s", out)
	}
}

// What nsh makes that no descriptor of its holds — a veth with both ends in
// the host, a named netns, a mount in the host's table and the directories
// made for it, a host sysctl — is undone after SIGKILL too, by nsh's
// reaper (internal/reaper). The leak checker waits for the links, the
// netns and the mount to go.
func TestSIGKILLUndoesHostObjects(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the host's links, mounts, sysctls)")
	}
	leakcheck.Check(t)
	const sysctl = "/proc/sys/net/ipv4/tcp_keepalive_intvl"
	b, err := os.ReadFile(sysctl)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.TrimSpace(string(b))
	n, err := strconv.Atoi(old)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(sysctl, []byte(old), 0) })
	made := filepath.Join(t.TempDir(), "made")
	// kill-m0/kill-m1 is born in a namespace that dies with the run, and
	// so needs no reaper, until both ends are moved to the host: then it
	// does. kill-p0/kill-p1 is persisted: the reaper must leave it.
	t.Cleanup(func() { exec.Command("ip", "link", "del", "kill-p0").Run() })
	cmd := startUntilReady(t, fmt.Sprintf(`
veth("kill-h0", "kill-h1")
netns("kill-named", persist = False)
mount("tmpfs", %q, "tmpfs", mkdir = True)
sysctl("net.ipv4.tcp_keepalive_intvl", %d)
host = namespaces()
inner = unshare("net").net
setns(host)
m0, m1 = veth("kill-m0", "kill-m1", ns = inner, peer_ns = inner)
m0.move(host.net)
m1.move(host.net)
p, _ = veth("kill-p0", "kill-p1")
p.persist()
`, filepath.Join(made, "mnt"), n+1))
	if b, _ := os.ReadFile(sysctl); strings.TrimSpace(string(b)) != strconv.Itoa(n+1) {
		t.Fatalf("the script did not set %s: %q", sysctl, b)
	}
	// This run's reaper, and only it: other nsh runs on the machine have
	// their own.
	reaper := childNamed(cmd.Process.Pid, "nsh-reaper")
	if reaper == 0 {
		t.Fatal("the run started no reaper")
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(sysctl)
		_, err := os.Stat(made)
		if strings.TrimSpace(string(b)) == old && os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after SIGKILL: %s is %q (was %s), directory made: %v", sysctl, b, old, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitExited(t, reaper, "the reaper")
	if err := exec.Command("ip", "link", "show", "kill-p0").Run(); err != nil {
		t.Errorf("the persisted veth is gone after SIGKILL: %v", err)
	}
}

// survivors waits up to 5 seconds for no process to match the pgrep -f
// pattern, and returns what still matches then ("" when none does).
func survivors(pattern string) string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", pattern).Output()
		if len(out) == 0 || time.Now().After(deadline) {
			return string(out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A run that has only started processes handles no signals yet: SIGTERM
// has its default action, and the child (cloned from nsh's main thread)
// dies with nsh through its parent-death signal.
func TestSignalBeforeGuard(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (rootless mode puts a supervisor in between)")
	}
	cmd := startUntilReady(t, `spawn("sleep 6003")`)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("exit %v, want death by SIGTERM", err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("exit %v, want death by SIGTERM", err)
	}
	if out := survivors("sleep 6003"); out != "" {
		t.Fatalf("the child survived nsh: %s", out)
	}
}

// asUser runs nsh as another user (a setpriv spec such as "65534" or a
// name) without rootless mode, so nsh writes maps as an unprivileged
// process would.
func asUser(t *testing.T, who string, args ...string) (string, string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user with setpriv")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	os.Chmod(filepath.Dir(nshBin), 0o755)
	cmd := exec.Command("setpriv", append([]string{"--reuid=" + who, "--regid=" + who, "--clear-groups", nshBin, "--no-rootless"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME=/tmp")
	return runCmd(t, cmd)
}

// An unprivileged writer (no CAP_SETUID/CAP_SETGID) may map only its own
// ids, one line each, and gid_map only after "deny" to setgroups: nsh
// refuses anything else before writing, and denies setgroups itself.
func TestUnprivilegedIDMaps(t *testing.T) {
	leakcheck.Check(t)
	const start = `p = clone("id", "user", paused=True, stdout=True)
`
	for _, c := range []struct{ script, want string }{
		{`set_idmaps(p, gidmap=[gidmap(0, 65534)], setgroups="allow")`, `setgroups="allow" cannot go with a gid_map written without CAP_SETGID`},
		{`set_idmaps(p, uidmap=[uidmap(0, 65534), uidmap(1, 100000, 10)])`, "needs CAP_SETUID"},
		{`set_idmaps(p, uidmap=[uidmap(0, 0)])`, "maps ids other than nsh's own uid 65534"},
	} {
		_, stderr, code := asUser(t, "65534", "-c", start+c.script)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: code %d, stderr %q, want %q", c.script, code, stderr, c.want)
		}
	}
	out, stderr, code := asUser(t, "65534", "-c", start+`
set_idmaps(p, uidmap=[uidmap(0, 65534)], gidmap=[gidmap(0, 65534)])
print(ids(p).setgroups)
p.resume(); p.wait()
print(p.stdout.split()[0])
`)
	if code != 0 || out != "deny\nuid=0(root)\n" {
		t.Errorf("own ids: code %d out %q err %q", code, out, stderr)
	}
}

// Ranges beyond the caller's own id go through newuidmap/newgidmap and
// /etc/subuid, /etc/subgid, both in set_idmaps and in rootless mode. Needs
// a user with subordinate ranges: NSH_SUBID_USER (default nshrl), e.g.
// useradd nshrl && usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nshrl.
func TestSubordinateRanges(t *testing.T) {
	who := os.Getenv("NSH_SUBID_USER")
	if who == "" {
		who = "nshrl"
	}
	u, err := user.Lookup(who)
	if err != nil {
		t.Skipf("no user %s with subordinate ranges on this machine", who)
	}
	sub, err := os.ReadFile("/etc/subuid")
	if err != nil || !strings.Contains(string(sub), who+":") {
		t.Skipf("%s has no range in /etc/subuid", who)
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		t.Skip("newuidmap not installed (Debian's uidmap)")
	}
	var start, count int
	for _, l := range strings.Split(string(sub), "\n") {
		if f := strings.Split(l, ":"); len(f) == 3 && f[0] == who {
			fmt.Sscan(f[1], &start)
			fmt.Sscan(f[2], &count)
			break
		}
	}
	leakcheck.Check(t)
	script := fmt.Sprintf(`
p = clone("cat /proc/self/uid_map", "user", paused=True, stdout=True)
set_idmaps(p, uidmap=[uidmap(0, %[1]s), uidmap(1, %[2]d, %[3]d)], gidmap=[gidmap(0, %[4]s), gidmap(1, %[2]d, %[3]d)])
p.resume(); p.wait()
print(" ".join(p.stdout.split()))
`, u.Uid, start, count, u.Gid)
	want := fmt.Sprintf("0 %s 1 1 %d %d\n", u.Uid, start, count)
	out, stderr, code := asUser(t, who, "-c", script)
	if code != 0 || out != want {
		t.Errorf("set_idmaps with subordinate ranges: code %d out %q (want %q) err %q", code, out, want, stderr)
	}
	_, stderr, code = asUser(t, who, "-c", fmt.Sprintf(`clone("true", "user", uidmap=[uidmap(0, %s), uidmap(1, %d, 10)])`, u.Uid, start+count))
	if code != 1 || !strings.Contains(stderr, "/etc/subuid") {
		t.Errorf("range outside /etc/subuid: code %d err %q", code, stderr)
	}
	// Rootless mode maps the caller to root and its range from 1 up.
	cmd := exec.Command("setpriv", "--reuid="+who, "--regid="+who, "--clear-groups", nshBin, "-c",
		`print(" ".join(run("cat /proc/self/uid_map").stdout.split()))`)
	cmd.Env = append(os.Environ(), "HOME=/tmp")
	b, err := cmd.CombinedOutput()
	want = fmt.Sprintf("0 %s 1 1 %d %d\n", u.Uid, start, count)
	if err != nil || string(b) != want {
		t.Errorf("rootless with subordinate ranges: %v, %q, want %q", err, b, want)
	}
}

// TestCPUAffinityRestored checks that the one CPU nsh's runtime starts on
// (internal/startup) never shows: every thread of nsh, and the processes it
// starts in its own and in other namespaces, have the affinity nsh was
// started with.
func TestCPUAffinityRestored(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	if all.Count() < 2 {
		t.Skip("one CPU: nsh's start does not narrow anything")
	}
	masks := []unix.CPUSet{all}
	if all.Count() > 2 { // a part of the CPUs, to see that it is not "all of them" that comes back
		var two unix.CPUSet
		for cpu := 0; cpu < len(all)*64 && two.Count() < 2; cpu++ {
			if all.IsSet(cpu) {
				two.Set(cpu)
			}
		}
		masks = append(masks, two)
	}
	// A thread that ends between the glob and the read is left out (-s).
	script := showTwice("grep -hs Cpus_allowed_list /proc/$PPID/task/*/status /proc/self/status; true")
	for _, mask := range masks {
		out := withAffinity(t, mask, func() (string, string, int) { return nsh(t, "", "-c", script) })
		want := out.self
		lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
		// nsh's runtime has at least 3 threads (main, sysmon, cgo's
		// template thread), and each show() prints the child's line too.
		if out.code != 0 || len(lines) < 8 {
			t.Fatalf("nsh exited %d, stdout:\n%s\nstderr:\n%s", out.code, out.stdout, out.stderr)
		}
		for _, l := range lines {
			if l != want {
				t.Errorf("started with %q, a thread or child of nsh has %q; all:\n%s", want, l, out.stdout)
				break
			}
		}
	}
}

// TestTimerSlack checks that of nsh's threads only the one that runs the
// runtime's sysmon has the 1 ms timer slack internal/startup gives it, and
// that processes nsh starts, from the interpreter's thread or from a
// spawner thread, have the slack of nsh's main thread.
func TestTimerSlack(t *testing.T) {
	if _, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", os.Getppid())); err != nil {
		t.Skip("another process's timer slack cannot be read here:", err)
	}
	// Each show() prints "main N", a "thread N" line per thread of nsh,
	// and "child N" for the process that prints them.
	// A thread that ends between the listing and the read is left out.
	script := showTwice("echo main $(cat /proc/$PPID/timerslack_ns); for t in $(ls /proc/$PPID/task); do s=$(cat /proc/$t/timerslack_ns 2>/dev/null) && echo thread $s; done; echo child $(cat /proc/self/timerslack_ns)")
	out, errs, code := nsh(t, "", "-c", script)
	if code != 0 {
		t.Fatalf("nsh exited %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	sysmon := strconv.Itoa(startup.SysmonSlackNS)
	shows := 0
	var main string
	var threads map[string]int
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		kind, slack, _ := strings.Cut(l, " ")
		switch kind {
		case "main":
			main, threads = slack, map[string]int{}
			if main == sysmon {
				t.Errorf("nsh's main thread has sysmon's slack %s", sysmon)
			}
		case "thread":
			threads[slack]++
		case "child":
			shows++
			if len(threads) != 2 || threads[sysmon] != 1 || threads[main] < 2 {
				t.Errorf("want one thread of nsh with slack %s, the others with the main thread's %s; got %v", sysmon, main, threads)
			}
			if slack != main {
				t.Errorf("a process nsh started has slack %s, nsh's main thread %s", slack, main)
			}
		default:
			t.Fatalf("unexpected line %q in:\n%s", l, out)
		}
	}
	if shows != 2 {
		t.Fatalf("want 2 show() outputs, got %d:\n%s", shows, out)
	}
}

// showTwice returns a script that prints what the shell command cmd
// prints, run by nsh first from the interpreter's thread and then, after
// unshare("net"), from a spawner thread.
func showTwice(cmd string) string {
	return fmt.Sprintf(`
def show():
    print(run(["sh", "-c", %q]).stdout.strip())
show()
unshare("net")   # from here, processes are cloned by a spawner thread
show()
`, cmd)
}

type affinityRun struct {
	stdout, stderr string
	code           int
	self           string // the Cpus_allowed_list line of the thread nsh was started from
}

// withAffinity runs f, which starts nsh, on a locked thread with the given
// CPU affinity (a child inherits that of the thread that forks it).
func withAffinity(t *testing.T, mask unix.CPUSet, f func() (string, string, int)) affinityRun {
	t.Helper()
	done := make(chan affinityRun)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread's affinity changed, it ends with the goroutine
		var r affinityRun
		defer func() { done <- r }()
		if err := unix.SchedSetaffinity(0, &mask); err != nil {
			r.stderr, r.code = "sched_setaffinity: "+err.Error(), -1
			return
		}
		b, err := os.ReadFile("/proc/thread-self/status")
		if err != nil {
			r.stderr, r.code = err.Error(), -1
			return
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Cpus_allowed_list:") {
				r.self = l
			}
		}
		r.stdout, r.stderr, r.code = f()
	}()
	return <-done
}

// sigIgn returns the SigIgn mask of /proc/PID/status.
func sigIgn(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no SigIgn in /proc/%d/status", pid)
	return 0
}

// Item 11 of issue 15: a signal ignored when nsh starts stays ignored, as
// in sh: under nohup (SIGHUP) or as a background job of a script (SIGINT,
// SIGQUIT), a script that made a named netns is not ended by it, and the
// processes it starts inherit it ignored. SIGTERM, not ignored, still
// tears down and ends nsh with 143.
func TestItem11IgnoredSignalsStayIgnored(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a named netns)")
	}
	leakcheck.Check(t)
	script := `netns("nsh-item11", persist=False)
p = spawn("sleep 6011")
print("ready", p.pid)
while True:
    pass
`
	cmd := exec.Command("sh", "-c", `trap "" HUP INT QUIT; exec "$0" -c "$1"`, nshBin, script)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := stdout.Read(b)
		line <- string(b[:n])
		io.Copy(io.Discard, stdout)
		done <- cmd.Wait()
	}()
	var child int
	select {
	case l := <-line:
		if _, err := fmt.Sscanf(l, "ready %d", &child); err != nil {
			cmd.Process.Kill()
			t.Fatalf("did not start: %q %s", l, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("did not start")
	}
	const ignored = 1<<(syscall.SIGHUP-1) | 1<<(syscall.SIGINT-1) | 1<<(syscall.SIGQUIT-1)
	if m := sigIgn(t, cmd.Process.Pid); m&ignored != ignored || m&(1<<(syscall.SIGTERM-1)) != 0 {
		t.Errorf("nsh's SigIgn %#x, want SIGHUP, SIGINT, SIGQUIT (%#x) and not SIGTERM", m, uint64(ignored))
	}
	if m := sigIgn(t, child); m&ignored != ignored {
		t.Errorf("the spawned process's SigIgn %#x, want SIGHUP, SIGINT, SIGQUIT (%#x) still ignored", m, uint64(ignored))
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT} {
		cmd.Process.Signal(sig)
	}
	select {
	case err := <-done:
		t.Fatalf("nsh ended after SIGHUP/SIGINT/SIGQUIT that were ignored at its start: %v\n%s", err, stderr.String())
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := os.Stat("/run/netns/nsh-item11"); err != nil {
		t.Errorf("the netns is gone while nsh runs: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGTERM did not end nsh")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
		t.Errorf("exit %v after SIGTERM, want 143; stderr %s", err, stderr.String())
	}
	if _, err := os.Stat("/run/netns/nsh-item11"); err == nil {
		t.Error("/run/netns/nsh-item11 left behind")
	}
}

// crashFree checks that nsh ended a script with a script error (status 1)
// whose message names the line and each of wants, and did not crash.
func crashFree(t *testing.T, what, stderr string, code int, wants ...string) {
	t.Helper()
	if code != 1 {
		t.Errorf("%s: exit %d, want 1; stderr %.500s", what, code, stderr)
	}
	for _, bad := range []string{"panic", "fatal error", "goroutine "} {
		if strings.Contains(stderr, bad) {
			t.Errorf("%s: nsh crashed (%q in stderr): %.500s", what, bad, stderr)
		}
	}
	for _, w := range wants {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr lacks %q: %.500s", what, w, stderr)
		}
	}
}

// Item 5 of issue 15: builtins that size their result from their
// argument's length refuse one too long for the memory limit, before they
// allocate: no makeslice panic (exit 2), no "fatal error: out of memory",
// no growth until the OOM killer comes.
func TestItem5HugeAllocationsAreScriptErrors(t *testing.T) {
	for _, c := range []struct{ code, want string }{
		{"list(range(1<<62))", "list: 4611686018427387904 elements would need over 16 EiB"},
		{"tuple(range(1<<62))", "tuple: "},
		{"sorted(range(1<<62))", "sorted: "},
		{"sorted(iterable=range(1<<40), reverse=True)", "sorted: 1099511627776 elements"},
		{"enumerate(range(1<<62))", "enumerate: "},
		{"zip(range(1<<62), range(1<<62))", "zip: "},
		{"reversed(range(1<<62))", "reversed: "},
		{"list(range(1<<40))", "list: 1099511627776 elements would need at least 16 TiB, beyond the memory limit of 2 GiB (nsh --max-memory)"},
		{"set(range(1<<62))", "set: "},
	} {
		_, stderr, code := nsh(t, "", "-c", "x = 1\n"+c.code)
		crashFree(t, c.code, stderr, code, "-c:2:", c.want, "nsh --max-memory")
	}
	// With no memory limit, the machine's memory is the bound.
	_, stderr, code := nsh(t, "", "--max-memory=none", "-c", "x = 1\nlist(range(1<<40))")
	crashFree(t, "list(range(1<<40)) with --max-memory=none", stderr, code, "-c:2:", "beyond this machine's memory")
}

// Item 5: a heap that grows a little at a time passes the memory limit and
// the script is cancelled with an error naming the line and the limit.
func TestItem5MemoryLimitCancelsScript(t *testing.T) {
	for _, script := range []string{
		"x = {}\nfor i in range(1<<62):\n    x[i] = i\n",
		"x = []\nwhile True:\n    x.append([1])\n",
		"s = set()\nfor i in range(1<<62):\n    s.add(i)\n",
	} {
		_, stderr, code := nsh(t, "", "--max-memory", "96MiB", "-c", script)
		crashFree(t, script, stderr, code, "memory limit of 96 MiB exceeded (nsh --max-memory)")
		// The error names a line of the script: the position of the
		// instruction at which the interpreter noticed the cancellation
		// (line 3 mostly, line 1 seen once under load).
		if !regexp.MustCompile(`(?m)^-c:[123]:[0-9]+: `).MatchString(stderr) {
			t.Errorf("%q: the error names no line of the script: %.300s", script, stderr)
		}
	}
	// A builtin that never sees the cancellation (it iterates a range to
	// its end) and allocates on ends nsh with status 1 and a word on the
	// limit, well before the machine's memory runs out.
	_, stderr, code := nsh(t, "", "--max-memory", "64MiB", "-c", "x = []\nx.extend(range(1<<62))\n")
	crashFree(t, "x.extend(range(1<<62))", stderr, code, "memory limit of 64 MiB exceeded (nsh --max-memory) inside a builtin that cannot be interrupted")
	// A script well under the limit is not disturbed.
	out, stderr, code := nsh(t, "", "--max-memory", "64MiB", "-c", "x = list(range(100000))\nprint(len(x))")
	if code != 0 || out != "100000\n" {
		t.Errorf("small script under a 64MiB limit: %d %q %q", code, out, stderr)
	}
	for _, bad := range []string{"--max-memory=lots", "--max-memory=12", "--max-steps=-1"} {
		if _, stderr, code := nsh(t, "", bad, "-c", "pass"); code != 2 || !strings.Contains(stderr, "nsh: --max-") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a word on the flag", bad, code, stderr)
		}
	}
}

// Item 5: --max-steps ends a script that runs too long; by default there
// is no step limit.
func TestItem5StepLimit(t *testing.T) {
	// (The position is that of the instruction the limit falls on: with
	// this count, the addition.)
	_, stderr, code := nsh(t, "", "--max-steps", "100003", "-c", "x = 1\nwhile True:\n    x += 1\n")
	crashFree(t, "--max-steps", stderr, code, "-c:3:", "step limit of 100003 exceeded (nsh --max-steps)")
	out, stderr, code := nsh(t, "", "-c", "n = 0\nfor i in range(2000000):\n    n += 1\nprint(n)")
	if code != 0 || out != "2000000\n" {
		t.Errorf("2,000,000 iterations without --max-steps: %d %q %q", code, out, stderr)
	}
	out, _, _ = nsh(t, "", "--help")
	for _, want := range []string{"--max-memory SIZE", "default 2GiB", "--max-steps N", "default: no limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// Item 6 of issue 15: a runaway recursion stops at go.starlark.net's depth
// limit with a short backtrace: the repeated frames are folded.
func TestItem6DeepRecursionFolded(t *testing.T) {
	_, stderr, code := nsh(t, "", "-c", "def f(n): return f(n+1)\nf(0)\n")
	crashFree(t, "recursion", stderr, code, "Starlark stack overflow", "-c:2:2: in <toplevel>", "-c:1:19: in f", "[Previous line repeated 99996 more times]")
	if len(stderr) > 5000 {
		t.Errorf("backtrace of %d bytes, want under 5000:\n%.2000s", len(stderr), stderr)
	}
	_, stderr, code = nsh(t, "", "-c", "def a(n): return b(n)\ndef b(n): return a(n+1)\na(0)\n")
	crashFree(t, "mutual recursion", stderr, code, "[Previous 2 lines repeated")
	if len(stderr) > 5000 {
		t.Errorf("backtrace of mutual recursion of %d bytes, want under 5000", len(stderr))
	}
}

// Item 12 of issue 15: nsh reads a script only from a regular file or a
// pipe, and at most 16 MiB of it; stdin likewise.
func TestItem12ScriptFileRefused(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.star")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#"), 16<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{"/dev/zero", "/dev/zero is a character device, not a regular file or a pipe"},
		{t.TempDir(), "is a directory"},
		{big, "is longer than 16 MiB, the limit for a script"},
	} {
		_, stderr, code := nsh(t, "", c.file)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("nsh %s: exit %d, stderr %q; want 2 and %q", c.file, code, stderr, c.want)
		}
	}
	_, stderr, code := nsh(t, strings.Repeat("#", 16<<20+1), "-")
	if code != 2 || !strings.Contains(stderr, "longer than 16 MiB") {
		t.Errorf("17 MiB on stdin: exit %d, stderr %q", code, stderr)
	}
	// A pipe is a script file too: nsh <(generate).
	cmd := exec.Command(nshBin, "/dev/stdin")
	cmd.Stdin = strings.NewReader("print('piped')\n")
	if out, stderr, code := runCmd(t, cmd); code != 0 || out != "piped\n" {
		t.Errorf("nsh /dev/stdin from a pipe: %d %q %q", code, out, stderr)
	}
}
