package spawn

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/nsthread"
)

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func run(t *testing.T, s *Spawner, cfg *Config) (string, int, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Stdio[1] = w
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	ch, err := s.Start(cfg)
	w.Close()
	if err != nil {
		r.Close()
		return "", 0, err
	}
	out, _ := io.ReadAll(r) // until the child and its copies of w are gone
	r.Close()
	ws, err := ch.Wait()
	ch.Close()
	return string(out), ws.ExitStatus(), err
}

func TestExec(t *testing.T) {
	s := newSpawner(t)
	out, code, err := run(t, s, &Config{Argv: []string{"sh", "-c", "echo hi; exit 3"}})
	if err != nil || out != "hi\n" || code != 3 {
		t.Fatalf("got %q %d %v", out, code, err)
	}
	_, _, err = run(t, s, &Config{Argv: []string{"pr-no-such-command"}})
	if err == nil || !strings.Contains(err.Error(), `command not found: "pr-no-such-command"`) {
		t.Fatalf("got %v", err)
	}
}

func TestNamespaces(t *testing.T) {
	needRoot(t)
	s := newSpawner(t)
	h := "pr-box"
	out, _, err := run(t, s, &Config{Argv: []string{"hostname"}, New: unix.CLONE_NEWUTS, Hostname: &h, Pdeathsig: unix.SIGKILL})
	if err != nil || out != "pr-box\n" {
		t.Fatalf("got %q %v", out, err)
	}
	bad := strings.Repeat("x", 70)
	_, _, err = run(t, s, &Config{Argv: []string{"hostname"}, New: unix.CLONE_NEWUTS, Hostname: &bad})
	if err == nil || !strings.Contains(err.Error(), "sethostname") || !strings.Contains(err.Error(), "EINVAL") {
		t.Fatalf("got %v", err)
	}
	out, _, err = run(t, s, &Config{Argv: []string{"sh", "-c", "echo $$; ps -e | wc -l"}, New: unix.CLONE_NEWPID | unix.CLONE_NEWNS,
		Propagation: unix.MS_PRIVATE, MountProc: true})
	if err != nil || !strings.HasPrefix(out, "1\n") {
		t.Fatalf("got %q %v", out, err)
	}
	out, _, err = run(t, s, &Config{Argv: []string{"cat", "/proc/uptime"}, New: unix.CLONE_NEWTIME, TimeOffsets: true, Boottime: 1000 * time.Hour})
	if err != nil || len(out) < 8 {
		t.Fatalf("got %q %v", out, err)
	}
	t.Logf("uptime in time ns: %s", out)
	out, _, err = run(t, s, &Config{Argv: []string{"id", "-u"}, New: unix.CLONE_NEWUSER | unix.CLONE_NEWUTS})
	if err != nil || out != "0\n" {
		t.Fatalf("got %q %v", out, err)
	}
}

func TestHoldAndInit(t *testing.T) {
	s := newSpawner(t)
	ch, err := s.Start(&Config{Mode: Hold, New: unix.CLONE_NEWUSER})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + itoa(ch.Pid) + "/uid_map")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(b)), "0") {
		t.Fatalf("uid_map %q %v", b, err)
	}
	ch.Release()
	ch.Wait()
	ch.Close()
	ch, err = s.Start(&Config{Mode: Init, New: unix.CLONE_NEWUSER | unix.CLONE_NEWPID})
	if err != nil {
		t.Fatal(err)
	}
	comm, _ := os.ReadFile("/proc/" + itoa(ch.Pid) + "/comm")
	if string(comm) != "nsh-init\n" {
		t.Fatalf("comm %q", comm)
	}
	ch.Release()
	ws, err := ch.Wait()
	ch.Close()
	if err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("init: %v %v", ws, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// A child that joins a user namespace and then needs a new PID namespace is
// forked by a relay; nsh still sees the real child's pid and exit code.
func TestRelay(t *testing.T) {
	s := newSpawner(t)
	holder, err := s.Start(&Config{Mode: Hold, New: unix.CLONE_NEWUSER})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/" + itoa(holder.Pid) + "/ns/user")
	holder.Release()
	holder.Wait()
	holder.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	user := []nsthread.Join{{Fd: int(f.Fd()), Type: unix.CLONE_NEWUSER, Name: "user"}}
	out, code, err := run(t, s, &Config{Argv: []string{"sh", "-c", "echo $$; exit 5"}, Setns: user, New: unix.CLONE_NEWPID, Pdeathsig: unix.SIGKILL})
	if err != nil || out != "1\n" || code != 5 {
		t.Fatalf("got %q %d %v", out, code, err)
	}
	_, _, err = run(t, s, &Config{Argv: []string{"true"}, Setns: user, New: unix.CLONE_NEWUTS, Hostname: new(string)})
	if err != nil {
		t.Fatalf("empty hostname in a joined user namespace: %v", err)
	}
	bad := strings.Repeat("y", 80)
	_, _, err = run(t, s, &Config{Argv: []string{"true"}, Setns: user, New: unix.CLONE_NEWPID | unix.CLONE_NEWUTS, Hostname: &bad})
	if err == nil || !strings.Contains(err.Error(), `sethostname "yyy`) {
		t.Fatalf("got %v", err)
	}
}

// A paused child waits unmapped in its new user namespace until Resume;
// maps written meanwhile are in force when it goes on, and a child resumed
// without maps runs as the overflow id.
func TestPausedUserNamespace(t *testing.T) {
	needRoot(t)
	s := newSpawner(t)
	for _, mapped := range []bool{false, true} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cfg := &Config{Argv: []string{"sh", "-c", "id -u; cat /proc/self/uid_map"}, Env: os.Environ(), New: unix.CLONE_NEWUSER, Paused: true}
		cfg.Stdio[1] = w
		ch, err := s.Start(cfg)
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !ch.Paused() {
			t.Fatal("child not paused")
		}
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(ch.Pid) + "/uid_map"); len(b) != 0 {
			t.Errorf("paused child has a uid_map: %q", b)
		}
		if mapped {
			if _, err := s.WriteIDMaps(ch.Pid, idmap.Root(os.Geteuid()), idmap.Root(os.Getegid()), ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := ch.Resume(); err != nil {
			t.Fatal(err)
		}
		if err := ch.Resume(); err == nil {
			t.Error("second Resume accepted")
		}
		out, _ := io.ReadAll(r)
		r.Close()
		ch.Wait()
		ch.Close()
		f := strings.Fields(string(out))
		want := []string{"65534"}
		if mapped {
			want = []string{"0", "0", strconv.Itoa(os.Geteuid()), "1"}
		}
		if strings.Join(f, " ") != strings.Join(want, " ") {
			t.Errorf("mapped=%v: child printed %q, want %q", mapped, f, want)
		}
	}
}

// Wait (the pidfd, through the poller) and WaitBlocking (wait4 on the
// calling thread) both report exit codes and deaths by signal.
func TestWaitKinds(t *testing.T) {
	s := newSpawner(t)
	for _, blocking := range []bool{false, true} {
		wait := func(ch *Child) (unix.WaitStatus, error) {
			if blocking {
				return ch.WaitBlocking()
			}
			return ch.Wait()
		}
		ch, err := s.Start(&Config{Argv: []string{"sh", "-c", "exit 4"}, Env: os.Environ()})
		if err != nil {
			t.Fatal(err)
		}
		ws, err := wait(ch)
		ch.Close()
		if err != nil || ws.ExitStatus() != 4 {
			t.Errorf("blocking=%v: exit %v %v, want 4", blocking, ws, err)
		}
		ch, err = s.Start(&Config{Argv: []string{"sleep", "60"}, Env: os.Environ()})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Kill(unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		ws, err = wait(ch)
		ch.Close()
		if err != nil || !ws.Signaled() || ws.Signal() != unix.SIGTERM {
			t.Errorf("blocking=%v: %v %v, want killed by SIGTERM", blocking, ws, err)
		}
	}
}

// newSpawner returns a spawner for the test process's own namespaces,
// closed when the test ends.
func newSpawner(t testing.TB) *Spawner {
	t.Helper()
	home, err := OwnNamespaces()
	if err != nil {
		t.Fatal(err)
	}
	s := NewSpawner(home)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestItem13NULNotTruncated: the C side would read "a\x00b" as "a"; Start
// refuses it instead (issue 15 item 13).
func TestItem13NULNotTruncated(t *testing.T) {
	s := newSpawner(t)
	host := "h\x00x"
	for _, cfg := range []*Config{
		{Argv: []string{"echo", "a\x00b"}},
		{Argv: []string{"true"}, Cwd: "/\x00tmp"},
		{Argv: []string{"true"}, Env: []string{"A=b\x00c"}},
		{Argv: []string{"true"}, New: unix.CLONE_NEWUTS, Hostname: &host},
	} {
		out, _, err := run(t, s, cfg)
		if err == nil || !strings.Contains(err.Error(), "contains a NUL byte") || !errors.Is(err, unix.EINVAL) {
			t.Errorf("Start(argv %q, cwd %q) = %q, %v; want EINVAL naming the NUL", cfg.Argv, cfg.Cwd, out, err)
		}
	}
}
