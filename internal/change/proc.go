package change

import (
	"fmt"
	"strings"
	"time"

	"nsh.dev/nsh/internal/idmap"
)

// Enter names the namespaces a command runs in when they are not all
// nsh's own: nsenter(1)'s options, "--net=/run/netns/red",
// "--uts=/proc/PID/fd/N", or by a process, "-t PID -n -u". Netns, when
// the network namespace is the only one entered and it has an ip-netns
// name, is that name: the command then reads `ip netns exec NAME CMD`.
type Enter struct {
	Opts  []string
	Netns string
}

// Exec renders cmd run in e: as it is, `ip netns exec NAME CMD` or
// `nsenter OPTS CMD`.
func (e Enter) Exec(cmd string) string {
	switch {
	case e.Netns != "":
		return "ip netns exec " + e.Netns + " " + cmd
	case len(e.Opts) == 0:
		return cmd
	}
	return "nsenter " + strings.Join(e.Opts, " ") + " " + cmd
}

// Cgroup makes the cgroup (v2) every process of the run is born in, so
// that the run can kill them and all they fork with one write:
// `mkdir PATH`; its undo is `echo 1 > PATH/cgroup.kill; rmdir PATH`.
type Cgroup struct {
	Effect
	Path string
}

// Commands renders `mkdir PATH`.
func (r *Cgroup) Commands() []string { return []string{"mkdir " + Quote(r.Path)} }

// UndoCommands kills what is in the cgroup and removes it.
func (r *Cgroup) UndoCommands() []string {
	return []string{"echo 1 > " + Quote(r.Path+"/cgroup.kill"), "rmdir " + Quote(r.Path)}
}

// Subreaper makes nsh a child subreaper (prctl(PR_SET_CHILD_SUBREAPER)),
// where it cannot make a cgroup: what the run's processes leave behind is
// re-parented to nsh, which kills it at the end of the run. No command
// does this; the commands are comments.
type Subreaper struct {
	Effect
}

// Commands renders a comment: no command makes a process a subreaper.
func (r *Subreaper) Commands() []string {
	return []string{"# prctl(PR_SET_CHILD_SUBREAPER): the orphans of the run's processes are nsh's"}
}

// UndoCommands renders a comment: the orphans are killed.
func (r *Subreaper) UndoCommands() []string {
	return []string{"# the orphans of the run's processes are killed (kill -KILL)"}
}

// Process starts a process: `CMD ARGS`, run in the namespaces of the
// context (Enter), in new ones (Unshare: `unshare --net --uts --fork ...`),
// with the name, root, directory and ids it is given. Pid, set by Apply,
// is its pid.
type Process struct {
	Effect
	Argv  []string
	Enter Enter
	// Unshare are unshare(1)'s options for the namespaces it is born in
	// and what is done in them: "--net", "--pid", "--fork",
	// "--mount-proc", "--propagation=slave", "--map-root-user",
	// "--monotonic=5".
	Unshare  []string
	Hostname *string
	Domain   *string
	Root     string // pivot_root into it (unshare --root is the nearest: a chroot)
	Cwd      string
	LoUp     bool // the loopback of its new net namespace is brought up
	Dev      bool // a minimal /dev in Root (bubblewrap's --dev), if its dev is empty
	// Setpriv are setpriv(1)'s options for the ids it runs as:
	// "--reuid=1000", "--regid=1000", "--groups=1,2", "--clear-groups".
	Setpriv    []string
	Detach     bool // in its own session (setsid), not killed at the end
	Background bool // not waited for: " &"
	Pid        int
}

// Commands renders the command line, e.g. `unshare --net --uts --fork sh
// -c 'hostname box && exec "$0" "$@"' sleep 1 &  # pid 42`.
func (r *Process) Commands() []string {
	var w []string
	if r.Detach {
		w = append(w, "setsid")
	}
	inner := len(r.Unshare) > 0 || r.Root != ""
	if inner {
		w = append(w, "unshare")
		w = append(w, r.Unshare...)
		if r.Root != "" {
			w = append(w, "--root="+Quote(r.Root))
		}
		if r.Cwd != "" {
			w = append(w, "--wd="+Quote(r.Cwd))
		}
	} else if r.Cwd != "" {
		w = append(w, "env", "-C", Quote(r.Cwd))
	}
	if len(r.Setpriv) > 0 {
		w = append(w, "setpriv")
		w = append(w, r.Setpriv...)
	}
	var set []string
	if r.Hostname != nil {
		set = append(set, "hostname "+Quote(*r.Hostname))
	}
	if r.Domain != nil {
		set = append(set, "domainname "+Quote(*r.Domain))
	}
	if r.LoUp {
		set = append(set, "ip link set lo up")
	}
	if len(set) > 0 {
		w = append(w, "sh", "-c", Quote(strings.Join(set, " && ")+` && exec "$0" "$@"`))
	}
	for _, a := range r.Argv {
		w = append(w, Quote(a))
	}
	c := r.Enter.Exec(strings.Join(w, " "))
	if r.Background {
		c += " &"
	}
	var notes []string
	if r.Pid > 0 {
		notes = append(notes, fmt.Sprintf("pid %d", r.Pid))
	}
	if r.Root != "" {
		notes = append(notes, "nsh pivots the root, unshare --root chroots")
	}
	if r.Dev {
		notes = append(notes, "with a minimal /dev as bwrap --dev")
	}
	if len(notes) > 0 {
		c += "  # " + strings.Join(notes, "; ")
	}
	return []string{c}
}

// UndoCommands renders `kill -KILL PID` for a process not detached.
func (r *Process) UndoCommands() []string {
	if r.Detach || r.Pid <= 0 {
		return nil
	}
	return []string{fmt.Sprintf("kill -KILL %d", r.Pid)}
}

// Unshare moves the shell's context into new namespaces (unshare()),
// which nsh holds by descriptor: no command makes a namespace only a
// descriptor holds, so the nearest form, `unshare --net --uts`, is a
// comment that names where they are (Held: "net:[4026532300]
// /proc/PID/fd/N"). What is done in them follows as commands: the
// loopback brought up (LoUp, through Net, how commands reach the new
// network namespace). Init, set by Apply, is the pid of the process nsh
// keeps as the init of a new PID namespace (killed at the end of the run).
type Unshare struct {
	Effect
	Opts []string // unshare(1)'s: "--net", "--user", "--map-users=...", "--propagation=slave"
	Held []string
	LoUp bool
	Net  Netns
	Init int
}

// Commands renders `# unshare --net --uts: nsh holds net:[...] /proc/PID/fd/N, ...`
// and the loopback's `ip link set dev lo up`.
func (r *Unshare) Commands() []string {
	c := "# unshare " + strings.Join(r.Opts, " ")
	if len(r.Held) > 0 {
		c += ": nsh holds " + strings.Join(r.Held, ", ")
	}
	if r.Init > 0 {
		c += fmt.Sprintf("; pid %d is the init of the new pid namespace", r.Init)
	}
	out := []string{c}
	if r.LoUp {
		out = append(out, r.Net.IP("link set dev lo up"))
	}
	return out
}

// UndoCommands renders `kill -KILL INIT` for a PID namespace's init;
// the namespaces themselves go when nsh closes their descriptors.
func (r *Unshare) UndoCommands() []string {
	if r.Init <= 0 {
		return nil
	}
	return []string{fmt.Sprintf("kill -KILL %d  # the init of the pid namespace", r.Init)}
}

// Setns moves the shell's context into existing namespaces (setns()):
// nothing in the kernel changes, what follows runs there. The nearest
// command is nsenter with the namespaces' options (Enter), a comment.
type Setns struct {
	Effect
	Enter Enter
}

// Commands renders `# nsenter --net=... : what follows runs there`, or
// `# back in nsh's own namespaces`.
func (r *Setns) Commands() []string {
	if len(r.Enter.Opts) == 0 {
		return []string{"# setns: back in nsh's own namespaces"}
	}
	return []string{"# nsenter " + strings.Join(r.Enter.Opts, " ") + ": what follows runs there"}
}

// UndoCommands is empty: nothing changed.
func (r *Setns) UndoCommands() []string { return nil }

// PivotRoot makes NewRoot the root of a mount namespace: `mount --rbind
// NEW NEW` first if it was not a mount point (Bound, set by Apply), then
// `pivot_root NEW NEW/PUT_OLD`, or, without PutOld, the old root stacked
// on the new one by `pivot_root . .` and detached.
type PivotRoot struct {
	Effect
	NS      MountNS
	NewRoot string
	PutOld  string // a path under NewRoot, or ""
	Bound   bool
}

// Commands renders the pivot.
func (r *PivotRoot) Commands() []string {
	var out []string
	n := Quote(r.NewRoot)
	if r.Bound {
		out = append(out, r.NS.Exec("mount --rbind "+n+" "+n))
	}
	if r.PutOld != "" {
		old := Quote(strings.TrimSuffix(r.NewRoot, "/") + "/" + strings.TrimPrefix(r.PutOld, "/"))
		return append(out, r.NS.Exec("mkdir -p "+old), r.NS.Exec("pivot_root "+n+" "+old))
	}
	// The old root, stacked on the new one, is the mount on / afterwards.
	return append(out, r.NS.Exec("sh -c "+Quote("cd "+n+" && pivot_root . . && mount --make-rslave / && umount -l /")))
}

// UndoCommands is empty: the root is not given back.
func (r *PivotRoot) UndoCommands() []string { return nil }

// IDMaps writes the uid_map and gid_map of the user namespace of process
// Pid (and setgroups first). Apply sets how: nsh writes the files itself
// (`echo deny > /proc/PID/setgroups`, `echo '0 1000 1' >
// /proc/PID/uid_map`), through newuidmap/newgidmap (Helpers), or from a
// helper process in the parent user namespace of Pid's (Parent).
type IDMaps struct {
	Effect
	Pid       int
	UID, GID  idmap.Map // nil: not written
	Setgroups string    // written to setgroups first, or ""
	Helpers   bool
	Parent    bool
}

// Commands renders the writes.
func (r *IDMaps) Commands() []string {
	var out []string
	note := ""
	if r.Parent {
		note = fmt.Sprintf("  # from the parent user namespace of process %d's", r.Pid)
	}
	if r.Setgroups != "" {
		out = append(out, fmt.Sprintf("echo %s > /proc/%d/setgroups%s", r.Setgroups, r.Pid, note))
	}
	for _, m := range []struct {
		kind string
		m    idmap.Map
	}{{"uid", r.UID}, {"gid", r.GID}} {
		if m.m == nil {
			continue
		}
		if r.Helpers {
			out = append(out, fmt.Sprintf("new%smap %d %s", m.kind, r.Pid, strings.TrimSpace(strings.ReplaceAll(m.m.Text(), "\n", " "))))
			continue
		}
		text := m.m.Text()
		var c string
		if len(m.m) == 1 {
			c = "echo " + Quote(strings.TrimSuffix(text, "\n"))
		} else {
			c = "printf " + Quote(strings.ReplaceAll(text, "\n", `\n`))
		}
		out = append(out, fmt.Sprintf("%s > /proc/%d/%s_map%s", c, r.Pid, m.kind, note))
	}
	return out
}

// UndoCommands is empty: a map is written once and stays.
func (r *IDMaps) UndoCommands() []string { return nil }

// Seconds renders a clock offset for unshare --monotonic/--boottime.
func Seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d", d/time.Second)
	}
	return fmt.Sprintf("%g", d.Seconds())
}
