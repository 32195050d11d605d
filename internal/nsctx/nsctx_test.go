package nsctx

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nsthread"
)

// onMain runs functions on the process's main thread, which TestMain keeps
// for itself, as cmd/nsh does for the interpreter.
var onMain = make(chan func())

func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	done := make(chan int)
	go func() { done <- m.Run() }()
	for {
		select {
		case f := <-onMain:
			f()
		case code := <-done:
			os.Exit(code)
		}
	}
}

func netIno(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// While another run's network-namespace job has the main thread in a new
// namespace (and so /proc/self/ns/net shows that one), a table made
// meanwhile still takes nsh's own namespace as its initial one.
func TestNewTableWhileMainThreadInAJob(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (unshare net)")
	}
	host := netIno(t, "/proc/thread-self/ns/net")
	runner := nsthread.NewNetRunner()
	defer runner.Close()
	inJob, release, finished := make(chan uint64), make(chan struct{}), make(chan error, 1)
	onMain <- func() {
		finished <- runner.Do(nil, func() error {
			if unix.Gettid() != unix.Getpid() {
				t.Error("the job is not on the main thread")
			}
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return err
			}
			var st unix.Stat_t
			unix.Stat("/proc/thread-self/ns/net", &st)
			inJob <- st.Ino
			<-release
			return nil
		})
	}
	jobNet := <-inJob
	if self := netIno(t, "/proc/self/ns/net"); self != jobNet {
		t.Fatalf("/proc/self/ns/net is net:[%d] during the job, expected the job's net:[%d]", self, jobNet)
	}
	tab, err := NewTable()
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
	if got := tab.Initial.Get("net").Ino; got != host {
		t.Errorf("initial net is net:[%d], want nsh's own net:[%d] (the job's is net:[%d])", got, host, jobNet)
	}
	if self := netIno(t, "/proc/self/ns/net"); self != host {
		t.Errorf("after the job the main thread is in net:[%d], want net:[%d]", self, host)
	}
}

// The pidfd ioctls and /proc/thread-self/ns give the same namespaces, also
// on a thread that has just unshared one (where /proc/self would not).
func TestOpenThreadSelfByPidfdAndByProc(t *testing.T) {
	tab, err := NewTable()
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	runtime.LockOSThread() // the thread may end up in a new netns: never unlocked
	if os.Geteuid() == 0 {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Fatal(err)
		}
	}
	all := nsthread.AllFlags
	byPidfd, err := tab.openByPidfd(all)
	if err != nil {
		t.Skip("kernel without PIDFD_THREAD or the pidfd namespace ioctls (Linux 6.11):", err)
	}
	if tab.proc == nil { // a table on such a kernel opens no /proc
		if tab.proc, err = openFile("/proc", unix.O_PATH|unix.O_DIRECTORY); err != nil {
			t.Fatal(err)
		}
	}
	byProc, err := tab.openByProc(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(byPidfd) != len(nsthread.Kinds) || len(byProc) != len(byPidfd) {
		t.Fatalf("got %d and %d namespaces, want %d", len(byPidfd), len(byProc), len(nsthread.Kinds))
	}
	for i, k := range nsthread.Kinds {
		a, b := byPidfd[i], byProc[i]
		if a.Kind.Name != k.Name || !Same(a, b) {
			t.Errorf("%s: pidfd gives %v, /proc gives %v", k.Name, a, b)
		}
	}
	net := byPidfd[index("net")]
	if want := netIno(t, "/proc/thread-self/ns/net"); net.Ino != want {
		t.Errorf("net: pidfd gives %d, the thread is in %d", net.Ino, want)
	}
	if os.Geteuid() == 0 && Same(net, tab.Initial.Get("net")) {
		t.Errorf("net: still the initial namespace after unshare")
	}
}

// TestItem7SweepReleasesUnreferenced: the table releases (closes, and
// reports to OnRelease) the namespaces no Go object references, when the
// number it holds reaches its sweep threshold; referenced ones keep their
// descriptor and stay joinable (issue 15 item 7).
func TestItem7SweepReleasesUnreferenced(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (unshare net)")
	}
	tab, err := NewTable()
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	released := map[uint64]bool{}
	tab.OnRelease(func(dev, ino uint64) { released[ino] = true })
	newNet := func() *NS {
		var n *NS
		err := nsthread.Unshare(nil, unix.CLONE_NEWNET, func() error {
			nss, err := tab.OpenThreadSelf(unix.CLONE_NEWNET)
			if err == nil {
				n = nss[0]
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// The kernel reuses the inode numbers of namespaces gone.
		delete(released, n.Ino)
		return n
	}
	var kept []*NS
	for i := 0; i < 10*minSweep; i++ {
		n := newNet()
		if i%minSweep == 0 {
			kept = append(kept, n)
		}
	}
	if h := tab.Held(); h > 2*minSweep+len(kept)+len(nsthread.Kinds) {
		t.Errorf("the table holds %d namespaces after %d were made and %d kept", h, 10*minSweep, len(kept))
	}
	if len(released) == 0 {
		t.Errorf("no dropped namespace was released")
	}
	for _, k := range kept {
		if released[k.Ino] {
			t.Errorf("%s was released while referenced", k)
		}
		err := nsthread.Do(tab.Joins(tab.Initial.With(k)), func() error {
			var st unix.Stat_t
			if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
				return err
			}
			if st.Ino != k.Ino {
				t.Errorf("joined net:[%d], want %s", st.Ino, k)
			}
			return nil
		})
		if err != nil {
			t.Errorf("join %s: %v", k, err)
		}
	}
	// The initial namespaces are never released.
	for _, n := range tab.Initial {
		if n.Fd() < 0 || released[n.Ino] {
			t.Errorf("initial %s released", n)
		}
	}
}
