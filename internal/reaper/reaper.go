// Package reaper keeps a run's promise that nothing it made outlives it
// even when nsh is killed with SIGKILL, which no handler sees. A link in
// the host's network namespace, a mount in its mount table, a named
// network namespace or a changed sysctl are not tied to any descriptor of
// nsh, so the kernel keeps them when nsh dies.
//
// The reaper is a second process: nsh re-executed with _NSH_REAPER_FD set,
// which a C constructor (reaper.c) catches before the Go runtime starts. It
// is its own process group (the terminal's Ctrl-C does not reach it) and
// ignores the usual termination signals. nsh tells it, over a
// SOCK_SEQPACKET socket, how to undo each such object as it is made
// (Add) and when that is no longer needed (Del: undone, kept, or gone).
// When nsh's end of the socket closes without Stop — nsh died — the reaper
// undoes what is left, newest first, and exits. Stop, at the end of a
// normal run, kills it.
//
// The undo steps are few and raw (delete a link by index, unmount,
// remove a file or an empty directory, write a file, kill the processes
// of a cgroup or of a user namespace), each in namespaces
// that nsh passes by descriptor once. The reaper reads its queue in
// batches, every 10 ms at most, so a run that makes many objects wakes it
// rarely.
package reaper

/*
#include "reaper.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
)

// Op is one undo step for the reaper; see DelLink, Umount, UmountNew,
// Unlink, Rmdir, Write, WriteIf, KillCgroup and KillUserns.
//
// Ops given ahead of their change (write ahead, see Reaper.Set) must be
// right whether the change was made or not, and touch only what it makes:
// the ones with a condition (DelLink with a name, UmountNew, Unlink with
// an inode, WriteIf) are made for that.
type Op struct {
	mnt, net, uts *nsctx.NS // nil: the reaper's own (nsh's initial) namespace
	kind          uint32
	arg           uint64
	data          []byte
}

// DelLink deletes the link with index ifindex in network namespace net
// (with a veth, both ends), if its name is name; an empty name: whatever
// its name.
func DelLink(net *nsctx.NS, ifindex int, name string) Op {
	return Op{net: net, kind: C.NSH_REAPER_DELLINK, arg: uint64(ifindex), data: cstrings(name)}
}

// UmountNew lazily unmounts path in mount namespace mnt unless the mount
// there is still the one with ID before (statx STATX_MNT_ID): the mount
// path was on before nsh mounted on it.
func UmountNew(mnt *nsctx.NS, path string, before uint64) Op {
	return Op{mnt: mnt, kind: C.NSH_REAPER_UMOUNT_NEW, arg: before, data: cstrings(path)}
}

// Umount lazily unmounts path in mount namespace mnt; if id is not 0,
// only while the mount on path is still the one with that mount ID.
func Umount(mnt *nsctx.NS, path string, id uint64) Op {
	return Op{mnt: mnt, kind: C.NSH_REAPER_UMOUNT, arg: id, data: cstrings(path)}
}

// Unlink removes the file path in mount namespace mnt, if ino is 0 or its
// inode number.
func Unlink(mnt *nsctx.NS, path string, ino uint64) Op {
	return Op{mnt: mnt, kind: C.NSH_REAPER_UNLINK, arg: ino, data: cstrings(path)}
}

// Rmdir removes the directory path in mount namespace mnt if it is empty.
func Rmdir(mnt *nsctx.NS, path string) Op {
	return Op{mnt: mnt, kind: C.NSH_REAPER_RMDIR, data: cstrings(path)}
}

// Write writes value to the file path (a /proc/sys entry) from network
// namespace net, through the reaper's own /proc.
func Write(net *nsctx.NS, path, value string) Op {
	return Op{net: net, kind: C.NSH_REAPER_WRITE, data: cstrings(path, value)}
}

// WriteIf writes value to the file path (a /proc/sys entry) from network
// namespace net and UTS namespace uts, through the reaper's own /proc,
// only while it reads expect (a final newline aside): the old value goes
// back only over the one nsh wrote.
func WriteIf(net, uts *nsctx.NS, path, value, expect string) Op {
	return Op{net: net, uts: uts, kind: C.NSH_REAPER_WRITE, arg: 1, data: cstrings(path, value, expect)}
}

// KillCgroup kills every process in the cgroup (v2) directory path, in
// the reaper's own mount namespace, with cgroup.kill, waits for them to
// be gone, and removes the cgroup.
func KillCgroup(path string) Op {
	return Op{kind: C.NSH_REAPER_KILLCG, data: cstrings(path)}
}

// KillUserns kills every process in the reaper's own user namespace, and
// in those below it, but the reaper: for rootless nsh, whose user
// namespace was made for the run.
func KillUserns() Op {
	return Op{kind: C.NSH_REAPER_KILLUSERNS, data: []byte{0}}
}

func cstrings(s ...string) []byte {
	var b []byte
	for _, x := range s {
		b = append(append(b, x...), 0)
	}
	return b
}

// Reaper is the handle of a running reaper process.
type Reaper struct {
	mu     sync.Mutex
	sock   int // nsh's end; -1 once stopped
	pid    int
	ns     map[[2]uint64]int32 // namespaces passed so far, by device and inode
	nextID uint64
}

// sndbuf is the send buffer asked for nsh's end of the socket.
const sndbuf = 4 << 20

// Start starts a reaper: nsh's own executable, whose stderr is nsh's.
func Start() (*Reaper, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("socketpair", "for the reaper", err)
	}
	defer unix.Close(fds[1])
	// Room for many records between two reads of the reaper (a chain of
	// 200 veths sends 400 before it looks): beyond the default limit
	// where root may, else up to net.core.wmem_max.
	if unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndbuf) != nil {
		unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf)
	}
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fds[0])
		return nil, nserr.New("open", "/dev/null", err)
	}
	defer unix.Close(null)
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"nsh-reaper"}, &syscall.ProcAttr{
		Env:   []string{"_NSH_REAPER_FD=3"},
		Files: []uintptr{uintptr(null), uintptr(null), os.Stderr.Fd(), uintptr(fds[1])},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		unix.Close(fds[0])
		return nil, nserr.New("start", "the reaper (/proc/self/exe)", err)
	}
	return &Reaper{sock: fds[0], pid: pid, ns: map[[2]uint64]int32{}}, nil
}

// Pid is the reaper's process ID.
func (r *Reaper) Pid() int { return r.pid }

func (r *Reaper) send(typ uint32, id uint64, body []byte, fd int) error {
	msg := make([]byte, C.sizeof_struct_nsh_reaper_msg, int(C.sizeof_struct_nsh_reaper_msg)+len(body))
	binary.NativeEndian.PutUint32(msg[0:], typ)
	binary.NativeEndian.PutUint64(msg[8:], id)
	msg = append(msg, body...)
	if len(msg) > C.NSH_REAPER_MAXMSG {
		return fmt.Errorf("reaper record of %d bytes is longer than %d", len(msg), C.NSH_REAPER_MAXMSG)
	}
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	for {
		err := unix.Sendmsg(r.sock, msg, oob, nil, 0)
		if !errors.Is(err, unix.EINTR) {
			return nserr.New("send", "to the reaper", err)
		}
	}
}

// nsID returns the id under which the reaper knows ns, passing it first if
// needed; -1 for nil. r.mu is held.
func (r *Reaper) nsID(ns *nsctx.NS) (int32, error) {
	if ns == nil {
		return -1, nil
	}
	key := [2]uint64{ns.Dev, ns.Ino}
	if id, ok := r.ns[key]; ok {
		return id, nil
	}
	id := int32(len(r.ns))
	err := r.send(C.NSH_REAPER_NS, uint64(id), nil, ns.Fd())
	runtime.KeepAlive(ns)
	if err != nil {
		return -1, err
	}
	r.ns[key] = id
	return id, nil
}

// Add hands the reaper the undo of one object (what describes it in the
// reaper's messages) and returns the record's id for Set and Del.
func (r *Reaper) Add(what string, ops ...Op) (uint64, error) {
	r.mu.Lock()
	r.nextID++
	id := r.nextID
	r.mu.Unlock()
	return id, r.Set(id, what, ops...)
}

// NewID returns a record id for Set, to give the ops of an object before
// it is made (write ahead) and replace them once it is.
func (r *Reaper) NewID() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextID++
	return r.nextID
}

// Set gives the reaper the undo of record id, replacing what it had for
// it. Ids must be used in the order NewID (or Add) gave them.
func (r *Reaper) Set(id uint64, what string, ops ...Op) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sock < 0 {
		return fmt.Errorf("the reaper is stopped")
	}
	body := cstrings(what)
	for _, op := range ops {
		var ids [3]int32
		for i, ns := range [3]*nsctx.NS{op.mnt, op.net, op.uts} {
			var err error
			if ids[i], err = r.nsID(ns); err != nil {
				return err
			}
		}
		for len(body)%8 != 0 { // ops are 8-aligned, as is the header before body
			body = append(body, 0)
		}
		var h C.struct_nsh_reaper_op
		h.mnt, h.net, h.uts = C.int32_t(ids[0]), C.int32_t(ids[1]), C.int32_t(ids[2])
		h.kind, h.len, h.arg = C.uint32_t(op.kind), C.uint32_t(len(op.data)), C.uint64_t(op.arg)
		body = append(body, unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h))...)
		body = append(body, op.data...)
	}
	return r.send(C.NSH_REAPER_ADD, id, body, -1)
}

// Del tells the reaper that record id needs no undo any more.
func (r *Reaper) Del(id uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sock < 0 {
		return nil
	}
	return r.send(C.NSH_REAPER_DEL, id, nil, -1)
}

// Stop ends the reaper without it undoing anything: the run has torn down
// (or kept) everything itself. The SIGKILL is sent before nsh's end of the
// socket closes, so the reaper never sees that end of file. It is reaped
// in the background: nsh usually exits right after, and need not wait.
func (r *Reaper) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sock < 0 {
		return nil
	}
	kerr := unix.Kill(r.pid, unix.SIGKILL)
	unix.Close(r.sock) // after the kill: if the reaper lives, it must not see end of file
	r.sock = -1
	go func(pid int) {
		for {
			if _, err := unix.Wait4(pid, nil, 0, nil); !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}(r.pid)
	if kerr != nil {
		return nserr.New("kill", "the reaper", kerr)
	}
	return nil
}

// Drop closes nsh's end of the socket without stopping the reaper, as
// nsh's death does: the reaper then undoes every live record and exits.
// Tests use it; the caller must wait for the process.
func (r *Reaper) Drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sock >= 0 {
		unix.Close(r.sock)
		r.sock = -1
	}
}

// Step is an op as data, for a record kept outside the reaper (a lab's
// journal, see internal/labs): what it does, to what, and in which
// namespaces.
type Step struct {
	Kind          string    // "dellink", "umount", "umount-new", "unlink", "rmdir", "write", "killcg", "killuserns"
	Arg           uint64    // the ifindex, mount ID, inode; for "write", 1 when Expect is set
	Path          string    // the file, mount point or cgroup; the link's name for "dellink"
	Value, Expect string    // "write": the value written, and the one it must read first
	Mnt, Net, UTS *nsctx.NS // nil: the reaper's own
}

var kindNames = map[uint32]string{
	C.NSH_REAPER_DELLINK: "dellink", C.NSH_REAPER_UMOUNT: "umount", C.NSH_REAPER_UMOUNT_NEW: "umount-new",
	C.NSH_REAPER_UNLINK: "unlink", C.NSH_REAPER_RMDIR: "rmdir", C.NSH_REAPER_WRITE: "write",
	C.NSH_REAPER_KILLCG: "killcg", C.NSH_REAPER_KILLUSERNS: "killuserns",
}

// Step returns op as data.
func (op Op) Step() Step {
	s := Step{Kind: kindNames[op.kind], Arg: op.arg, Mnt: op.mnt, Net: op.net, UTS: op.uts}
	parts := strings.Split(strings.TrimSuffix(string(op.data), "\x00"), "\x00")
	s.Path = parts[0]
	if len(parts) > 1 {
		s.Value = parts[1]
	}
	if len(parts) > 2 {
		s.Expect = parts[2]
	}
	return s
}
