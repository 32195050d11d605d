package startup

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStartWidened checks that this test binary, which links the package,
// went through the one-CPU start and that every thread has the affinity
// the process started with again.
func TestStartWidened(t *testing.T) {
	if startState() == stateUntouched {
		t.Skip("the start was not narrowed here (GOMAXPROCS set, or one CPU)")
	}
	if startState() != stateWidened {
		t.Fatalf("state %d after start, want widened (%d)", startState(), stateWidened)
	}
	checkAllThreads(t)
}

// TestWiden checks the fallback for a failed restore in the pthread_create
// wrapper: threads with a narrow affinity, some created from a narrow
// thread, all get the saved affinity back.
func TestWiden(t *testing.T) {
	if startState() == stateUntouched {
		t.Skip("nothing saved to widen to (GOMAXPROCS set, or one CPU)")
	}
	saved := savedSet()
	var one unix.CPUSet
	for cpu := 0; ; cpu++ {
		if saved.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	// Narrow threads, each parked in a locked goroutine, and threads the
	// runtime creates meanwhile from a narrow one (a locked goroutine's
	// go statement may start a new M from its thread).
	release := make(chan struct{})
	started := make(chan struct{})
	const n = 4
	for i := 0; i < n; i++ {
		go func() {
			runtime.LockOSThread()
			if err := unix.SchedSetaffinity(0, &one); err != nil {
				t.Error(err)
			}
			go func() { runtime.LockOSThread(); <-release }()
			started <- struct{}{}
			<-release
		}()
	}
	for i := 0; i < n; i++ {
		<-started
	}
	defer close(release) // the locked goroutines then exit, and their threads with them
	widen()
	checkAllThreads(t)
}

// checkAllThreads fails the test unless every thread of the process has
// the saved affinity.
func checkAllThreads(t *testing.T) {
	t.Helper()
	saved := savedSet()
	tids, err := threads()
	if err != nil {
		t.Fatal(err)
	}
	if len(tids) < 3 {
		t.Fatalf("threads() found %v: the runtime has at least 3", tids)
	}
	for _, tid := range tids {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			if err == unix.ESRCH {
				continue // exited since
			}
			t.Fatal(err)
		}
		if set != *saved {
			b, _ := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/status")
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "Cpus_allowed_list") {
					t.Errorf("thread %d: %s", tid, l)
				}
			}
			if !t.Failed() {
				t.Errorf("thread %d: affinity %v, want %v", tid, set, *saved)
			}
		}
	}
}
