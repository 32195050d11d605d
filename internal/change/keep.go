package change

import "fmt"

// NsKeep keeps a namespace nsh holds only by a descriptor beyond the run,
// bind-mounting it on a file (a lab's ns/ directory): like unshare(1)'s
// --net=FILE, but for a namespace that exists already.
type NsKeep struct {
	Effect
	Kind string // "net", "uts", ...
	Fd   int    // nsh's descriptor of it
	Path string
}

// Commands renders `touch PATH` and `mount --bind /proc/PID/fd/N PATH`.
func (r *NsKeep) Commands() []string {
	src := Netns{Fd: r.Fd}.path()
	return []string{
		fmt.Sprintf("# keep %s namespace %s (held only by nsh) on %s", r.Kind, src, r.Path),
		"touch " + r.Path,
		"mount --bind " + src + " " + r.Path,
	}
}

// UndoCommands renders `umount PATH` and `rm PATH`.
func (r *NsKeep) UndoCommands() []string {
	return []string{"umount " + r.Path, "rm " + r.Path}
}
