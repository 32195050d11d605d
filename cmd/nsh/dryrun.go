package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/netnsdir"
)

// nsh up --dry-run builds the lab for real, in a throwaway sandbox, and
// prints what it did as the equivalent commands; then the sandbox goes,
// and everything in it. Why not a simulation: see README, "Dry runs".
//
// The sandbox is a child nsh (re-executed, marked by sandboxEnv) that is
// PID 1 of new PID, network, mount, UTS and IPC namespaces: its network
// namespace stands in for the host's, /run is a fresh tmpfs (so
// /run/netns and the lab's directory are the sandbox's), /sys/fs/cgroup a
// tmpfs (so no cgroup is made: the run's processes are tracked by nsh as
// their subreaper), /proc a fresh proc with /proc/sys read-only but for
// /proc/sys/net, which is the sandbox network namespace's own. The child
// dies with its parent (parent-death signal), and when it exits the
// kernel kills every process of its PID namespace and frees its
// namespaces and mounts: nothing outlives the dry run, whatever the
// recipe started.

// sandboxEnv marks the child nsh that runs inside the sandbox.
const sandboxEnv = "NSH_DRY_RUN_SANDBOX"

// dryPlan, set inside the sandbox, is where upCmd writes the plan (the
// setup script of --trace) instead of keeping the lab.
var dryPlan io.Writer

// dryRun is nsh up --dry-run; args are up's arguments without the flag.
func dryRun(args []string) int {
	if os.Getenv(sandboxEnv) != "" {
		return inSandbox(args)
	}
	if os.Geteuid() != 0 {
		return labFail("up --dry-run: needs root, as nsh up does (the dry run builds the lab in a sandbox)")
	}
	self, err := os.Executable()
	if err != nil {
		return labFail("up --dry-run: %v", err)
	}
	cmd := exec.Command(self, append([]string{"up", "--dry-run"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), sandboxEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
		// A new mount namespace whose mounts are all private (Go
		// remounts / MS_REC|MS_PRIVATE): nothing propagates out.
		Unshareflags: unix.CLONE_NEWNS,
		Pdeathsig:    unix.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return labFail("up --dry-run: starting the sandbox: %v", err)
	}
	// Ctrl-C reaches the child too (same process group): it stops the
	// recipe and tears down; the parent waits for it. (Ignored after the
	// child started: an ignored signal would be ignored in it too.)
	signal.Ignore(unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return labFail("up --dry-run: starting the sandbox: %v", err)
	}
	return 0
}

// inSandbox runs nsh up inside the sandbox, printing the plan, then takes
// the lab down.
func inSandbox(args []string) int {
	os.Unsetenv(sandboxEnv)
	// What the host has that the sandbox hides, to say where nsh up
	// would fail on it.
	hostNetns := map[string]bool{}
	if ents, err := os.ReadDir(netnsdir.Dir); err == nil {
		for _, e := range ents {
			hostNetns[e.Name()] = true
		}
	}
	hostLabs, _ := labs.List()
	if err := sandboxMounts(); err != nil {
		return labFail("up --dry-run: setting up the sandbox: %v", err)
	}
	if lo, err := netlink.LinkByName("lo"); err != nil {
		return labFail("up --dry-run: the sandbox's loopback: %v", err)
	} else if err := netlink.LinkSetUp(lo); err != nil {
		return labFail("up --dry-run: link set up lo in the sandbox: %v", err)
	}
	var plan bytes.Buffer
	dryPlan = &plan
	code := upCmd(args)
	// The plan is the setup script of --trace, with a word on where it
	// comes from after its first line.
	head := fmt.Sprintf("#!/bin/sh\n# nsh up --dry-run %s: the plan of nsh up, made by building the lab\n# in a throwaway sandbox (new network, mount, PID, UTS and IPC namespaces),\n# gone now: nothing outside it was changed.\n", strings.Join(args, " "))
	os.Stdout.WriteString(head + strings.TrimPrefix(plan.String(), "#!/bin/sh\n"))
	if code != 0 {
		fmt.Fprintln(os.Stderr, "nsh: up --dry-run: the recipe failed in the sandbox (the plan above stops there); nsh up fails the same way, unless it failed on what a sandbox lacks: the host's sysctls outside net.* (read-only here), cgroups, the host's links and /run/netns")
		return code
	}
	// The sandbox's /run is its own: the lab just made is its only one.
	ls, err := labs.List()
	if err != nil {
		return labFail("up --dry-run: %v", err)
	}
	for _, l := range ls {
		for _, h := range hostLabs {
			if h.Name == l.Name {
				fmt.Fprintf(os.Stderr, "nsh: up --dry-run: on this host, lab %q exists: nsh up fails unless --replace\n", l.Name)
			}
		}
		var clash []string
		for _, n := range l.Nodes {
			if hostNetns[n.Name] {
				clash = append(clash, n.Name)
			}
		}
		if len(clash) > 0 {
			fmt.Fprintf(os.Stderr, "nsh: up --dry-run: on this host, %s exist in %s: nsh up refuses names it did not make (unless they are the lab's it replaces; --prefix P gives other names)\n", strings.Join(clash, ", "), netnsdir.Dir)
		}
		var down bytes.Buffer
		if c := downLab(l.Name, &down); c != 0 {
			os.Stderr.Write(down.Bytes())
			fmt.Fprintln(os.Stderr, "nsh: up --dry-run: taking the lab down in the sandbox failed; the sandbox goes with everything in it anyway")
		}
	}
	return 0
}

// sandboxMounts gives the sandbox (already in its own mount namespace,
// all private) its own /run, /proc and /sys/fs/cgroup.
func sandboxMounts() error {
	type m struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}
	for _, x := range []m{
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		// Writes to the host's kernel.*, vm.*, fs.* sysctls fail
		// (EROFS); net.* are the sandbox network namespace's own.
		{"/proc/sys", "/proc/sys", "", unix.MS_BIND | unix.MS_REC, ""},
		{"", "/proc/sys", "", unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY, ""},
		{"/proc/sys/net", "/proc/sys/net", "", unix.MS_BIND, ""},
		{"", "/proc/sys/net", "", unix.MS_REMOUNT | unix.MS_BIND, ""},
		{"tmpfs", "/sys/fs/cgroup", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=755"},
	} {
		if err := unix.Mount(x.src, x.dst, x.fstype, x.flags, x.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", x.src, x.dst, err)
		}
	}
	return nil
}
