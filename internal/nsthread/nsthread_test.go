package nsthread

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func netInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Unsharing on a hop thread never changes the namespaces of the threads
// the scheduler hands out afterwards.
func TestHopThreadsAreDiscarded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	host := netInode(t, "/proc/self/ns/net")
	var inside uint64
	for i := 0; i < 20; i++ {
		err := Unshare(nil, unix.CLONE_NEWNET, func() error {
			inside = netInode(t, "/proc/thread-self/ns/net")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if inside == host {
			t.Fatal("unshare did not create a namespace")
		}
		// Any thread this goroutine runs on is still in the host's netns.
		if got := netInode(t, "/proc/thread-self/ns/net"); got != host {
			t.Fatalf("iteration %d: a changed thread went back to the pool (net %d, host %d)", i, got, host)
		}
	}
}

func TestJoinAndErrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	f, err := os.Open("/proc/self/ns/uts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Joining a uts namespace file as a net namespace is refused by the
	// kernel; the error names the operation and the namespace.
	err = Do([]Join{{Fd: int(f.Fd()), Type: unix.CLONE_NEWNET, Name: "uts:[x]"}}, func() error { return nil })
	if err == nil || err.Error() != "setns uts:[x]: EINVAL: invalid argument (the file is not a namespace of the requested kind, or the kind cannot be joined by a multi-threaded process)" {
		t.Errorf("got %v", err)
	}
	if FlagNames(unix.CLONE_NEWNET|unix.CLONE_NEWUTS) != "uts|net" {
		t.Errorf("FlagNames: %s", FlagNames(unix.CLONE_NEWNET|unix.CLONE_NEWUTS))
	}
	if err := Do(nil, func() error { panic("boom") }); err == nil {
		t.Error("panic on a hop thread not turned into an error")
	}
}

// The network runner runs each job on the calling thread and brings that
// thread back to nsh's network namespace after it, so every job starts
// there; once closed, it runs them as Do does.
func TestNetRunnerReturnsHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	host := netInode(t, "/proc/self/ns/net")
	w := NewNetRunner()
	seen := map[uint64]bool{}
	for i := 0; i < 5; i++ {
		// Locked here too, to see the thread the job ran on afterwards.
		runtime.LockOSThread()
		tid := unix.Gettid()
		err := w.Do(nil, func() error {
			if unix.Gettid() != tid {
				t.Errorf("job %d ran on thread %d, not the caller's %d", i, unix.Gettid(), tid)
			}
			if got := netInode(t, "/proc/thread-self/ns/net"); got != host {
				t.Errorf("job %d starts in net:[%d], want the host's net:[%d]", i, got, host)
			}
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return err
			}
			mine := netInode(t, "/proc/thread-self/ns/net")
			seen[mine] = true
			// A job started inside a job starts at home too, elsewhere,
			// and leaves this thread where it is.
			if err := w.Do(nil, func() error {
				if got := netInode(t, "/proc/thread-self/ns/net"); got != host {
					t.Errorf("nested job %d starts in net:[%d], want net:[%d]", i, got, host)
				}
				return nil
			}); err != nil {
				return err
			}
			if got := netInode(t, "/proc/thread-self/ns/net"); got != mine {
				t.Errorf("job %d is in net:[%d] after a nested job, want its own net:[%d]", i, got, mine)
			}
			return nil
		})
		if got := netInode(t, "/proc/thread-self/ns/net"); got != host {
			t.Errorf("after job %d the caller's thread is in net:[%d], want net:[%d]", i, got, host)
		}
		runtime.UnlockOSThread()
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 5 {
		t.Errorf("5 unshares made %d namespaces", len(seen))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed, it runs jobs on a thread of their own.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	if err := w.Do(nil, func() error {
		if unix.Gettid() == tid {
			t.Error("a closed runner ran a job on the caller's thread")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
