package nsthread

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
)

// NetRunner runs jobs that change nothing but the network namespace of the
// thread they run on (setns or unshare CLONE_NEWNET) on the calling
// goroutine's own thread, locked for the job, and returns that thread to
// nsh's network namespace afterwards. It saves both the thread Do creates
// and destroys for every job and a hand-off to another thread, which are
// most of the cost when many network namespaces are made in a row.
//
// Every unlocked thread of the process is in nsh's network namespace
// (hops that change namespaces otherwise run on threads that are
// discarded), so the first job records that namespace as home. While a job
// runs on the main thread, /proc/self/ns/net and /proc/self/net describe the
// job's namespace: nsh reads its own namespaces through /proc/thread-self
// (nsctx.NewTable).
//
// Jobs run as Do runs them, on a thread of their own that is discarded
// after, when nsh may not join its own network namespace again (rootless:
// the host owns it), when the calling thread is already running a job, and
// after Close. If a thread cannot go back home all the same, it stays locked
// to its goroutine for good, so it never serves another goroutine, and the
// runner refuses every later job: the caller's thread is no longer where its
// code expects.
type NetRunner struct {
	mu      sync.RWMutex // held for reading while a job runs, so Close waits for it
	closed  bool         // under mu
	once    sync.Once    // opens home
	home    int          // nsh's network namespace; -1 when nsh cannot go back to it
	homeErr error

	busyMu sync.Mutex
	busy   map[int]bool // threads running a job
	stuck  error        // why a thread could not go home
}

// NewNetRunner returns a runner.
func NewNetRunner() *NetRunner { return &NetRunner{home: -1, busy: map[int]bool{}} }

// Do runs fn on the calling goroutine's thread after it has joined joins,
// which must all be network namespaces (anything else is run by the
// package-level Do on a thread of its own). fn may unshare or join network
// namespaces, and nothing else.
func (r *NetRunner) Do(joins []Join, fn func() error) error {
	for _, j := range joins {
		if j.Type != unix.CLONE_NEWNET {
			return Do(joins, fn)
		}
	}
	runtime.LockOSThread()
	tid := unix.Gettid()
	r.busyMu.Lock()
	nested, stuck := r.busy[tid], r.stuck
	if !nested && stuck == nil {
		r.busy[tid] = true
	}
	r.busyMu.Unlock()
	if stuck != nil {
		runtime.UnlockOSThread()
		return stuck
	}
	if nested {
		// This thread is inside a job already: its namespace is that
		// job's, not home.
		runtime.UnlockOSThread()
		return Do(joins, fn)
	}
	err, ran := r.doHere(joins, fn)
	r.busyMu.Lock()
	delete(r.busy, tid)
	r.busyMu.Unlock()
	if !ran {
		runtime.UnlockOSThread()
		return Do(joins, fn)
	}
	if err != nil && errors.Is(err, errStuck) {
		return err // the thread stays locked to this goroutine for good
	}
	runtime.UnlockOSThread()
	return err
}

// errStuck marks the error of a job whose thread could not go home.
var errStuck = errors.New("the thread stays outside nsh's network namespace")

// doHere runs the job on the calling thread, or reports that it did not
// (ran false) because the runner is closed or cannot bring a thread home.
func (r *NetRunner) doHere(joins []Join, fn func() error) (err error, ran bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil, false
	}
	r.once.Do(r.openHome)
	if r.homeErr != nil {
		return r.homeErr, true
	}
	if r.home < 0 {
		return nil, false
	}
	tid := unix.Gettid()
	pinned(tid, true)
	err = run(joins, fn)
	if serr := unix.Setns(r.home, unix.CLONE_NEWNET); serr != nil {
		stuck := fmt.Errorf("%w: %w", errStuck, nserr.New("setns", "back to nsh's network namespace", serr))
		r.busyMu.Lock()
		if r.stuck == nil {
			r.stuck = stuck
		}
		r.busyMu.Unlock()
		return errors.Join(err, stuck), true // pinned for good
	}
	pinned(tid, false)
	return err, true
}

// openHome opens nsh's network namespace from the calling thread (locked,
// and not yet changed), and checks that nsh may join it again: setns(2)
// into the namespace the thread is already in changes nothing but applies
// the same permission checks.
func (r *NetRunner) openHome() {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.homeErr = nserr.New("open", "/proc/thread-self/ns/net", err)
		return
	}
	if unix.Setns(fd, unix.CLONE_NEWNET) != nil {
		unix.Close(fd) // no way back: every job gets a thread of its own
		return
	}
	r.home = fd
}

// Close waits for running jobs and releases the runner's descriptor.
func (r *NetRunner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.home >= 0 {
		unix.Close(r.home)
		r.home = -1
	}
	r.closed = true
	return nil
}
