package nsthread

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

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
// job's namespace; nothing in nsh reads them for the network namespace.
//
// If a thread cannot go back home, it stays locked to its goroutine for
// good, so it never serves another goroutine, and the runner refuses every
// later job: the caller's thread is no longer where its code expects. After
// Close, jobs run as Do runs them, on a thread of their own.
type NetRunner struct {
	mu     sync.RWMutex // held for reading while a job runs, so Close waits for it
	home   int          // nsh's network namespace, opened by the first job; -1 before
	closed bool
	stuck  atomic.Pointer[error] // why a thread could not go home
}

// NewNetRunner returns a runner.
func NewNetRunner() *NetRunner { return &NetRunner{home: -1} }

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
	if err := r.openHome(); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if p := r.stuck.Load(); p != nil {
		runtime.UnlockOSThread()
		return *p
	}
	if r.closed {
		runtime.UnlockOSThread()
		return Do(joins, fn)
	}
	err := run(joins, fn)
	if serr := unix.Setns(r.home, unix.CLONE_NEWNET); serr != nil {
		// Stranded: the thread stays locked to this goroutine for good.
		stuck := nserr.New("setns", "back to nsh's network namespace", serr)
		r.stuck.CompareAndSwap(nil, &stuck)
		return errors.Join(err, stuck)
	}
	runtime.UnlockOSThread()
	return err
}

// openHome opens nsh's network namespace on first use, from the calling
// thread (locked, and not yet changed).
func (r *NetRunner) openHome() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.home >= 0 || r.closed {
		return nil
	}
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nserr.New("open", "/proc/thread-self/ns/net", err)
	}
	r.home = fd
	return nil
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
