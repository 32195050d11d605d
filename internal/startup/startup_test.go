package startup

import (
	"errors"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

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
			if exited(err) {
				continue
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

// TestSysmonSlack checks the timer slack the wrapper of pthread_create
// gives: the runtime's first thread (sysmon) has NSH_SYSMON_SLACK_NS, every
// other thread the slack of the main thread, also threads that sysmon
// created. Those are made here: with one P, goroutines that sleep in
// blocking system calls while others wait to run are taken over only when
// sysmon takes the P back from the blocked thread and hands it to an M, a
// new one (created on sysmon's thread) when no idle M is left.
func TestSysmonSlack(t *testing.T) {
	if err := readOthersSlack(); err != nil {
		t.Skip("the timer slack of other threads cannot be read here:", err)
	}
	before := checkSlacks(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n = 12
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := unix.NsecToTimespec(int64(20 * time.Millisecond))
			// syscall.Syscall, not RawSyscall: the runtime sees the
			// thread enter the system call and may take its P.
			syscall.Syscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		}()
	}
	wg.Wait()
	after := checkSlacks(t)
	if after <= before {
		t.Fatalf("%d threads before the blocking calls, %d after: no thread was created", before, after)
	}
	t.Logf("%d threads before the blocking calls, %d after", before, after)
}

// checkSlacks fails the test unless exactly one thread has sysmon's timer
// slack and all the others that of the main thread; it returns how many
// threads there are.
func checkSlacks(t *testing.T) int {
	t.Helper()
	main, err := readSlack(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if main == SysmonSlackNS {
		t.Fatalf("the main thread has sysmon's timer slack %d", main)
	}
	tids, err := threads()
	if err != nil {
		t.Fatal(err)
	}
	var sysmon []int
	for _, tid := range tids {
		slack, err := readSlack(tid)
		switch {
		case exited(err):
			continue
		case err != nil:
			t.Fatal(err)
		case slack == SysmonSlackNS:
			sysmon = append(sysmon, tid)
		case slack != main:
			t.Errorf("thread %d has timer slack %d, the main thread %d", tid, slack, main)
		}
	}
	if len(sysmon) != 1 {
		t.Errorf("threads %v have sysmon's timer slack %d, want one", sysmon, SysmonSlackNS)
	}
	return len(tids)
}

// readOthersSlack reads the timer slack of a thread other than the calling
// one, to see whether that is allowed.
func readOthersSlack() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tids, err := threads()
	if err != nil {
		return err
	}
	for _, tid := range tids {
		if tid == unix.Gettid() {
			continue
		}
		_, err := readSlack(tid)
		if exited(err) {
			continue
		}
		return err
	}
	return errors.New("no other thread")
}

// exited tells whether err from reading a thread's /proc file says that
// the thread has exited since it was listed.
func exited(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// readSlack reads the timer slack of thread tid in nanoseconds (reading
// another thread's needs CAP_SYS_NICE).
func readSlack(tid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/timerslack_ns")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
