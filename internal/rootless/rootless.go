// Package rootless lets nsh run for users who are not root: before the
// interpreter starts, nsh re-executes itself in a new user namespace in
// which the caller is mapped to root (plus the caller's subordinate ranges
// from /etc/subuid and /etc/subgid through newuidmap/newgidmap when those
// exist), so it can create net/uts/ipc/pid/mnt namespaces, veth pairs
// between them, and tmpfs and proc mounts unprivileged. The outer process
// stays as a small supervisor that forwards signals and returns the inner
// exit status; the inner one dies with it (Pdeathsig).
package rootless

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/idmap"
)

// Mode says whether to enter a user namespace at start.
type Mode int

// The modes: Auto enters one when not root; On always; Off never.
const (
	Auto Mode = iota
	On
	Off
)

// syncEnv names the descriptor the inner process reads "maps written" from
// (when the maps are written by newuidmap after the inner process started);
// innerEnv marks the inner process, so it does not re-execute again.
const (
	syncEnv  = "_NSH_ROOTLESS_SYNC"
	innerEnv = "_NSH_ROOTLESS_INNER"
)

// inner is set once, by Enter, in the inner process of rootless mode.
var inner bool

// Inner reports whether this process is rootless nsh's inner process,
// which runs in a user namespace its parent made for it alone (unlike
// Active, which holds in any container).
func Inner() bool { return inner }

// MarkInner makes Inner true in a process that joined, before its runtime
// started, a user namespace made for its work alone (rootless nsh up, in
// the lab's: see internal/keeper), so that everything in it counts as the
// run's, as in rootless mode's own.
func MarkInner() { inner = true }

// ModeFromEnv reads NSH_ROOTLESS (1/on, 0/off, empty/auto).
func ModeFromEnv() Mode {
	switch strings.ToLower(os.Getenv("NSH_ROOTLESS")) {
	case "1", "on", "yes", "true":
		return On
	case "0", "off", "no", "false":
		return Off
	}
	return Auto
}

// Enter must be called first thing in main (or TestMain). In the inner
// process it waits until the parent has written the maps and returns
// (false, 0). In a process that should go rootless it re-executes itself
// in a new user namespace, waits for it, and returns (true, exit status);
// the caller then exits with that status. Otherwise it returns (false, 0).
func Enter(mode Mode) (bool, int) {
	if fdStr := os.Getenv(syncEnv); fdStr != "" {
		os.Unsetenv(syncEnv)
		fd, err := strconv.Atoi(fdStr)
		if err == nil {
			f := os.NewFile(uintptr(fd), "rootless-sync")
			var b [1]byte
			f.Read(b[:]) // EOF or one byte: either way the maps are done
			f.Close()
		}
		// This process was executed before it was mapped, so execve left it
		// without capabilities; executing again as the mapped root
		// restores them.
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, os.Args, os.Environ())
		}
		fmt.Fprintf(os.Stderr, "nsh: rootless re-exec: %v\n", err)
		os.Exit(1)
	}
	if parent := os.Getenv(innerEnv); parent != "" {
		os.Unsetenv(innerEnv)
		inner = true
		armDeathSignal(parent)
		return false, 0
	}
	if mode == Off || (mode == Auto && os.Geteuid() == 0) {
		return false, 0
	}
	code, err := reexec()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nsh: cannot enter a user namespace for rootless mode: %v\n"+
			"(is kernel.unprivileged_userns_clone or user.max_user_namespaces 0? NSH_ROOTLESS=0 runs without it)\n", err)
		return true, 1
	}
	return true, code
}

// armDeathSignal gives the inner process its parent-death signal again:
// the kernel clears it when a process gains capabilities, which the inner
// one does by executing itself again once newuidmap has mapped it (see
// Enter), so a SIGKILL of the supervisor would leave the inner nsh running.
// parent is the supervisor's pid: if it died before the signal was armed,
// the inner process has been re-parented and ends at once, as the signal
// would have ended it.
func armDeathSignal(parent string) {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "nsh: rootless: prctl PR_SET_PDEATHSIG: %v\n", err)
		os.Exit(1)
	}
	if strconv.Itoa(os.Getppid()) != parent {
		os.Exit(128 + int(unix.SIGKILL))
	}
}

// Active reports whether this process runs in a user namespace other than
// the initial one (its uid_map is not the identity over all ids), i.e.
// whether it is rootless nsh (or any process in a container).
func Active() bool {
	// A plain descriptor: os.ReadFile would also start Go's poller.
	fd, err := syscall.Open("/proc/self/uid_map", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	b := make([]byte, 4096)
	n, err := syscall.Read(fd, b)
	if err != nil || n < 0 {
		return false
	}
	f := strings.Fields(string(b[:n]))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

func reexec() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	// Pdeathsig belongs to the thread that forks: keep this one.
	runtime.LockOSThread()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), innerEnv+"="+strconv.Itoa(os.Getpid()))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER,
		Pdeathsig:  syscall.SIGKILL,
	}
	sub := Subordinate()
	var r, w *os.File
	if sub != nil {
		// newuidmap writes the maps once the child exists; the child waits.
		if r, w, err = os.Pipe(); err != nil {
			return 0, err
		}
		cmd.ExtraFiles = []*os.File{r}
		cmd.Env = append(cmd.Env, syncEnv+"=3")
	} else {
		// The caller alone, mapped to root: Go writes the maps before the
		// child executes, so it starts with its capabilities.
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	// Signals for the inner nsh: a terminal's Ctrl-C reaches both of us, so
	// the supervisor drops SIGINT and SIGQUIT; SIGTERM/SIGHUP sent to it
	// are passed on. It catches rather than ignores them, so that the
	// inner nsh starts with their default action (a caught signal is
	// reset across exec, an ignored one is not), except those ignored
	// when nsh started (see internal/startup), which stay ignored in both.
	sigc := make(chan os.Signal, 4)
	drop := make(chan os.Signal, 4)
	for _, s := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP} {
		switch {
		case signal.Ignored(s):
		case s == syscall.SIGINT || s == syscall.SIGQUIT:
			signal.Notify(drop, s)
		default:
			signal.Notify(sigc, s)
		}
	}
	// drop is never read: signal.Notify does not block on a full channel.
	if err := cmd.Start(); err != nil {
		if sub != nil {
			r.Close()
			w.Close()
		}
		return 0, err
	}
	if sub != nil {
		r.Close()
		if err := sub.write(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			w.Close()
			return 0, err
		}
		w.Write([]byte{1})
		w.Close()
	}
	return Forward(cmd, sigc)
}

// SubIDs are the caller's subordinate ranges (/etc/subuid, /etc/subgid)
// and the setuid helpers that map them (Debian's uidmap package).
type SubIDs struct {
	User                 string
	NewUIDMap, NewGIDMap string
	UID, GID             [2]int // start, count
}

// Subordinate returns the caller's subordinate ranges when /etc/subuid,
// /etc/subgid and newuidmap/newgidmap provide them, else nil.
func Subordinate() *SubIDs {
	uid := os.Geteuid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	su := subRange("/etc/subuid", name, uid)
	sg := subRange("/etc/subgid", name, uid)
	nu, errU := exec.LookPath("newuidmap")
	ng, errG := exec.LookPath("newgidmap")
	if su == nil || sg == nil || errU != nil || errG != nil {
		return nil
	}
	return &SubIDs{User: name, NewUIDMap: nu, NewGIDMap: ng, UID: [2]int{su[0], su[1]}, GID: [2]int{sg[0], sg[1]}}
}

// WriteMaps writes the maps of rootless mode for process pid, in a new
// user namespace: the caller as root and the subordinate ranges from 1 up.
func (s *SubIDs) WriteMaps(pid int) error { return s.write(pid) }

// write maps the caller to root and the subordinate ranges from 1 up.
func (s *SubIDs) write(pid int) error {
	uids := append(idmap.Root(os.Geteuid()), idmap.Extent{Inside: 1, Outside: uint32(s.UID[0]), Count: uint32(s.UID[1])})
	gids := append(idmap.Root(os.Getegid()), idmap.Extent{Inside: 1, Outside: uint32(s.GID[0]), Count: uint32(s.GID[1])})
	return s.Map(pid, uids, gids)
}

// Map writes the maps of pid's user namespace through newuidmap and
// newgidmap (nil skips that map). The helpers check the lines against
// /etc/subuid and /etc/subgid themselves.
func (s *SubIDs) Map(pid int, uids, gids idmap.Map) error {
	for _, w := range []struct {
		helper string
		lines  idmap.Map
	}{{s.NewUIDMap, uids}, {s.NewGIDMap, gids}} {
		if w.lines == nil {
			continue
		}
		args := []string{strconv.Itoa(pid)}
		for _, l := range w.lines {
			args = append(args, strconv.FormatUint(uint64(l.Inside), 10), strconv.FormatUint(uint64(l.Outside), 10), strconv.FormatUint(uint64(l.Count), 10))
		}
		if out, err := exec.Command(w.helper, args...).CombinedOutput(); err != nil {
			shown := args // a long map by its first lines only
			if len(w.lines) > 4 {
				shown = append(args[:10:10], fmt.Sprintf("… %d more lines", len(w.lines)-3))
			}
			return fmt.Errorf("%s %s: %v: %s", w.helper, strings.Join(shown, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// subRange returns [start, count] of the first range in file for the user
// (by name or uid), or nil.
func subRange(file, name string, uid int) []int {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(f) != 3 || (f[0] != name && f[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && count > 0 {
			return []int{start, count}
		}
	}
	return nil
}

// Forward waits for cmd, started, passing it each signal from sigc, and
// returns its exit status (128+N when signal N ended it), as a shell does.
func Forward(cmd *exec.Cmd, sigc <-chan os.Signal) (int, error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigc:
			cmd.Process.Signal(s)
		case err := <-done:
			if err == nil {
				return 0, nil
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal()), nil
				}
				return ee.ExitCode(), nil
			}
			return 0, err
		}
	}
}
