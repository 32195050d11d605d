// Package keeper holds rootless labs. A lab made by a user other than root
// lives in a user namespace of its own, with a mount namespace of its own
// (where /run/netns is private and writable, so named network namespaces
// work), both owned by a keeper: nsh re-executed, caught by a C
// constructor before the Go runtime starts (keeper.c), that does nothing
// but hold them, like podman's pause process. Everything the lab makes
// lives in those namespaces, so killing the keeper (and the lab's other
// processes) frees all of it.
//
// nsh up starts the keeper (Start), then nsh itself again in the keeper's
// namespaces (Process.Command) to run the recipe there; once the lab is up
// it tells the keeper to stay (Process.Keep), else the keeper ends with nsh
// up. The lab commands (status, exec, graph, down) run nsh again in the
// keeper's user and mount namespaces (Exec, Command): a multi-threaded Go
// process cannot join a user namespace, so the constructor does it, given a
// pidfd of the keeper, before the runtime starts.
package keeper

/*
#include "keeper.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/rootless"
)

// joinEnv names the pidfd of the keeper to join, its pid and start time:
// "FD:PID:START".
const joinEnv = "_NSH_LAB_JOIN"

// joined is the keeper this process joined at start, if any.
var joined labs.Keeper

func init() {
	v, ok := os.LookupEnv(joinEnv)
	if !ok {
		return
	}
	// What nsh starts must not join again.
	os.Unsetenv(joinEnv)
	f := strings.Split(v, ":")
	if C.nsh_keeper_joined == 0 || len(f) != 3 {
		return
	}
	joined.Pid, _ = strconv.Atoi(f[1])
	joined.Start, _ = strconv.ParseUint(f[2], 10, 64)
}

// Joined returns the keeper whose namespaces this process joined when it
// started, nil if none.
func Joined() *labs.Keeper {
	if joined.Pid == 0 {
		return nil
	}
	k := joined
	return &k
}

// Process is a keeper started by nsh up.
type Process struct {
	labs.Keeper
	pidfd *os.File // a pidfd of the keeper
	keep  *os.File // the pipe the keeper reads its verdict from
	cmd   *exec.Cmd
}

// Start starts a keeper in a new user namespace where the caller is root
// (with the caller's subordinate ranges when /etc/subuid and newuidmap
// provide them, as rootless mode maps them) and a new mount namespace. The
// maps are written when it returns. It lives until Keep, Abandon or the
// end of this process.
func Start() (*Process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{"nsh-keeper"}, Env: []string{"_NSH_KEEPER=3"},
		ExtraFiles: []*os.File{r}, Dir: "/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS, Setsid: true}
	sub := rootless.Subordinate()
	if sub == nil {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the lab's keeper (a new user and mount namespace): %w", err)
	}
	p := &Process{keep: w, cmd: cmd}
	p.Pid = cmd.Process.Pid
	// The keeper needs no capability, so it may run before its maps
	// are written; those who join it need them.
	if sub != nil {
		err = sub.WriteMaps(p.Pid)
	}
	if err == nil {
		p.Start, err = labs.StartTime(p.Pid)
	}
	if err == nil {
		p.pidfd, err = pidfd(p.Pid)
	}
	if err != nil {
		p.Abandon()
		return nil, err
	}
	return p, nil
}

// Command returns nsh with args, to be run in the keeper's namespaces.
func (p *Process) Command(args ...string) *exec.Cmd {
	return command(p.pidfd, p.Keeper, args)
}

// Keep tells the keeper to stay after this process ends: the lab is up.
func (p *Process) Keep() error {
	_, err := p.keep.Write([]byte{'k'})
	p.keep.Close()
	p.pidfd.Close()
	return err
}

// Abandon ends the keeper (it reads end of file instead of Keep's byte)
// and waits for it: what lived in its namespaces alone is gone.
func (p *Process) Abandon() {
	p.keep.Close()
	if p.pidfd != nil {
		p.pidfd.Close()
	}
	p.cmd.Wait()
}

// ErrGone is returned (errors.Is) for a keeper that is no longer running.
var ErrGone = errors.New("the lab's keeper is gone")

// pidfd opens a pidfd of process pid.
func pidfd(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, nserr.New("pidfd_open", "the lab's keeper "+strconv.Itoa(pid), err)
	}
	return os.NewFile(uintptr(fd), "keeper"), nil
}

// open returns a pidfd of keeper k, or ErrGone if it no longer runs.
func open(k labs.Keeper) (*os.File, error) {
	if !k.Alive() {
		return nil, fmt.Errorf("%w (pid %d)", ErrGone, k.Pid)
	}
	f, err := pidfd(k.Pid)
	if errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("%w (pid %d)", ErrGone, k.Pid)
	}
	if err != nil {
		return nil, err
	}
	// The pidfd was opened while pid was k's: checked again after.
	if !k.Alive() {
		f.Close()
		return nil, fmt.Errorf("%w (pid %d)", ErrGone, k.Pid)
	}
	return f, nil
}

func command(fd *os.File, k labs.Keeper, args []string) *exec.Cmd {
	cmd := &exec.Cmd{Path: self(), Args: append([]string{os.Args[0]}, args...), ExtraFiles: []*os.File{fd}}
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=3:%d:%d", joinEnv, k.Pid, k.Start))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd
}

// Command returns nsh with args, to be run in the namespaces of keeper k;
// ErrGone if it no longer runs. Run it, then call done.
func Command(k labs.Keeper, args ...string) (cmd *exec.Cmd, done func(), err error) {
	f, err := open(k)
	if err != nil {
		return nil, nil, err
	}
	return command(f, k, args), func() { f.Close() }, nil
}

// Exec replaces this process by nsh with args, in the namespaces of keeper
// k. It returns only on failure (ErrGone if the keeper no longer runs).
func Exec(k labs.Keeper, args ...string) error {
	f, err := open(k)
	if err != nil {
		return err
	}
	fd := int(f.Fd())
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		return nserr.New("fcntl", "F_SETFD of the keeper's pidfd", err)
	}
	env := append(os.Environ(), fmt.Sprintf("%s=%d:%d:%d", joinEnv, fd, k.Pid, k.Start))
	err = syscall.Exec(self(), append([]string{os.Args[0]}, args...), env)
	f.Close()
	return nserr.New("exec", "/proc/self/exe", err)
}

// PrepareRun gives the lab's mount namespace (that of this process, which
// joined the keeper) a /run/netns of its own, empty and writable, for the
// lab's named network namespaces: a tmpfs on the host's /run/netns, or, where
// there is none, a tmpfs on /run whose entries are the host's /run's, bound
// back (recursively), plus netns. Nothing of it reaches the host: the mount
// namespace of a user namespace receives the host's mounts but never sends.
// Each test of nsh test (internal/testrun) calls it too, in the private
// mount namespace it is started in.
func PrepareRun() error {
	const run, netns = "/run", "/run/netns"
	tmpfs := func(dir string) error {
		return nserr.New("mount", "-t tmpfs tmpfs "+dir,
			unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755"))
	}
	if fi, err := os.Stat(netns); err == nil && fi.IsDir() {
		return tmpfs(netns)
	}
	ents, err := os.ReadDir(run)
	if err != nil {
		return err
	}
	type entry struct {
		name, link string
		dir        bool
		tree       int // a detached copy of it (open_tree), -1 for a symlink
	}
	var kept []entry
	defer func() {
		for _, e := range kept {
			if e.tree >= 0 {
				unix.Close(e.tree)
			}
		}
	}()
	for _, e := range ents {
		path := filepath.Join(run, e.Name())
		x := entry{name: e.Name(), dir: e.IsDir(), tree: -1}
		if e.Type()&os.ModeSymlink != 0 {
			if x.link, err = os.Readlink(path); err != nil {
				return err
			}
		} else if x.tree, err = unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE); err != nil {
			return nserr.New("open_tree", path, err)
		}
		kept = append(kept, x)
	}
	if err := tmpfs(run); err != nil {
		return err
	}
	for _, e := range kept {
		path := filepath.Join(run, e.name)
		switch {
		case e.tree < 0:
			err = os.Symlink(e.link, path)
		case e.dir:
			err = os.Mkdir(path, 0o755)
		default:
			var f *os.File
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
		if err != nil {
			return err
		}
		if e.tree >= 0 {
			if err := unix.MoveMount(e.tree, "", unix.AT_FDCWD, path, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
				return nserr.New("move_mount", path, err)
			}
		}
	}
	return os.Mkdir(netns, 0o755)
}

// KillUserns kills every process of this process's user namespace and of
// those below it, but itself, and waits until none is left (5 s at most).
// In a joined keeper's namespace, those are the lab's: the keeper, its
// daemons, and whatever joined it.
func KillUserns() error {
	self, err := nsID("/proc/self/ns/user")
	if err != nil {
		return err
	}
	me := strconv.Itoa(os.Getpid())
	for round := 0; ; round++ {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		found := 0
		for _, e := range ents {
			pid := e.Name()
			if pid[0] < '1' || pid[0] > '9' || pid == me || !inUserns(pid, self) {
				continue
			}
			n, _ := strconv.Atoi(pid)
			if s, err := labs.StartTime(n); err == nil && labs.Alive(n, s) {
				unix.Kill(n, unix.SIGKILL)
				found++
			}
		}
		if found == 0 {
			return nil
		}
		if round == 500 {
			return fmt.Errorf("%d processes of the lab's user namespace still alive 5 s after SIGKILL", found)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nsID is the device and inode of a namespace file.
func nsID(path string) ([2]uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return [2]uint64{}, nserr.New("stat", path, err)
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}

// inUserns reports whether process pid is in user namespace self or one
// below it (NS_GET_PARENT fails past the caller's own user namespace).
func inUserns(pid string, self [2]uint64) bool {
	fd, err := unix.Open("/proc/"+pid+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for depth := 0; err == nil && depth < 40; depth++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			break
		}
		if st.Dev == self[0] && st.Ino == self[1] {
			unix.Close(fd)
			return true
		}
		parent, perr := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		unix.Close(fd)
		fd, err = parent, perr
	}
	if err == nil {
		unix.Close(fd)
	}
	return false
}

// self is nsh's executable, by the path that names the processes it
// starts "nsh" (not "exe", as /proc/self/exe would).
func self() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "/proc/self/exe"
}
