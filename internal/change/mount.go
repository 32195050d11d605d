package change

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// MountNS names a mount namespace in commands: nsh's own is the zero
// value; any other is reached through nsh's descriptor, Path
// (/proc/PID/fd/N), and Label ("mnt:[4026532200]") names it in a comment.
type MountNS struct {
	Path  string
	Label string
}

// Exec renders cmd run in n: as it is, or `nsenter --mount=PATH CMD  # LABEL`.
func (n MountNS) Exec(cmd string) string {
	if n.Path == "" {
		return cmd
	}
	return "nsenter --mount=" + n.Path + " " + cmd + "  # " + n.Label
}

// Mount makes a mount (a filesystem or a bind), remounts one, or changes
// a mount's propagation: `mount ARGS SOURCE TARGET`. Dirs, set by Apply,
// are the directories mkdir=True made for it, oldest first (the last one
// an empty file when File is set: the target of a file bind).
type Mount struct {
	Effect
	NS     MountNS
	Args   []string // mount(8)'s options: "--bind", "-t", "tmpfs", "-o", "ro"
	Source string   // "" for none
	Target string
	Dirs   []string
	File   bool
	// Vanishes: the mount goes with its namespace, which the run made;
	// only what mkdir=True made is undone.
	Vanishes bool

	unmounted atomic.Bool
}

// Unmounted records that the script unmounted the mount itself: its
// undo, and its undo commands, are only the removal of Dirs.
func (r *Mount) Unmounted() { r.unmounted.Store(true) }

// IsUnmounted reports whether Unmounted was called.
func (r *Mount) IsUnmounted() bool { return r.unmounted.Load() }

// Commands renders `mkdir -p DIR` (and `touch FILE`) for what mkdir=True
// made, then `mount ARGS SOURCE TARGET`.
func (r *Mount) Commands() []string {
	var out []string
	dirs, file := r.Dirs, ""
	if r.File && len(dirs) > 0 {
		dirs, file = dirs[:len(dirs)-1], dirs[len(dirs)-1]
	}
	if len(dirs) > 0 {
		out = append(out, r.NS.Exec("mkdir -p "+Quote(dirs[len(dirs)-1])))
	}
	if file != "" {
		out = append(out, r.NS.Exec("touch "+Quote(file)))
	}
	args := make([]string, 0, len(r.Args)+3)
	args = append(args, "mount")
	for _, a := range r.Args {
		args = append(args, Quote(a))
	}
	if r.Source != "" {
		args = append(args, Quote(r.Source))
	}
	args = append(args, Quote(r.Target))
	return append(out, r.NS.Exec(strings.Join(args, " ")))
}

// UndoCommands renders `umount TARGET` (unless the mount vanishes with its
// namespace or was unmounted by the script) and `rmdir` (and `rm`) for what
// mkdir=True made, newest first.
func (r *Mount) UndoCommands() []string {
	var out []string
	if !r.Vanishes && !r.unmounted.Load() {
		out = append(out, r.NS.Exec("umount "+Quote(r.Target)))
	}
	dirs := r.Dirs
	if r.File && len(dirs) > 0 {
		out = append(out, r.NS.Exec("rm "+Quote(dirs[len(dirs)-1])))
		dirs = dirs[:len(dirs)-1]
	}
	if len(dirs) > 0 {
		args := []string{"rmdir"}
		for i := len(dirs) - 1; i >= 0; i-- {
			args = append(args, Quote(dirs[i]))
		}
		out = append(out, r.NS.Exec(strings.Join(args, " ")))
	}
	return out
}

// Umount unmounts: `umount [-R] [-l] TARGET`.
type Umount struct {
	Effect
	NS        MountNS
	Target    string
	Detach    bool
	Recursive bool
}

// Commands renders `umount [-R] [-l] TARGET`.
func (r *Umount) Commands() []string {
	s := "umount "
	if r.Recursive {
		s += "-R "
	}
	if r.Detach {
		s += "-l "
	}
	return []string{r.NS.Exec(s + Quote(r.Target))}
}

// UndoCommands is empty: nsh does not mount again what a script unmounted.
func (r *Umount) UndoCommands() []string { return nil }

// Mkdir makes a directory: `mkdir [-p] -m MODE PATH`. Dirs, set by Apply,
// are the directories it made, oldest first (the missing parents too with
// Parents); none when it existed (ExistOK).
type Mkdir struct {
	Effect
	NS      MountNS
	Path    string
	Mode    uint32
	Parents bool
	Dirs    []string
}

// Commands renders `mkdir [-p] -m MODE PATH`; nothing when it made none.
func (r *Mkdir) Commands() []string {
	if len(r.Dirs) == 0 {
		return nil
	}
	p := ""
	if r.Parents {
		p = "-p "
	}
	return []string{r.NS.Exec(fmt.Sprintf("mkdir %s-m %04o %s", p, r.Mode, Quote(r.Path)))}
}

// UndoCommands renders `rmdir` of what it made, newest first.
func (r *Mkdir) UndoCommands() []string {
	if len(r.Dirs) == 0 {
		return nil
	}
	args := []string{"rmdir"}
	for i := len(r.Dirs) - 1; i >= 0; i-- {
		args = append(args, Quote(r.Dirs[i]))
	}
	return []string{r.NS.Exec(strings.Join(args, " "))}
}
