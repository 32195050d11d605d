// Package nsthread runs Go code on an OS thread that has joined a set of
// namespaces. setns(2) and unshare(2) act on the calling thread only, and the
// Go scheduler moves goroutines between threads, so every such operation is
// done on a fresh goroutine pinned with runtime.LockOSThread. The goroutine
// ends without unlocking, which makes the runtime destroy the thread: a
// thread whose namespaces were changed never returns to the pool.
package nsthread

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"nsh.dev/nsh/internal/nserr"
)

// Join is one namespace to enter: an open namespace file and its
// CLONE_NEW* type.
type Join struct {
	Fd   int
	Type int
	Name string // for error messages, e.g. "net:[4026532201]"
	// Hold is what owns Fd (an *nsctx.NS): it is kept reachable until
	// the join is done, so that its descriptor is not released (and the
	// number reused) in between.
	Hold any
}

// Do runs fn on a new OS thread after it has joined the given namespaces,
// in order, and returns fn's error. The thread is discarded afterwards, so fn
// may also unshare or setns freely. Joining a mount namespace first
// unshares the thread's filesystem attributes (CLONE_FS), as the kernel
// requires of a multi-threaded process.
func Do(joins []Join, fn func() error) error {
	errc := make(chan error, 1)
	Go(func() { errc <- run(joins, fn) })
	return <-errc
}

// Go runs fn on a new goroutine locked to an OS thread that is not the
// process's main thread, and never unlocks it: when fn returns, the thread
// is destroyed, whatever fn did to its namespaces. The main thread is
// avoided because the runtime cannot end it: a locked goroutine exiting
// there leaves it parked in whatever namespaces fn chose, and /proc/self
// (which follows the main thread) would then describe those.
func Go(fn func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Hand the main thread back untouched and go again.
			runtime.UnlockOSThread()
			Go(fn)
			return
		}
		pinned(unix.Gettid(), true) // for good: the thread ends with fn
		fn()
	}()
}

func run(joins []Join, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic on namespace thread: %v", r)
		}
	}()
	for _, j := range joins {
		if j.Type == unix.CLONE_NEWNS {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return nserr.New("unshare", "CLONE_FS", err)
			}
			break
		}
	}
	for _, j := range joins {
		if err := unix.Setns(j.Fd, j.Type); err != nil {
			return nserr.New("setns", j.Name, err)
		}
	}
	err = fn()
	runtime.KeepAlive(joins) // fn may use their descriptors too
	return err
}

// Unshare runs on a new thread that has joined joins, unshares flags there,
// and then calls fn (typically to open /proc/thread-self/ns/* and so keep
// the new namespaces alive by file descriptor).
func Unshare(joins []Join, flags int, fn func() error) error {
	return Do(joins, func() error {
		if flags&unix.CLONE_NEWNS != 0 {
			// Unsharing a mount namespace needs private fs attributes too.
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return nserr.New("unshare", "CLONE_FS", err)
			}
		}
		if err := unix.Unshare(flags); err != nil {
			return nserr.New("unshare", FlagNames(flags), err)
		}
		return fn()
	})
}

// FlagNames renders CLONE_NEW* flags as "net|uts".
func FlagNames(flags int) string {
	s := ""
	for _, k := range Kinds {
		if flags&k.Flag != 0 {
			if s != "" {
				s += "|"
			}
			s += k.Name
		}
	}
	if s == "" {
		s = fmt.Sprintf("%#x", flags)
	}
	return s
}

// Kind describes one namespace kind.
type Kind struct {
	Name  string // name in /proc/PID/ns, e.g. "net"
	Flag  int    // CLONE_NEW* flag
	Const string // name of the flag constant, e.g. "CLONE_NEWNET"
	// ForChildren names the /proc/PID/ns file that holds the namespace the
	// process's future children get ("pid_for_children"), for the kinds
	// whose unshare(2) applies to children only.
	ForChildren string
}

// File names the kind's file in /proc/PID/ns that holds the namespace new
// processes get: ForChildren for pid and time, else Name.
func (k Kind) File() string {
	if k.ForChildren != "" {
		return k.ForChildren
	}
	return k.Name
}

// Kinds lists the eight namespace kinds, in the order setns(2) should
// join them: user first (it grants the capabilities for the rest), mnt last
// (after it, paths resolve in the new mount namespace). An array, so that
// its length is a constant: nsctx.Context has one entry per kind.
var Kinds = [8]Kind{
	{"user", unix.CLONE_NEWUSER, "CLONE_NEWUSER", ""},
	{"cgroup", unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP", ""},
	{"ipc", unix.CLONE_NEWIPC, "CLONE_NEWIPC", ""},
	{"uts", unix.CLONE_NEWUTS, "CLONE_NEWUTS", ""},
	{"net", unix.CLONE_NEWNET, "CLONE_NEWNET", ""},
	{"pid", unix.CLONE_NEWPID, "CLONE_NEWPID", "pid_for_children"},
	{"time", unix.CLONE_NEWTIME, "CLONE_NEWTIME", "time_for_children"},
	{"mnt", unix.CLONE_NEWNS, "CLONE_NEWNS", ""},
}

// KindByName returns the kind with the given /proc name.
func KindByName(name string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// KindByFlag returns the kind with the given CLONE_NEW* flag.
func KindByFlag(flag int) (Kind, bool) {
	for _, k := range Kinds {
		if k.Flag == flag {
			return k, true
		}
	}
	return Kind{}, false
}

// AllFlags is the OR of every kind's flag.
var AllFlags = func() int {
	f := 0
	for _, k := range Kinds {
		f |= k.Flag
	}
	return f
}()

// watch is the function WatchPins installed, or nil.
var watch atomic.Pointer[func(tid int, pinned bool)]

// WatchPins is a hook for tests (TestStressNamespaces): until the returned
// stop is called, w is told, on the thread itself, of every thread that
// becomes free to leave nsh's namespaces — before its first setns or
// unshare — and (pinned false) of a NetRunner thread that is back in
// them. A thread of Go (and Do, Unshare) is never released: it is
// destroyed with its goroutine. Every other thread of the process must
// always be in nsh's own namespaces. Without a watcher, a hop costs one
// atomic load more.
func WatchPins(w func(tid int, pinned bool)) (stop func()) {
	watch.Store(&w)
	return func() { watch.Store(nil) }
}

// pinned tells the watcher, if any, of a thread pinned or released.
func pinned(tid int, on bool) {
	if w := watch.Load(); w != nil {
		(*w)(tid, on)
	}
}
