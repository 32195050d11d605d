package nsthread

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
)

// NetWorker runs functions on one long-lived locked thread that changes
// nothing but its network namespace: each job may join or create network
// namespaces (setns, unshare CLONE_NEWNET), and the thread goes back to the
// network namespace it started in afterwards. It saves the thread that Do
// creates and destroys for every job, where many network namespaces are
// made in a row. If the thread cannot go back, it is discarded (as Do
// discards every thread) and the next job starts a new one.
type NetWorker struct {
	mu   sync.Mutex
	cur  *worker // the running thread, or nil
	done bool
}

// worker is one thread of a NetWorker.
type worker struct {
	reqs chan func()
	quit chan struct{}
	dead chan struct{} // closed when the thread has ended
}

// NewNetWorker returns a worker; its thread is started on first use.
func NewNetWorker() *NetWorker { return &NetWorker{} }

// Do runs fn on the worker after it has joined joins, which must all be
// network namespaces (anything else is run by the package-level Do on a
// thread of its own). fn may unshare or join network namespaces, and
// nothing else.
func (w *NetWorker) Do(joins []Join, fn func() error) error {
	for _, j := range joins {
		if j.Type != unix.CLONE_NEWNET {
			return Do(joins, fn)
		}
	}
	errc := make(chan error, 1)
	job := func() { errc <- run(joins, fn) }
	for {
		t, err := w.thread()
		if err != nil {
			return err
		}
		select {
		case t.reqs <- job:
			return <-errc
		case <-t.dead: // discarded meanwhile: take the next one
		}
	}
}

// thread returns the worker's running thread, starting one if there is
// none.
func (w *NetWorker) thread() (*worker, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil, fmt.Errorf("nsthread: the network worker is closed")
	}
	if w.cur != nil {
		return w.cur, nil
	}
	t := &worker{reqs: make(chan func()), quit: make(chan struct{}), dead: make(chan struct{})}
	errc := make(chan error, 1)
	Go(func() {
		defer close(t.dead)
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- nserr.New("open", "/proc/thread-self/ns/net", err)
			return
		}
		defer unix.Close(home)
		errc <- nil
		for {
			select {
			case f := <-t.reqs:
				f()
				if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
					// Stranded in another namespace: end the thread (it
					// is locked, so the runtime destroys it).
					w.mu.Lock()
					if w.cur == t {
						w.cur = nil
					}
					w.mu.Unlock()
					return
				}
			case <-t.quit:
				return
			}
		}
	})
	if err := <-errc; err != nil {
		return nil, err
	}
	w.cur = t
	return t, nil
}

// Close ends the worker's thread. Later jobs fail.
func (w *NetWorker) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur != nil {
		close(w.cur.quit)
	}
	w.cur, w.done = nil, true
	return nil
}
