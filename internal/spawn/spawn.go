// Package spawn starts processes in namespaces. A Go process is
// multi-threaded, so it cannot join a user or time namespace, unshare a user
// namespace, or set time offsets before a process enters its time namespace;
// and SysProcAttr cannot setns, mount or pivot_root in the child. spawn
// therefore clones the child from C (spawn.c) on a thread that is in the
// thread-joinable namespaces of the context (net, uts, ipc, pid, cgroup,
// mnt) and never exits while its children live (the parent-death signal is
// per thread): the child is a single-threaded copy of that thread which
// runs a short list of raw system calls and execs the target directly, so
// there is no re-exec and no second Go runtime; it joins user and time
// itself. In nsh's own namespaces that thread is the main thread, when the
// caller runs on it (cmd/nsh keeps the interpreter there): nothing ever
// moves it to other namespaces and it lives as long as the process. Any
// other context, or a caller on another thread, goes through a dedicated,
// locked spawner thread that joins the context before cloning.
//
// Wait reaps a child through its pidfd, which Go's poller watches: no
// thread blocks in wait4 while the child runs.
//
// Failures in the child come back over a CLOEXEC status socket as step and
// errno; end of file on it means the exec succeeded. In Init mode the child
// re-executes nsh as "nsh-init" (a C constructor that runs before the Go
// runtime), PID 1 of a new PID namespace that reaps orphans and exits when
// nsh closes the socket.
package spawn

/*
#include <stdlib.h>
#include "spawn.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/procstat"
)

// Mode says what the child does once its namespaces are in place.
type Mode int

const (
	// Exec runs Argv.
	Exec Mode = C.NSH_EXEC
	// Hold keeps the child alive, doing nothing, until Child.Release, so
	// its namespaces can be opened through /proc/PID/ns.
	Hold Mode = C.NSH_HOLD
	// Init makes the child nsh-init, the reaper of a new PID namespace,
	// alive until Child.Release (or nsh's death).
	Init Mode = C.NSH_INIT
	// maps makes the child write another process's id maps from the user
	// namespace it joined (Setns), then exit: see writeIDMapsAs.
	maps Mode = C.NSH_MAPS
)

// Identity is who a child runs as: the ids it switches to as the last
// step before its exec (after its user namespace's maps are written and
// every privileged step is done), in the order setgroups, setresgid,
// setresuid.
type Identity struct {
	// UID and GID are ids of the child's user namespace; -1 keeps the
	// default (see Config.Identity).
	UID, GID int
	// Groups are the supplementary groups when GroupsGiven; otherwise
	// the child has none where its user namespace allows setgroups, and
	// keeps those it inherited where it does not.
	Groups      []int
	GroupsGiven bool
}

// Config describes a child.
type Config struct {
	Mode Mode
	Argv []string
	Env  []string
	// Joins are the thread-joinable namespaces (every kind but user and
	// time) the spawner thread is in when it clones.
	Joins []nsthread.Join
	// Setns are joined by the child itself (user, then time).
	Setns []nsthread.Join
	// New are the CLONE_NEW* kinds created for the child, owned by its
	// user namespace (a new one among them, or the one it joined).
	New int
	// UIDMap and GIDMap are written for a new user namespace by Start
	// (Spawner.WriteIDMaps: itself, from a helper in the parent user
	// namespace, or through newuidmap/newgidmap); nil maps the caller's
	// effective uid/gid to root, as unshare --map-root-user.
	UIDMap, GIDMap idmap.Map
	// Paused, with a new user namespace, writes no maps: Start returns
	// while the child waits in its new user namespace, before anything
	// else; the caller may write its maps (Spawner.WriteIDMaps) and then
	// calls Child.Resume. A child resumed without maps runs unmapped (as
	// the overflow ids, 65534).
	Paused bool
	// BeforeResume, when set, is called by Resume before the paused child
	// goes on (e.g. to check Identity against the maps written); an error
	// leaves it paused.
	BeforeResume func(pid int) error
	// Identity is what an Exec child switches to before its exec. nil:
	// in a user namespace other than nsh's own (a new one, or one
	// joined through Setns) it becomes uid and gid 0 where 0 is mapped,
	// keeps its ids (nsh's) where 0 is not, and drops nsh's supplementary
	// groups where setgroups is allowed, as nsenter --user does; in nsh's
	// own user namespace it keeps nsh's ids. Given, UID/GID of -1 follow
	// that default, and in nsh's own user namespace they stay nsh's.
	Identity *Identity
	// maps mode: the /proc/PID directory of the target and what to write
	// (nil: nothing; "": the helper's own id as root).
	mapsDir                   int
	setgroups, uidMap, gidMap *string
	// TimeOffsets, with CLONE_NEWTIME in New, are written to the new time
	// namespace before the child execs.
	TimeOffsets         bool
	Monotonic, Boottime time.Duration
	Hostname            *string
	Domainname          *string
	// Propagation (MS_PRIVATE, MS_SLAVE, ...) is applied recursively to /
	// of a new mount namespace; 0 leaves it.
	Propagation uintptr
	MountProc   bool
	Root        string // pivot_root into this directory (needs a new mount namespace)
	Cwd         string
	Stdio       [3]*os.File // nil: inherit nsh's
	Setsid      bool
	Foreground  bool // make the child's new process group the foreground one of TTY
	TTY         int
	Pdeathsig   syscall.Signal
	// LoUp brings up the loopback of a new network namespace (New has
	// CLONE_NEWNET) before the exec.
	LoUp bool
	// Dev, with Root, mounts a minimal /dev on Root's dev directory
	// before the pivot, as bubblewrap's --dev: a tmpfs with binds of the
	// host's null, zero, full, random, urandom and tty, a new devpts on
	// pts (ptmx a symlink to pts/ptmx), a tmpfs on shm, and fd, stdin,
	// stdout, stderr symlinks into /proc/self/fd.
	Dev Dev
	// Cgroup, if not nil, is the directory of a cgroup (v2) the child
	// is born in (clone3 CLONE_INTO_CGROUP), so that it and everything
	// it forks can be killed together (cgroup.kill).
	Cgroup *os.File
}

// Child is a started process.
type Child struct {
	Pid    int // the process (in nsh's PID namespace)
	pidfd  int
	waitOn int // the process nsh reaps: Pid, or the relay that mirrors it
	// waitfd is the pidfd of waitOn: pidfd, or the relay's own. Wait
	// hands it to waitFile, which then owns it.
	waitfd   int
	waitFile *os.File
	sock     *os.File
	// foreground children stopped by the terminal are resumed at once
	foreground bool
	cfg        *Config
	paused     bool // waits for Resume in its new user namespace
	spawner    *Spawner
}

// Spawner owns the locked OS threads children are cloned from when the
// main thread cannot be (see the package doc). Usually one, started on
// first need: it joins the context's namespaces before each clone. A
// thread that left a namespace owned by an ancestor user namespace cannot
// go back (rootless nsh, or after joining a user namespace's kinds): a
// fresh thread, born in nsh's own namespaces, then takes over for that
// context. Every thread lives until Close, as its children's parent-death
// signal is tied to it.
type Spawner struct {
	mu      sync.Mutex
	threads []*spawnThread
	quit    chan struct{}
	// home names nsh's own namespaces by type ("net:[4026531840]"), those
	// of the main thread and of every thread the runtime starts.
	home map[int]string
}

// children holds what nsh started, for KillOrphans to leave alone: the
// children not yet reaped, and the sessions of those started with Setsid
// (detached), kept after they end. It is process-wide, as the kernel's
// parent-child relation and the subreaper flag are: every spawner of every
// run in the process (tests run several at once) must see the others'.
var children = struct {
	sync.Mutex
	live, sessions map[int]bool
	subreapers     int // runs that want nsh to be a subreaper
	// stopReaping ends the goroutine that reaps exited orphans while nsh
	// is a subreaper (reapOrphans); nil when none runs.
	stopReaping chan struct{}
	// starting is held for reading by whoever makes a child of nsh, from
	// before its creation until it is in live (or Tracked), and for
	// writing by KillOrphans while it tells orphans from children: a
	// child between its clone and its registration would otherwise pass
	// for an orphan of another run and be killed and reaped under it.
	starting sync.RWMutex
}{live: map[int]bool{}, sessions: map[int]bool{}}

// Starting is called by code that makes a child of nsh by other means
// than a Spawner (the reaper) before it does; the function it returns is
// called once the child is Tracked (or was not made). See KillOrphans.
func Starting() (done func()) {
	children.starting.RLock()
	return children.starting.RUnlock
}

// maxThreads bounds the spawner threads of one run.
const maxThreads = 16

type spawnThread struct {
	reqs chan func()
	in   map[int]string // namespace type -> name of the one the thread is in
}

// NewSpawner returns a spawner for a process whose own namespaces are
// home: each kind's CLONE_NEW* flag mapped to its name as /proc shows it
// ("net:[4026531840]"; for pid and time, those of pid_for_children and
// time_for_children), as the run's namespace table already holds them. It
// starts no thread yet. Close it after every child it started without a
// parent-death signal can be left alone: the exit of its threads sends the
// parent-death signal to the others.
func NewSpawner(home map[int]string) *Spawner {
	return &Spawner{quit: make(chan struct{}), home: home}
}

// OwnNamespaces reads the names NewSpawner takes from the calling thread,
// which must be unchanged (see nsctx.NewTable), for callers without a
// namespace table.
func OwnNamespaces() (map[int]string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	home := map[int]string{}
	for _, k := range nsthread.Kinds {
		name := k.File()
		l, err := os.Readlink("/proc/thread-self/ns/" + name)
		if err != nil {
			return nil, nserr.New("readlink", "/proc/thread-self/ns/"+name, err)
		}
		home[k.Flag] = l
	}
	return home, nil
}

func (s *Spawner) newThread() (*spawnThread, error) {
	// The thread is born in nsh's own namespaces (a thread whose
	// namespaces were changed never returns to the runtime's pool). The
	// names are noted, so joining a namespace it is already in is skipped
	// (it would need CAP_SYS_ADMIN for nothing).
	t := &spawnThread{reqs: make(chan func()), in: map[int]string{}}
	for typ, name := range s.home {
		t.in[typ] = name
	}
	errc := make(chan error, 1)
	// A thread of its own, never the main one, destroyed when it ends.
	nsthread.Go(func() {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- nserr.New("unshare", "CLONE_FS", err)
			return
		}
		errc <- nil
		for {
			select {
			case f := <-t.reqs:
				f()
			case <-s.quit:
				return
			}
		}
	})
	if err := <-errc; err != nil {
		return nil, err
	}
	return t, nil
}

// Close ends the spawner threads.
func (s *Spawner) Close() error {
	close(s.quit)
	return nil
}

// do runs f on the thread.
func (t *spawnThread) do(f func()) {
	done := make(chan struct{})
	t.reqs <- func() { f(); close(done) }
	<-done
}

// atHome reports whether joins are all nsh's own namespaces.
func (s *Spawner) atHome(joins []nsthread.Join) bool {
	for _, j := range joins {
		if s.home[j.Type] != j.Name {
			return false
		}
	}
	return true
}

// onMainThread runs f if the calling goroutine is on the process's main
// thread, locked there meanwhile, and reports whether it did.
func onMainThread(f func()) bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if unix.Gettid() != unix.Getpid() {
		return false
	}
	f()
	return true
}

func (t *spawnThread) join(joins []nsthread.Join) error {
	for _, j := range joins {
		if t.in[j.Type] == j.Name {
			continue
		}
		if err := unix.Setns(j.Fd, j.Type); err != nil {
			delete(t.in, j.Type)
			return nserr.New("setns", j.Name, err)
		}
		t.in[j.Type] = j.Name
	}
	return nil
}

// onThread runs f on a thread in the context: on the main thread if the
// context is nsh's own and the caller runs there, else on the first
// spawner thread whose join succeeds, else on a fresh one.
func (s *Spawner) onThread(joins []nsthread.Join, f func()) error {
	if s.atHome(joins) && onMainThread(f) {
		return nil
	}
	for i := 0; ; i++ {
		s.mu.Lock()
		fresh := false
		if i == len(s.threads) {
			if i == maxThreads {
				s.mu.Unlock()
				return fmt.Errorf("spawn: %d spawner threads, none can join the context", maxThreads)
			}
			t, err := s.newThread()
			if err != nil {
				s.mu.Unlock()
				return err
			}
			s.threads = append(s.threads, t)
			fresh = true
		}
		t := s.threads[i]
		s.mu.Unlock()
		var jerr error
		t.do(func() {
			if jerr = t.join(joins); jerr == nil {
				f()
			}
		})
		if jerr == nil || fresh || !errors.Is(jerr, unix.EPERM) {
			return jerr
		}
	}
}

// Start starts a child. On error nothing is left: a child that failed was
// reaped.
func (s *Spawner) Start(cfg *Config) (*Child, error) {
	if cfg.Mode == Exec && len(cfg.Argv) == 0 {
		return nil, errors.New("empty argv")
	}
	if err := cfg.checkCStrings(); err != nil {
		return nil, err
	}
	// The descriptors of cfg.Joins and cfg.Setns are owned by their Hold:
	// kept open until the child has used them.
	defer runtime.KeepAlive(cfg)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("socketpair", "", err)
	}
	sock := os.NewFile(uintptr(fds[0]), "spawn-status")
	defer func() {
		if fds[1] >= 0 {
			unix.Close(fds[1])
		}
	}()

	c := (*C.struct_nsh_cfg)(C.calloc(1, C.sizeof_struct_nsh_cfg))
	defer C.free(unsafe.Pointer(c))
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	cstr := func(s string) *C.char {
		p := C.CString(s)
		frees = append(frees, unsafe.Pointer(p))
		return p
	}
	cvec := func(v []string) **C.char {
		arr := (**C.char)(C.calloc(C.size_t(len(v)+1), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		frees = append(frees, unsafe.Pointer(arr))
		sl := unsafe.Slice(arr, len(v)+1)
		for i, x := range v {
			sl[i] = cstr(x)
		}
		return arr
	}

	c.mode = C.int(cfg.Mode)
	c.sock = C.int(fds[1])
	c.psock = C.int(fds[0])
	if len(cfg.Setns) > C.NSH_MAX_SETNS {
		return nil, errors.New("too many namespaces to join")
	}
	c.nsetns = C.int(len(cfg.Setns))
	for i, j := range cfg.Setns {
		c.setns_fd[i] = C.int(j.Fd)
		c.setns_type[i] = C.int(j.Type)
	}
	// Kinds are created by clone() itself when the child joins nothing
	// first (they are then owned by the right user namespace); a time
	// namespace is always unshared in the child, so its offsets can be
	// written before anything enters it (execve does).
	// The kernel refuses clone(CLONE_NEWPID or CLONE_NEWUSER) from a
	// thread whose pid_for_children is not its own PID namespace, so in
	// a joined PID namespace the child unshares too.
	foreignPID := false
	for _, j := range cfg.Joins {
		if j.Type == unix.CLONE_NEWPID && j.Name != s.home[unix.CLONE_NEWPID] {
			foreignPID = true
		}
	}
	if len(cfg.Setns) == 0 && !foreignPID {
		c.clone_flags = C.int(cfg.New &^ unix.CLONE_NEWTIME)
		c.unshare_flags = C.int(cfg.New & unix.CLONE_NEWTIME)
	} else {
		c.unshare_flags = C.int(cfg.New)
	}
	if cfg.TimeOffsets && cfg.New&unix.CLONE_NEWTIME != 0 {
		c.time_offsets = 1
		c.mono_sec, c.mono_nsec = C.longlong(cfg.Monotonic/time.Second), C.longlong(cfg.Monotonic%time.Second)
		c.boot_sec, c.boot_nsec = C.longlong(cfg.Boottime/time.Second), C.longlong(cfg.Boottime%time.Second)
	}
	if cfg.Hostname != nil {
		c.hostname = cstr(*cfg.Hostname)
	}
	if cfg.Domainname != nil {
		c.domainname = cstr(*cfg.Domainname)
	}
	c.propagation = C.ulong(cfg.Propagation)
	if cfg.MountProc {
		c.mount_proc = 1
	}
	if cfg.LoUp {
		c.lo_up = 1
	}
	if cfg.Root != "" {
		c.root = cstr(cfg.Root)
		c.dev = C.int(cfg.Dev)
	}
	if cfg.Cwd != "" {
		c.cwd = cstr(cfg.Cwd)
	}
	for i, f := range cfg.Stdio {
		c.fd[i] = -1
		if f != nil {
			c.fd[i] = C.int(f.Fd())
		}
	}
	if cfg.Setsid {
		c.setsid = 1
	}
	if cfg.Foreground {
		c.foreground = 1
		c.tty = C.int(cfg.TTY)
	}
	c.pdeathsig = C.int(cfg.Pdeathsig)
	c.parent_pid = C.int(os.Getpid())
	c.exe_fd = -1
	c.cgroup_fd = -1
	if cfg.Cgroup != nil {
		c.cgroup_fd = C.int(cfg.Cgroup.Fd())
	}
	if cfg.Mode == Init {
		exe, err := unix.Open("/proc/self/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nserr.New("open", "/proc/self/exe", err)
		}
		defer unix.Close(exe)
		c.exe_fd = C.int(exe)
	}
	if cfg.Mode == maps {
		c.maps_dir = C.int(cfg.mapsDir)
		for _, x := range []struct {
			v   *string
			dst **C.char
		}{{cfg.setgroups, &c.setgroups}, {cfg.uidMap, &c.uid_map}, {cfg.gidMap, &c.gid_map}} {
			if x.v != nil {
				*x.dst = cstr(*x.v)
			}
		}
	}
	if cfg.Mode == Exec {
		setIdentity(c, cfg, func(n int) unsafe.Pointer {
			p := C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.uint(0))))
			frees = append(frees, p)
			return p
		})
		c.argv = cvec(cfg.Argv)
		c.envp = cvec(cfg.Env)
		c.path = cstr(pathOf(cfg.Env))
	}

	// A child that shares nsh's address space runs on a stack of its own
	// until its exec; it is freed after the handshake has seen the exec
	// (or the child was reaped), so it outlives the child's use of it. A
	// paused child is still running when Start returns (and frees the
	// stack and the C copy of cfg), so it gets an address space of its own.
	var stack unsafe.Pointer
	if !cfg.Paused && C.nsh_can_share_vm(c) != 0 {
		if stack = C.malloc(C.NSH_STACK); stack == nil {
			return nil, nserr.New("malloc", "spawn stack", syscall.ENOMEM)
		}
		defer C.free(stack)
	}
	var pid, pidfd int
	registered := Starting()
	defer func() { registered() }() // unless the child was made and is in children.live
	jerr := s.onThread(cfg.Joins, func() {
		var fd C.int
		pid = int(C.nsh_spawn(c, stack, &fd))
		pidfd = int(fd)
		for _, f := range cfg.Stdio {
			runtime.KeepAlive(f)
		}
		runtime.KeepAlive(cfg.Cgroup)
	})
	if jerr != nil {
		sock.Close()
		return nil, jerr
	}
	if pid < 0 {
		sock.Close()
		if cfg.Cgroup != nil {
			return nil, nserr.New("clone3", nsthread.FlagNames(cfg.New)+" into cgroup "+cfg.Cgroup.Name(), syscall.Errno(-pid))
		}
		return nil, nserr.New("clone", nsthread.FlagNames(cfg.New), syscall.Errno(-pid))
	}
	unix.Close(fds[1])
	fds[1] = -1
	ch := &Child{Pid: pid, pidfd: pidfd, waitOn: pid, waitfd: pidfd, sock: sock, foreground: cfg.Foreground, cfg: cfg, spawner: s}
	children.Lock()
	children.live[pid] = true
	if cfg.Setsid {
		children.sessions[pid] = true
	}
	children.Unlock()
	registered()
	registered = func() {}
	if err := ch.handshake(); err != nil {
		ch.abandon()
		return nil, err
	}
	return ch, nil
}

// setIdentity fills the identity fields of c from cfg (see
// Config.Identity); alloc returns C memory for n gids, freed by the caller.
func setIdentity(c *C.struct_nsh_cfg, cfg *Config, alloc func(n int) unsafe.Pointer) {
	foreign := cfg.New&unix.CLONE_NEWUSER != 0
	for _, j := range cfg.Setns {
		if j.Type == unix.CLONE_NEWUSER {
			foreign = true
		}
	}
	id := cfg.Identity
	if !foreign && id == nil {
		return
	}
	c.ident = 1
	c.uid, c.gid = -1, -1
	if foreign {
		c.ident_default = 1
	}
	if id == nil {
		return
	}
	c.uid, c.gid = C.longlong(id.UID), C.longlong(id.GID)
	if id.GroupsGiven {
		c.groups_given = 1
		c.ngroups = C.int(len(id.Groups))
		if len(id.Groups) > 0 {
			p := alloc(len(id.Groups))
			gs := unsafe.Slice((*C.uint)(p), len(id.Groups))
			for i, g := range id.Groups {
				gs[i] = C.uint(g)
			}
			c.groups = (*C.uint)(p)
		}
	}
}

func pathOf(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if strings.HasPrefix(env[i], "PATH=") {
			return env[i][5:]
		}
	}
	return ""
}

type msg struct{ Type, Step, Arg, Err int32 }

func (ch *Child) send(m msg) error {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint32(b[0:], uint32(m.Type))
	_, err := ch.sock.Write(b)
	return err
}

// Paused reports whether the child waits for Resume.
func (ch *Child) Paused() bool { return ch.paused }

// Resume lets a paused child go on (with whatever maps were written
// meanwhile) and follows it as Start does. On error the child was killed;
// the caller still reaps it with Wait.
func (ch *Child) Resume() error {
	if !ch.paused {
		return errors.New("the process is not paused")
	}
	if ch.cfg.BeforeResume != nil {
		if err := ch.cfg.BeforeResume(ch.Pid); err != nil {
			return err
		}
	}
	ch.paused = false
	if err := ch.send(msg{Type: C.NSH_MSG_GO}); err != nil {
		ch.Kill(unix.SIGKILL)
		return nserr.New("write", "spawn status socket", err)
	}
	if err := ch.handshake(); err != nil {
		ch.Kill(unix.SIGKILL)
		ch.Release()
		return err
	}
	return nil
}

// handshake follows the child until it execs (EOF), is ready (hold/init),
// waits paused for its maps, or reports a failure.
func (ch *Child) handshake() error {
	cfg := ch.cfg
	b := make([]byte, 16)
	for {
		n, err := ch.sock.Read(b)
		if n == 0 || err != nil {
			if cfg.Mode != Exec && cfg.Mode != maps {
				return fmt.Errorf("spawn helper ended without reporting (%v)", err)
			}
			ch.sock.Close()
			ch.sock = nil
			return nil
		}
		m := msg{
			Type: int32(binary.NativeEndian.Uint32(b[0:])), Step: int32(binary.NativeEndian.Uint32(b[4:])),
			Arg: int32(binary.NativeEndian.Uint32(b[8:])), Err: int32(binary.NativeEndian.Uint32(b[12:])),
		}
		switch m.Type {
		case C.NSH_MSG_MAPS:
			if cfg.Paused {
				ch.paused = true
				return nil
			}
			if err := ch.spawner.writeIDMaps(ch.Pid, cfg.UIDMap, cfg.GIDMap, "", true, nil); err != nil {
				return err
			}
			if err := ch.send(msg{Type: C.NSH_MSG_GO}); err != nil {
				return nserr.New("write", "spawn status socket", err)
			}
		case C.NSH_MSG_FORKED:
			real, err := childOf(ch.Pid)
			if err != nil {
				return err
			}
			fd, err := unix.PidfdOpen(real, 0)
			if err != nil {
				return nserr.New("pidfd_open", strconv.Itoa(real), err)
			}
			// The relay's pidfd stays, to wait on it.
			ch.pidfd, ch.Pid = fd, real
			if err := ch.send(msg{Type: C.NSH_MSG_GO}); err != nil {
				return nserr.New("write", "spawn status socket", err)
			}
		case C.NSH_MSG_READY:
			return nil
		case C.NSH_MSG_ERROR:
			return stepError(cfg, int(m.Step), int(m.Arg), syscall.Errno(m.Err))
		default:
			return fmt.Errorf("spawn helper: unexpected message %q", rune(m.Type))
		}
	}
}

// childOf returns the only child of pid, read from /proc.
func childOf(pid int) (int, error) {
	p := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, nserr.New("read", p, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, fmt.Errorf("spawn relay %d has %d children, want 1", pid, len(f))
	}
	return strconv.Atoi(f[0])
}

// stepError renders a failure reported by the child with what it was
// doing, e.g. `sethostname "x": EINVAL: invalid argument`.
func stepError(cfg *Config, step, arg int, errno syscall.Errno) error {
	switch step {
	case C.NSH_STEP_PDEATHSIG:
		return nserr.New("prctl", "PR_SET_PDEATHSIG", errno)
	case C.NSH_STEP_SETNS:
		name := "?"
		if arg < len(cfg.Setns) {
			name = cfg.Setns[arg].Name
		}
		return nserr.New("setns", name, errno)
	case C.NSH_STEP_UNSHARE_USER:
		return nserr.New("unshare", "user", errno)
	case C.NSH_STEP_MAPS:
		return nserr.New("wait for id maps", "", errno)
	case C.NSH_STEP_UNSHARE:
		return nserr.New("unshare", nsthread.FlagNames(arg), errno)
	case C.NSH_STEP_TIMENS:
		return nserr.New("write", "/proc/self/timens_offsets", errno)
	case C.NSH_STEP_FORK:
		return nserr.New("fork", "first process of the new pid namespace", errno)
	case C.NSH_STEP_PROPAGATION:
		return nserr.New("mount", "--make-rprivate /", errno)
	case C.NSH_STEP_HOSTNAME:
		return nserr.New("sethostname", strconv.Quote(deref(cfg.Hostname)), errno)
	case C.NSH_STEP_DOMAINNAME:
		return nserr.New("setdomainname", strconv.Quote(deref(cfg.Domainname)), errno)
	case C.NSH_STEP_PROC_PRIVATE:
		return nserr.New("mount", "--make-rprivate /proc", errno)
	case C.NSH_STEP_MOUNT_PROC:
		if arg == 1 {
			return rootDirError("proc", "-t proc proc", cfg.Root, errno)
		}
		return nserr.New("mount", "-t proc proc /proc", errno)
	case C.NSH_STEP_ROOT_BIND:
		return nserr.New("mount", "--rbind "+strconv.Quote(cfg.Root), errno)
	case C.NSH_STEP_PIVOT:
		if arg == 1 {
			return nserr.New("umount", "old root", errno)
		}
		return nserr.Errorf("pivot_root", strconv.Quote(cfg.Root), errno, "the new root must be a directory on a private mount")
	case C.NSH_STEP_CHDIR:
		if arg == 1 {
			return nserr.New("chdir", strconv.Quote(cfg.Cwd), errno)
		}
		return nserr.New("chdir", strconv.Quote(cfg.Root), errno)
	case C.NSH_STEP_STDIO:
		return nserr.New("dup2", "fd "+strconv.Itoa(arg), errno)
	case C.NSH_STEP_SETSID:
		return nserr.New("setsid", "", errno)
	case C.NSH_STEP_FOREGROUND:
		return nserr.New("tcsetpgrp", "", errno)
	case C.NSH_STEP_WRITE_MAPS:
		file := [3]string{"setgroups", "uid_map", "gid_map"}[arg%3]
		if errno == unix.EPERM && arg != 0 {
			return nserr.Errorf("write", file+" from the parent user namespace", errno,
				"the outside ids must exist in the parent user namespace (the context's, whose own map says which)")
		}
		return nserr.New("write", file+" from the parent user namespace", errno)
	case C.NSH_STEP_SETGROUPS:
		gs := "[]"
		if id := cfg.Identity; id != nil && id.GroupsGiven {
			gs = fmt.Sprint(id.Groups)
		}
		switch errno {
		case unix.EPERM:
			return nserr.Errorf("setgroups", gs, errno, `the process's user namespace denies setgroups ("deny" in /proc/PID/setgroups, as a gid_map written without CAP_SETGID requires) or has no gid_map yet: leave out groups=`)
		case unix.EINVAL:
			return nserr.Errorf("setgroups", gs, errno, "a group is not mapped in the process's user namespace")
		}
		return nserr.New("setgroups", gs, errno)
	case C.NSH_STEP_SETGID, C.NSH_STEP_SETUID:
		kind, op, id := "uid", "setresuid", 0
		if step == C.NSH_STEP_SETGID {
			kind, op = "gid", "setresgid"
		}
		if cfg.Identity != nil {
			if id = cfg.Identity.UID; kind == "gid" {
				id = cfg.Identity.GID
			}
			id = max(id, 0)
		}
		switch errno {
		case unix.EINVAL:
			return nserr.Errorf(op, strconv.Itoa(id), errno, "%s %d is not mapped in the process's user namespace", kind, id)
		case unix.EPERM:
			return nserr.Errorf(op, strconv.Itoa(id), errno, "changing ids needs CAP_SET%sID, which nsh lacks in the process's user namespace", strings.ToUpper(kind[:1]))
		}
		return nserr.New(op, strconv.Itoa(id), errno)
	case C.NSH_STEP_CGROUP:
		return nserr.New("write", "cgroup.procs of the run's cgroup "+cfg.Cgroup.Name(), errno)
	case C.NSH_STEP_LO:
		return nserr.New("link set up", "lo of the new network namespace", errno)
	case C.NSH_STEP_DEV:
		return devError(cfg, arg, errno)
	case C.NSH_STEP_EXEC:
		if cfg.Mode == Init {
			return nserr.New("exec", "nsh-init", errno)
		}
		if errno == unix.ENOENT {
			return fmt.Errorf("command not found: %q", cfg.Argv[0])
		}
		return nserr.New("exec", strconv.Quote(cfg.Argv[0]), errno)
	}
	return nserr.New(fmt.Sprintf("spawn step %d", step), "", errno)
}

// Dev says whether a child with a new root gets a minimal /dev.
type Dev int

// The choices of Config.Dev (spawn.h's NSH_DEV_OFF...).
const (
	DevOff   Dev = C.NSH_DEV_OFF
	DevOn    Dev = C.NSH_DEV_ON     // made; an error if the root has no dev directory
	DevIfDir Dev = C.NSH_DEV_IF_DIR // made if the root's dev is an empty directory
)

// devNodes and devLinks are the entries of the minimal /dev (Config.Dev),
// in the order of spawn.c's dev_nodes and dev_links.
var (
	devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}
	devLinks = []string{"fd", "stdin", "stdout", "stderr"}
)

// devError renders a failed step of the minimal /dev; arg is its
// NSH_DEV_* entry.
func devError(cfg *Config, arg int, errno syscall.Errno) error {
	dev := filepath.Join(cfg.Root, "dev")
	switch {
	case arg == C.NSH_DEV_TMPFS && (errno == unix.ELOOP || errno == unix.ENOTDIR):
		return rootDirError("dev", "-t tmpfs tmpfs", cfg.Root, errno)
	case arg == C.NSH_DEV_TMPFS:
		if errno == unix.ENOENT {
			return nserr.Errorf("mount", "-t tmpfs tmpfs "+strconv.Quote(dev), errno, "the root has no dev directory for the minimal /dev: make it (mkdir()), or pass dev=False")
		}
		return nserr.New("mount", "-t tmpfs tmpfs "+strconv.Quote(dev), errno)
	case arg >= C.NSH_DEV_NODES && arg < C.NSH_DEV_NODES+len(devNodes):
		n := devNodes[arg-C.NSH_DEV_NODES]
		return nserr.New("mount", "--bind /dev/"+n+" "+strconv.Quote(filepath.Join(dev, n)), errno)
	case arg == C.NSH_DEV_PTS:
		return nserr.New("mount", "-t devpts -o newinstance devpts "+strconv.Quote(filepath.Join(dev, "pts")), errno)
	case arg == C.NSH_DEV_PTMX:
		return nserr.New("symlink", "pts/ptmx "+strconv.Quote(filepath.Join(dev, "ptmx")), errno)
	case arg == C.NSH_DEV_SHM:
		return nserr.New("mount", "-t tmpfs tmpfs "+strconv.Quote(filepath.Join(dev, "shm")), errno)
	case arg >= C.NSH_DEV_LINKS && arg < C.NSH_DEV_LINKS+len(devLinks):
		return nserr.New("symlink", strconv.Quote(filepath.Join(dev, devLinks[arg-C.NSH_DEV_LINKS])), errno)
	}
	return nserr.New("minimal /dev", strconv.Quote(dev), errno)
}

// rootDirError explains why the directory name of a new root (proc, dev)
// could not be mounted on: it is a symlink (never followed: it could lead
// out of the root), not a directory, or missing.
func rootDirError(name, mount, root string, errno syscall.Errno) error {
	path := filepath.Join(root, name)
	obj := mount + " " + strconv.Quote(path)
	switch errno {
	case unix.ELOOP:
		return nserr.Errorf("mount", obj, errno, "%s is a symlink in the new root %s; /%s is mounted only on a real directory, since a symlink could lead the mount out of the root", path, root, name)
	case unix.ENOTDIR:
		return nserr.Errorf("mount", obj, errno, "%s is not a directory in the new root %s", path, root)
	case unix.ENOENT:
		return nserr.Errorf("mount", obj, errno, "the new root %s has no %s directory: make it (mkdir(%q))", root, name, path)
	}
	return nserr.New("mount", obj, errno)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// abandon kills and reaps a child whose start failed.
func (ch *Child) abandon() {
	ch.Kill(unix.SIGKILL)
	ch.Release()
	ch.Wait()
	ch.Close()
}

// Kill sends sig to the child. A child already reaped gives ESRCH.
func (ch *Child) Kill(sig syscall.Signal) error {
	return unix.PidfdSendSignal(ch.pidfd, sig, nil, 0)
}

// Release closes nsh's end of the status socket: a Hold child exits, an
// Init child exits and takes its PID namespace with it.
func (ch *Child) Release() {
	if ch.sock != nil {
		ch.sock.Close()
		ch.sock = nil
	}
}

// Wait reaps the child (or its relay) and returns its wait status. Call
// it, or WaitBlocking, once.
func (ch *Child) Wait() (unix.WaitStatus, error) {
	if ch.foreground || ch.waitfd < 0 {
		return ch.WaitBlocking()
	}
	return ch.pollWait()
}

// WaitBlocking is Wait in a wait4 that blocks the calling thread, for a
// caller that has nothing else to do meanwhile: the exit then wakes that
// thread directly.
func (ch *Child) WaitBlocking() (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	opts := 0
	if ch.foreground {
		opts = unix.WUNTRACED
	}
	for {
		_, err := unix.Wait4(ch.waitOn, &ws, opts, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return ws, nserr.New("wait4", strconv.Itoa(ch.waitOn), err)
		}
		if ws.Stopped() {
			// nsh does no job control: a foreground child stopped by
			// Ctrl-Z would hold the terminal with nobody to resume it.
			ch.Kill(unix.SIGCONT)
			continue
		}
		ch.reaped()
		return ws, nil
	}
}

// reaped drops the child from the live set.
func (ch *Child) reaped() {
	children.Lock()
	delete(children.live, ch.waitOn)
	children.Unlock()
}

// pollWait waits until the pidfd of waitOn is readable, which it is once
// the process has exited, with Go's poller, and then reaps it.
func (ch *Child) pollWait() (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	fail := func(op string, err error) (unix.WaitStatus, error) {
		return ws, nserr.New(op, strconv.Itoa(ch.waitOn), err)
	}
	// A non-blocking descriptor is registered with the poller by NewFile.
	if err := unix.SetNonblock(ch.waitfd, true); err != nil {
		return fail("fcntl O_NONBLOCK pidfd of", err)
	}
	ch.waitFile = os.NewFile(uintptr(ch.waitfd), "pidfd")
	rc, err := ch.waitFile.SyscallConn()
	if err != nil {
		return fail("poll pidfd of", err)
	}
	var werr error
	err = rc.Read(func(uintptr) bool {
		for {
			pid, err := unix.Wait4(ch.waitOn, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			werr = err
			return err != nil || pid == ch.waitOn
		}
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fail("wait4", err)
	}
	ch.reaped()
	return ws, nil
}

// SetSubreaper makes nsh a child subreaper (PR_SET_CHILD_SUBREAPER): a
// process whose parent dies is then re-parented to nsh, its nearest
// living ancestor, rather than to init, so KillOrphans finds it. on false
// ends that once no run that asked for it is left (after KillOrphans).
func SetSubreaper(on bool) error {
	children.Lock()
	defer children.Unlock()
	v := uintptr(0)
	if on {
		if children.subreapers++; children.subreapers > 1 {
			return nil
		}
		v = 1
	} else if children.subreapers--; children.subreapers > 0 {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, v, 0, 0, 0); err != nil {
		return nserr.New("prctl", fmt.Sprintf("PR_SET_CHILD_SUBREAPER %d", v), err)
	}
	if on {
		children.stopReaping = make(chan struct{})
		go reapOrphans(children.stopReaping)
	} else if children.stopReaping != nil {
		close(children.stopReaping)
		children.stopReaping = nil
	}
	return nil
}

// reapOrphans reaps, on each SIGCHLD until stop is closed, the orphans nsh
// adopted as a subreaper that have exited: without it, each would stay a
// zombie until the end of the run (a loop that double-forks leaves
// thousands). Children nsh started itself (in live, or being started) are
// left to their own Wait. SIGCHLDs that come in a burst are served by one
// pass over the children every 10 ms at most.
func reapOrphans(stop chan struct{}) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGCHLD)
	defer signal.Stop(sigc)
	for {
		select {
		case <-stop:
			return
		case <-sigc:
		}
		reapExited()
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// reapExited reaps the exited orphans among nsh's children.
func reapExited() {
	children.starting.Lock() // no child between its clone and live
	defer children.starting.Unlock()
	kids, err := ownChildren()
	if err != nil {
		return
	}
	children.Lock()
	orphans := kids[:0]
	for _, pid := range kids {
		if !children.live[pid] {
			orphans = append(orphans, pid)
		}
	}
	children.Unlock()
	for _, pid := range orphans {
		// WNOHANG: a live orphan is left alone (KillOrphans ends it).
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); !errors.Is(err, unix.EINTR) {
				break
			}
		}
	}
}

// Track marks pid, a child nsh started by other means (the reaper), as
// no orphan; on false withdraws the mark.
func Track(pid int, on bool) {
	children.Lock()
	if on {
		children.live[pid] = true
	} else {
		delete(children.live, pid)
	}
	children.Unlock()
}

// KillOrphans kills (SIGKILL) and reaps the processes nsh adopted as a
// subreaper: its children that no spawner started and Track did not
// mark (the reaper), and that are not in the session of a child started
// with Setsid (detached). Their own children are adopted in turn as they
// die, so it goes on until a round finds none, for at most 5 s. In a
// process that runs several runs at once (tests), one run's teardown
// takes the orphans of all.
func KillOrphans() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		children.starting.Lock()
		kids, err := ownChildren()
		if err != nil {
			children.starting.Unlock()
			return err
		}
		var orphans []int
		children.Lock()
		for _, pid := range kids {
			if children.live[pid] || children.sessions[sessionOf(pid)] {
				continue
			}
			orphans = append(orphans, pid)
		}
		children.Unlock()
		children.starting.Unlock()
		if len(orphans) == 0 {
			return nil
		}
		// A child is never reaped by anyone else, so its pid cannot be
		// reused before the wait4 below.
		for _, pid := range orphans {
			unix.Kill(pid, unix.SIGKILL)
		}
		for _, pid := range orphans {
			for {
				var ws unix.WaitStatus
				got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if err != nil || got == pid {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("process %d, adopted by nsh, still alive 5 s after SIGKILL", pid)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
}

// ownChildren lists the children of every thread of nsh.
func ownChildren() ([]int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, nserr.New("read", "/proc/self/task", err)
	}
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue // the thread ended
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// sessionOf returns the session of process pid from /proc/PID/stat, or 0.
func sessionOf(pid int) int {
	f, err := procstat.Fields(pid)
	if err != nil || len(f) < 4 {
		return 0
	}
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// Close releases the pidfds. Call it after Wait.
func (ch *Child) Close() {
	ch.Release()
	if ch.waitfd != ch.pidfd && ch.pidfd >= 0 {
		unix.Close(ch.pidfd)
	}
	ch.pidfd = -1
	if ch.waitFile != nil {
		ch.waitFile.Close()
	} else if ch.waitfd >= 0 {
		unix.Close(ch.waitfd)
	}
	ch.waitFile, ch.waitfd = nil, -1
}

// Capable reports whether this process has capability c (e.g.
// unix.CAP_SETUID) in its effective set, that is, in its own user
// namespace and the namespaces it owns: what the kernel asks of a writer
// of maps beyond its own id.
func Capable(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil || c < 0 || c >= 64 {
		return false
	}
	return data[c/32].Effective&(1<<uint(c%32)) != 0
}

// Foreground gives the terminal tty to process group pgrp, even when nsh is
// in the background (SIGTTOU is blocked for the call).
func (s *Spawner) Foreground(tty, pgrp int) error {
	r := C.nsh_tcsetpgrp(C.int(tty), C.int(pgrp))
	if r < 0 {
		return nserr.New("tcsetpgrp", strconv.Itoa(pgrp), syscall.Errno(-r))
	}
	return nil
}

// checkCStrings refuses a string of cfg that contains a NUL: the C side
// would see it cut short ("a\x00b" as "a"). Callers check their arguments
// with better words first; this is the last line.
func (cfg *Config) checkCStrings() error {
	strs := append([]string{cfg.Root, cfg.Cwd, deref(cfg.Hostname), deref(cfg.Domainname)}, cfg.Argv...)
	for _, s := range append(strs, cfg.Env...) {
		if strings.IndexByte(s, 0) >= 0 {
			return nserr.New("spawn", strconv.Quote(s)+" contains a NUL byte", unix.EINVAL)
		}
	}
	return nil
}
