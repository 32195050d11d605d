package main

// Rootless labs. A lab made by a user other than root lives in a user
// namespace of its own and a mount namespace of its own (with a private
// /run/netns), held by a keeper process (internal/keeper) until nsh down.
//
//   - nsh up starts the keeper, then runs nsh up again in the keeper's
//     namespaces (as root of its user namespace: the C constructor of
//     internal/keeper joins them before the Go runtime starts) and waits
//     for it, as rootless mode's supervisor does. That nsh builds the lab
//     as root's nsh up does (the same code), records the keeper in
//     lab.json, and marks the lab up; then the supervisor tells the keeper
//     to stay. If the recipe fails, or either nsh dies, the keeper ends,
//     and with it everything the lab made: nothing of it is outside the
//     keeper's namespaces.
//   - status, exec, graph and attach replace themselves with nsh in the
//     keeper's namespaces, which then does what root's does; down and gc
//     run one such nsh down per lab. nsh down there undoes the journal,
//     then kills every process of the lab's user namespace, the keeper
//     last among them, which frees the namespaces and all they hold.
//   - a lab whose keeper is gone (killed, or the machine rebooted: its
//     directory is on tmpfs anyway) left nothing but its directory: ls
//     shows it "gone", and down or gc remove it.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/keeper"
	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/rootless"
)

// rootlessLab runs the lab commands that a user other than root needs
// done in a keeper's namespaces; done is false for everything else (and
// for root, and in a keeper's namespaces, where the commands run as
// root's do).
func rootlessLab(args []string) (code int, done bool) {
	if len(args) == 0 || labVerbs[args[0]] == nil && args[0] != "graph" {
		return 0, false
	}
	if keeper.Joined() != nil {
		if args[0] == "up" {
			// The user namespace is the lab's alone: what the run
			// leaves if it is killed is the lab's.
			rootless.MarkInner()
			if err := keeper.PrepareRun(); err != nil {
				return labFail("up: giving the lab a /run/netns of its own: %v", err), true
			}
		}
		return 0, false
	}
	if os.Geteuid() == 0 {
		return 0, false
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "up":
		return rootlessUp(rest), true
	case "down":
		return rootlessDown(rest), true
	case "gc":
		return rootlessGC(rest), true
	}
	name := labArg(verb, rest)
	if name == "" {
		return 0, false
	}
	l, err := labs.Open(name)
	if err != nil || l.Keeper == nil {
		return 0, false // refused as root's would be
	}
	err = keeper.Exec(*l.Keeper, args...)
	if errors.Is(err, keeper.ErrGone) {
		if verb == "status" || verb == "inspect" {
			return 0, false // shows it gone
		}
		return labFail("%s: lab %q: %v: everything it made went with its namespaces (nsh gc removes its directory)", verb, name, err), true
	}
	return labFail("%s: %v", verb, err), true
}

// labArg is the lab a status, inspect, attach, exec or graph command
// names, "" if none.
func labArg(verb string, args []string) string {
	for i, a := range args {
		switch {
		case verb == "graph" && a == "--netns":
			return ""
		case verb == "exec" && i > 0, a == "--":
			return ""
		case !strings.HasPrefix(a, "-"):
			return a
		}
	}
	return ""
}

// rootlessUp is nsh up for a user other than root.
func rootlessUp(args []string) int {
	if _, err := labs.Root(); err != nil {
		return labFail("up: %v", err)
	}
	if name, replace := upTarget(args); replace && name != "" {
		if _, err := labs.Open(name); err == nil {
			if code := rootlessDownLab(name); code != 0 {
				return code
			}
		}
	}
	k, err := keeper.Start()
	if err != nil {
		return labFail("up: %v", err)
	}
	code := supervise(k.Command(append([]string{"up"}, args...)...))
	l := keeperLab(k.Keeper)
	if code == 0 && l != nil && l.State == labs.Up {
		if err := k.Keep(); err != nil {
			return labFail("up: telling the keeper (pid %d) to stay: %v", k.Pid, err)
		}
		return 0
	}
	// Not up (failed, killed, or a dry run): the keeper ends, and with
	// it whatever the run left in its namespaces.
	k.Abandon()
	if l != nil {
		if c := removeGone(l, "up"); c != 0 && code == 0 {
			code = c
		}
	}
	return code
}

// upTarget reads the lab's name (its key, NAME@HOST for a host's part of
// nsh up --host) and --replace from nsh up's arguments, as upCmd does
// (which refuses what is wrong in them).
func upTarget(args []string) (name string, replace bool) {
	host := ""
	defer func() {
		if name != "" {
			name = labs.Key(name, host)
		}
	}()
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--replace":
			replace = true
		case a == "--as-host" && i+1 < len(args):
			host = args[i+1]
			i++
		case a == "--hosts":
			i++
		case a == "--name" && i+1 < len(args):
			name = args[i+1]
			i++
		case a == "--prefix":
			i++
		case strings.HasPrefix(a, "--name="):
			name = strings.TrimPrefix(a, "--name=")
		case strings.HasPrefix(a, "-") && a != "-":
		default:
			if name == "" {
				name = strings.TrimSuffix(a[strings.LastIndexByte(a, '/')+1:], ".star")
			}
			return name, replace
		}
	}
	return "", replace
}

// keeperLab is the lab held by keeper k, nil if none.
func keeperLab(k labs.Keeper) *labs.Lab {
	ls, _ := labs.List()
	for _, l := range ls {
		if l.Keeper != nil && *l.Keeper == k {
			return l
		}
	}
	return nil
}

// inKeeper reports whether this process is in the namespaces of lab l's
// keeper (or l has none: root's lab).
func inKeeper(l *labs.Lab) bool {
	if l.Keeper == nil {
		return true
	}
	j := keeper.Joined()
	return j != nil && *j == *l.Keeper
}

// endKeeper ends the keeper of lab l, if it has one, from inside its
// namespaces (nsh down): every process of the lab's user namespace but
// this one is killed, the keeper among them, which frees its namespaces
// and everything in them once this process exits.
func endKeeper(l *labs.Lab) error {
	if l.Keeper == nil {
		return nil
	}
	if !inKeeper(l) {
		return fmt.Errorf("lab %q is held by keeper %d, whose namespaces this nsh is not in", l.Name, l.Keeper.Pid)
	}
	return keeper.KillUserns()
}

// rootlessDown is nsh down for a user other than root: each lab is taken
// down in its keeper's namespaces.
func rootlessDown(args []string) int { return downWith(args, rootlessDownLab) }

// rootlessDownLab takes lab name down: nsh down in its keeper's
// namespaces, or, if the keeper is gone, the removal of what is left.
func rootlessDownLab(name string) int {
	l, err := labs.Open(name)
	if err != nil || l.Keeper == nil {
		return downLab(name, os.Stderr) // says what is wrong
	}
	cmd, done, err := keeper.Command(*l.Keeper, "down", name)
	if errors.Is(err, keeper.ErrGone) {
		return removeGone(l, "down")
	}
	if err != nil {
		return labFail("down: %v", err)
	}
	defer done()
	return supervise(cmd)
}

// removeGone removes lab l, whose keeper is gone: its namespaces and all
// they held went with it; what may be left is its directory, and daemons
// that survived the keeper.
func removeGone(l *labs.Lab, verb string) int {
	unlock, err := labs.Lock(l.Dir)
	if err != nil {
		return labFail("%s: %v", verb, err)
	}
	defer unlock()
	if l.BeingBuilt() {
		return labFail("%s: lab %q is being built by nsh %d; it undoes what it made if it fails", verb, l.Name, l.Pid)
	}
	for _, d := range l.Daemons {
		if labs.Alive(d.Pid, d.Start) {
			if err := unix.Kill(d.Pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				return labFail("%s %s: kill daemon %d (%s): %v", verb, l.Name, d.Pid, strings.Join(d.Argv, " "), err)
			}
		}
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		return labFail("%s: %v", verb, err)
	}
	switch verb {
	case "down":
		fmt.Fprintf(os.Stderr, "nsh: lab %q is down (its keeper, pid %d, was gone, and everything in its namespaces with it)\n", l.Name, l.Keeper.Pid)
	case "up":
		fmt.Fprintf(os.Stderr, "nsh: lab %q removed: its keeper ended, and what the recipe left in its namespaces with it\n", l.Name)
	}
	return 0
}

func rootlessGC(args []string) int {
	dry := len(args) == 1 && args[0] == "--dry-run"
	if len(args) > 0 && !dry {
		return labFail("gc: unknown arguments %q (nsh gc [--dry-run])", args)
	}
	ls, err := labs.List()
	if err != nil {
		return labFail("gc: %v", err)
	}
	code, found := 0, 0
	for _, l := range ls {
		gone := l.Keeper != nil && !l.Keeper.Alive()
		broken := l.Broken()
		if !gone && !broken {
			continue
		}
		found++
		if dry {
			if gone {
				fmt.Printf("%s: its keeper (pid %d) is gone, and everything it held: its directory to remove\n", l.Key(), l.Keeper.Pid)
			} else {
				fmt.Printf("%s: half built by nsh %d, which is gone: to take down\n", l.Key(), l.Pid)
			}
			continue
		}
		if c := rootlessDownLab(l.Key()); c != 0 {
			code = c
		}
	}
	if found == 0 {
		fmt.Fprintln(os.Stderr, "nsh: gc: nothing to collect")
	}
	return code
}

// supervise runs cmd (nsh in a keeper's namespaces), as rootless mode's
// supervisor runs its inner nsh: it dies with this process, gets the
// SIGTERM and SIGHUP sent here (a terminal's SIGINT and SIGQUIT reach it
// directly), and its exit status is returned (128+N for signal N).
func supervise(cmd *exec.Cmd) int {
	// Pdeathsig belongs to the thread that forks: cmd/nsh keeps main on
	// the main thread.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sigc := make(chan os.Signal, 4)
	drop := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGHUP)
	signal.Notify(drop, syscall.SIGINT, syscall.SIGQUIT)
	defer signal.Stop(sigc)
	defer signal.Stop(drop)
	if err := cmd.Start(); err != nil {
		return labFail("%v", err)
	}
	code, err := rootless.Forward(cmd, sigc)
	if err != nil {
		return labFail("%v", err)
	}
	return code
}
