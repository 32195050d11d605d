// Package nsctx holds namespaces by file descriptor and groups them into
// contexts. A Context is the set of eight namespaces (one per kind) that a
// shell's builtins and the processes it starts act in; it is an immutable
// value, so saving and restoring one is plain assignment. A Table owns every
// namespace file a run has opened: it closes the descriptor of a namespace
// no Go object references any more (see Table.sweep), and all of them at
// the end. A namespace nsh created lives exactly as long as its descriptor
// (or a process inside it, or a bind mount made on purpose).
package nsctx

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"golang.org/x/sys/unix"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
)

// NS is one namespace, held open. Its descriptor stays open as long as the
// *NS is reachable (from a Context, a Starlark value, an object made in the
// namespace, an undo in the run's registry, a Join in use) and the table is
// not closed; code that keeps only the number of Fd() must keep the *NS
// alive too (nsthread.Join.Hold, runtime.KeepAlive).
type NS struct {
	Kind nsthread.Kind
	Dev  uint64
	Ino  uint64
	fd   *fdCell // shared with the table, which closes it
}

// fdCell is the descriptor of one NS, -1 once closed (so a late use fails
// with EBADF, never on a reused number). The table holds the cell, not the
// NS, so that the NS can become unreachable.
type fdCell struct{ v atomic.Int32 }

// String renders the namespace as the kernel does: "net:[4026531840]".
func (n *NS) String() string { return fmt.Sprintf("%s:[%d]", n.Kind.Name, n.Ino) }

// Fd returns the open descriptor that holds the namespace, or -1 once its
// table is closed (so a late use fails with EBADF, never on a reused number).
func (n *NS) Fd() int { return int(n.fd.v.Load()) }

// Same reports whether a and b are the same namespace.
func Same(a, b *NS) bool {
	return a != nil && b != nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// Context is one namespace of each kind, indexed like nsthread.Kinds.
type Context [len(nsthread.Kinds)]*NS

// Get returns the namespace of the named kind.
func (c Context) Get(kind string) *NS {
	for i, k := range nsthread.Kinds {
		if k.Name == kind {
			return c[i]
		}
	}
	return nil
}

// With returns c with the given namespaces replacing those of their kinds.
func (c Context) With(nss ...*NS) Context {
	for _, n := range nss {
		c[index(n.Kind.Name)] = n
	}
	return c
}

func index(kind string) int {
	for i, k := range nsthread.Kinds {
		if k.Name == kind {
			return i
		}
	}
	panic("nsctx: unknown kind " + kind)
}

// Names maps each kind's CLONE_NEW* flag to its namespace's name as /proc
// shows it ("net:[4026531840]"), for the kinds c holds.
func (c Context) Names() map[int]string {
	m := map[int]string{}
	for i, k := range nsthread.Kinds {
		if c[i] != nil {
			m[k.Flag] = c[i].String()
		}
	}
	return m
}

// Equal reports whether two contexts hold the same namespaces.
func (c Context) Equal(d Context) bool {
	for i := range c {
		if !Same(c[i], d[i]) {
			return false
		}
	}
	return true
}

// ErrNotNamespace is in the error of Open for a file that is no namespace
// (errors.Is): a regular file no namespace is bind-mounted on, for one.
var ErrNotNamespace = errors.New("is not a namespace file")

// Table owns the namespace files of one run.
type Table struct {
	mu sync.Mutex
	// pidfd: the kernel has the pidfd namespace ioctls (OpenThreadSelf
	// uses them); else proc is nsh's own /proc, reachable from any mount
	// namespace.
	pidfd   bool
	proc    *os.File
	closed  bool
	byIno   map[[2]uint64]held // every namespace the table holds open
	Initial Context            // the namespaces nsh was started in (never released)
	// sweepAt is the number of held namespaces at which adopt sweeps.
	sweepAt   int
	onRelease []func(dev, ino uint64)
}

// held is one open namespace: the NS handed out, weakly, and its
// descriptor.
type held struct {
	ns weak.Pointer[NS]
	fd *fdCell
}

// minSweep is the fewest held namespaces at which adopt sweeps. Each
// namespace costs a descriptor here, and a network namespace a netlink
// socket too, so a loop that makes and drops namespaces stays under
// 2*minSweep descriptors of them plus what the script still references.
const minSweep = 32

// NewTable opens the namespaces of the calling thread as the initial
// context. For pid and time it takes pid_for_children/time_for_children,
// the namespaces new processes are started in. The calling thread must not
// have changed its namespaces (any thread the Go scheduler may run an
// unlocked goroutine on): not the process's, as /proc/self would give,
// since the main thread may be running a network-namespace job of another
// run (nsthread.NetRunner).
func NewTable() (*Table, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t := &Table{byIno: map[[2]uint64]held{}, sweepAt: minSweep}
	nss, err := t.openByPidfd(nsthread.AllFlags)
	if err == nil {
		t.pidfd = true
	} else {
		// A kernel without the ioctls (before 6.11): through /proc.
		if t.proc, err = openFile("/proc", unix.O_PATH|unix.O_DIRECTORY); err != nil {
			return nil, err
		}
		if nss, err = t.openByProc(nsthread.AllFlags); err != nil {
			t.Close()
			return nil, err
		}
	}
	copy(t.Initial[:], nss)
	return t, nil
}

// Close closes every namespace file the table holds.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range t.byIno {
		h.fd.close()
	}
	if t.proc != nil {
		t.proc.Close()
		t.proc = nil
	}
	t.byIno = map[[2]uint64]held{}
	t.closed = true
	return nil
}

// Open opens a namespace file (a /proc/PID/ns/* entry, or any file a
// namespace was bind-mounted on) and returns it, checking that it is a
// namespace at all and, if want is not empty, of that kind.
//
// The file is opened without blocking and without becoming a controlling
// terminal: a FIFO or a device given by mistake is refused at once, named
// with its kind, instead of waiting for a writer or a carrier.
func (t *Table) Open(path string, want string) (*NS, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("open", strconv.Quote(path), err)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		unix.Close(fd)
		return nil, nserr.New("statfs", strconv.Quote(path), err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		kind := fileKind(fd)
		unix.Close(fd)
		return nil, fmt.Errorf("%q %w: it is %s (expected /proc/PID/ns/KIND or a file a namespace was bind-mounted on)", path, ErrNotNamespace, kind)
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		unix.Close(fd)
		return nil, nserr.New("ioctl NS_GET_NSTYPE", strconv.Quote(path), err)
	}
	k, ok := nsthread.KindByFlag(typ)
	if !ok {
		unix.Close(fd)
		return nil, fmt.Errorf("%q: unknown namespace type %#x", path, typ)
	}
	if want != "" && k.Name != want {
		unix.Close(fd)
		return nil, fmt.Errorf("%q is a %s namespace, not %s", path, k.Name, want)
	}
	return t.adopt(fd, path, k)
}

// fileKind names the type of the file fd is open on, for errors.
func fileKind(fd int) string {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return "not a namespace"
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Size == 0 {
			return "an empty regular file"
		}
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a named pipe (FIFO)"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "a special file"
}

func (t *Table) open(path string, k nsthread.Kind) (*NS, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("open", strconv.Quote(path), err)
	}
	return t.adopt(fd, path, k)
}

// openFile opens path close-on-exec as a plain descriptor in an *os.File:
// os.OpenFile would first try to register it with Go's poller, which
// namespace files do not support.
func openFile(path string, flags int) (*os.File, error) {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("open", strconv.Quote(path), err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// adopt takes ownership of fd, a namespace opened from path. If the table
// already holds the same namespace, fd is closed and the existing entry
// returned, so a run holds one descriptor per namespace however often it is
// looked up. A new entry may first make the table sweep.
func (t *Table) adopt(fd int, path string, k nsthread.Kind) (*NS, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nserr.New("fstat", path, err)
	}
	key := [2]uint64{st.Dev, st.Ino}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		unix.Close(fd)
		return nil, errClosed
	}
	if h, ok := t.byIno[key]; ok {
		if n := h.ns.Value(); n != nil {
			unix.Close(fd)
			return n, nil
		}
		// Unreferenced but not swept yet: the namespace is still held,
		// so its entries elsewhere stay; the new NS takes fd.
		h.fd.close()
		delete(t.byIno, key)
	}
	if len(t.byIno) >= t.sweepAt {
		t.sweep()
	}
	n := &NS{Kind: k, Dev: st.Dev, Ino: st.Ino, fd: &fdCell{}}
	n.fd.v.Store(int32(fd))
	t.byIno[key] = held{ns: weak.Make(n), fd: n.fd}
	return n, nil
}

// OnRelease registers fn to be called with the device and inode of each
// namespace the table releases before the end (see sweep), before its
// descriptor is closed: the place to drop what is kept per namespace (a
// netlink socket, which holds a network namespace alive too; names).
// fn runs with the table locked and must not call the table.
func (t *Table) OnRelease(fn func(dev, ino uint64)) {
	t.mu.Lock()
	t.onRelease = append(t.onRelease, fn)
	t.mu.Unlock()
}

// sweep releases the namespaces nothing references any more: a script that
// makes namespaces in a loop and drops them (n = unshare("net") ...
// setns(start)) would otherwise hold two descriptors per namespace until
// the end of the run, and meet EMFILE. t.mu is held.
//
// Whether a namespace is still referenced is what Go's garbage collector
// knows: an *NS is referenced from contexts (the current one, saved ones in
// Starlark values), Starlark values, objects made in it (links, mounts,
// processes), undo closures in the run's registry and Joins in use, and
// explicit reference counting at each of those (contexts are copied by
// plain assignment) would be easy to get wrong. So the table holds each NS
// weakly, and sweep runs the collector and closes the descriptors whose NS
// is gone. It runs synchronously, from adopt, when the number of held
// namespaces reaches sweepAt, which then doubles over what stays held: a
// full collection per minSweep new namespaces at worst, amortized O(1) when
// all are kept. No finalizer or cleanup owns a descriptor: a descriptor is
// closed here or by Close, on a caller's goroutine.
func (t *Table) sweep() {
	runtime.GC()
	for key, h := range t.byIno {
		if h.ns.Value() != nil {
			continue
		}
		for _, fn := range t.onRelease {
			fn(key[0], key[1])
		}
		h.fd.close()
		delete(t.byIno, key)
	}
	t.sweepAt = max(minSweep, 2*len(t.byIno))
}

// Held returns the number of namespaces the table holds open.
func (t *Table) Held() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byIno)
}

func (c *fdCell) close() {
	if fd := c.v.Swap(-1); fd >= 0 {
		unix.Close(int(fd))
	}
}

// OpenProc opens the namespaces of process pid as a context. For pid and
// time it takes the namespace the process's children get.
func (t *Table) OpenProc(pid int) (Context, error) {
	var c Context
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return c, fmt.Errorf("no process with pid %d", pid)
	}
	for i, k := range nsthread.Kinds {
		n, err := t.open(fmt.Sprintf("/proc/%d/ns/%s", pid, k.File()), k)
		if err != nil && k.ForChildren != "" {
			// A process whose pid namespace has no init yet, or that
			// exited: fall back to the namespace it is in itself.
			n, err = t.open(fmt.Sprintf("/proc/%d/ns/%s", pid, k.Name), k)
		}
		if err != nil {
			return c, err
		}
		c[i] = n
	}
	return c, nil
}

// OpenThreadSelf opens the calling thread's namespaces of the given kinds
// (flags), in the order of nsthread.Kinds; for pid and time, those its
// children get. The caller keeps the goroutine locked to its thread.
func (t *Table) OpenThreadSelf(flags int) ([]*NS, error) {
	if t.pidfd {
		return t.openByPidfd(flags)
	}
	return t.openByProc(flags)
}

var errClosed = errors.New("namespace table is closed")

// openByProc is OpenThreadSelf through /proc/thread-self/ns.
func (t *Table) openByProc(flags int) ([]*NS, error) {
	var out []*NS
	for _, k := range nsthread.Kinds {
		if flags&k.Flag == 0 {
			continue
		}
		name := k.File()
		// Through nsh's own /proc: the thread may be in a mount
		// namespace without one (after pivot_root).
		t.mu.Lock()
		proc := t.proc
		t.mu.Unlock()
		if proc == nil {
			return nil, errClosed
		}
		fd, err := unix.Openat(int(proc.Fd()), "thread-self/ns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nserr.New("open", "/proc/thread-self/ns/"+name, err)
		}
		n, err := t.adopt(fd, "/proc/thread-self/ns/"+name, k)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// pidfdThread is PIDFD_THREAD (Linux 6.9): a pidfd of one thread, not of
// its thread group.
const pidfdThread = unix.O_EXCL

// pidfdGetNS holds the ioctls on a pidfd (linux/pidfd.h, Linux 6.11) that
// return a descriptor of a namespace of the thread, by kind name: for pid
// and time the namespace its children get, as pid_for_children and
// time_for_children do.
var pidfdGetNS = map[string]uint{
	"cgroup": 0xff01, "ipc": 0xff02, "mnt": 0xff03, "net": 0xff04,
	"pid": 0xff06, "time": 0xff08, "user": 0xff09, "uts": 0xff0a,
}

// openByPidfd is OpenThreadSelf through a pidfd of the calling thread: no
// path to walk through /proc, about half the cost, and no /proc needed.
// It fails on a kernel without these calls (PIDFD_THREAD: 6.9; the
// ioctls: 6.11); the namespaces adopted before a failure stay the table's.
func (t *Table) openByPidfd(flags int) ([]*NS, error) {
	pfd, err := unix.PidfdOpen(unix.Gettid(), pidfdThread)
	if err != nil {
		return nil, nserr.New("pidfd_open", "the calling thread", err)
	}
	defer unix.Close(pfd)
	var out []*NS
	for _, k := range nsthread.Kinds {
		if flags&k.Flag == 0 {
			continue
		}
		fd, err := unix.IoctlRetInt(pfd, pidfdGetNS[k.Name])
		if err != nil {
			return nil, nserr.New("ioctl PIDFD_GET_NAMESPACE", k.File()+" of the calling thread", err)
		}
		n, err := t.adopt(fd, "/proc/thread-self/ns/"+k.File(), k)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// Joins returns the setns steps that move a thread of this process from the
// initial context into c, in kernel-friendly order. User and time
// namespaces cannot be joined by a thread of a multi-threaded process; they
// are left out here and entered by the spawn helper for new processes.
func (t *Table) Joins(c Context) []nsthread.Join {
	var js []nsthread.Join
	for i, k := range nsthread.Kinds {
		if k.Name == "user" || k.Name == "time" || c[i] == nil || Same(c[i], t.Initial[i]) {
			continue
		}
		js = append(js, nsthread.Join{Fd: c[i].Fd(), Type: k.Flag, Name: c[i].String(), Hold: c[i]})
	}
	return js
}

// Diff describes the namespaces of c that differ from the initial context,
// e.g. "net:4026532201 uts:4026532202"; empty when c is the initial one.
func (t *Table) Diff(c Context) string {
	var parts []string
	for i, k := range nsthread.Kinds {
		if c[i] != nil && !Same(c[i], t.Initial[i]) {
			parts = append(parts, fmt.Sprintf("%s:%d", k.Name, c[i].Ino))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
