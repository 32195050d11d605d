package mount

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/inroot"
	"nsh.dev/nsh/internal/mountopt"
)

// Request is one mount() call: a new mount (a filesystem or a bind), a
// remount, or a propagation change. Fill in the fields, then Check it.
type Request struct {
	Source      string // a device, "tmpfs", the path to bind; "" for the type's name
	Target      string // the mount point (inside Root)
	Root        string // the directory Target is resolved in; "" is "/"
	FSType      string // "tmpfs", "proc", "overlay"; "" for binds and propagation changes
	Options     string // a mount(8) option string, as written ("ro,size=10m")
	Bind        bool
	Recursive   bool
	Readonly    bool
	Propagation string // "shared", "slave", "private", "unbindable", or "" to leave it
	Mkdir       bool   // create a missing target (an empty file when binding a file)
	PidNS       int    // proc: descriptor of the PID namespace to show (pidns=), 0 for the thread's own
	// Ahead, when not nil, is told what Apply is about to make before
	// each step (see Ahead): for the run's reaper (write ahead).
	Ahead func(Ahead)

	opts     mountopt.Options
	propFlag uintptr // MS_SHARED etc., 0 for none
}

func (r *Request) remount() bool  { return r.opts.Flags&unix.MS_REMOUNT != 0 }
func (r *Request) propOnly() bool { return !r.Bind && r.FSType == "" && !r.remount() }
func (r *Request) bindNew() bool  { return r.Bind && !r.remount() }

// NewMount reports whether r makes a new mount (a filesystem or a bind),
// rather than changing an existing one.
func (r *Request) NewMount() bool { return !r.propOnly() && !r.remount() }

func (r *Request) isOverlay() bool { return r.FSType == "overlay" }

// Describe renders the call as a mount(8) command line, for messages.
func (r *Request) Describe() string {
	flags, source, target := r.Args()
	parts := flags
	if source != "" {
		parts = append(parts, strconv.Quote(source))
	}
	parts = append(parts, strconv.Quote(target))
	return strings.Join(parts, " ")
}

// Args returns the call as mount(8)'s arguments: its options ("--bind",
// "-t", "tmpfs", "-o", "ro"), its source ("" for none) and its target.
func (r *Request) Args() (flags []string, source, target string) {
	switch {
	case r.bindNew() && r.Recursive:
		flags = append(flags, "--rbind")
	case r.bindNew():
		flags = append(flags, "--bind")
	case r.propOnly():
		rec := ""
		if r.Recursive {
			rec = "r"
		}
		flags = append(flags, "--make-"+rec+r.Propagation)
	}
	if r.FSType != "" {
		flags = append(flags, "-t", r.FSType)
	}
	o := r.Options
	if r.Readonly && !strings.Contains(","+o+",", ",ro,") {
		o = strings.TrimPrefix(o+",ro", ",")
	}
	if o != "" {
		flags = append(flags, "-o", o)
	}
	target = r.Target
	if r.Root != "/" {
		target = r.Root + "/" + inroot.Rel(r.Target)
	}
	return flags, r.Source, target
}

// Check validates r and completes it (absolute paths, parsed options, the
// source of a filesystem defaults to its type); it makes no syscall
// besides reading /proc/filesystems. Apply needs a checked request.
func (r *Request) Check() error {
	var err error
	if r.Target == "" {
		return fmt.Errorf("missing target: mount(source, target, ...), e.g. mount(\"tmpfs\", \"/mnt\", \"tmpfs\")")
	}
	if r.Propagation != "" {
		if r.propFlag, err = mountopt.Propagation(r.Propagation, false); err != nil {
			return err
		}
	}
	if r.opts, err = mountopt.Parse(r.Options); err != nil {
		return err
	}
	if r.Readonly {
		r.opts.Flags |= unix.MS_RDONLY
	}
	if r.Root == "" {
		r.Root = "/"
	}
	if r.Root, err = filepath.Abs(r.Root); err != nil {
		return err
	}
	if !filepath.IsAbs(r.Target) && r.Root == "/" {
		if r.Target, err = filepath.Abs(r.Target); err != nil {
			return err
		}
	}
	switch {
	case r.Bind:
		if r.FSType != "" {
			return fmt.Errorf("bind=True takes no fstype (got %q)", r.FSType)
		}
		if len(r.opts.Data) > 0 {
			return fmt.Errorf("a bind mount takes only mount flags (ro, nosuid, nodev, noexec, ...), not %q", r.opts.DataString())
		}
		if r.remount() {
			// A bind remount: per-mount flags of target only.
			if r.Source != "" || r.Mkdir || r.Recursive {
				return fmt.Errorf("a bind remount takes target and options only: mount(target=T, options=\"remount,ro\", bind=True)")
			}
			break
		}
		if r.Source == "" {
			return fmt.Errorf("bind=True needs a source path")
		}
		if r.Source, err = filepath.Abs(r.Source); err != nil {
			return err
		}
	case r.remount():
		if r.Source != "" || r.Mkdir || r.Recursive {
			return fmt.Errorf("a remount takes target and options only")
		}
	case r.FSType != "":
		if err := checkFSType(r.FSType); err != nil {
			return err
		}
		if r.Source == "" {
			r.Source = r.FSType
		}
		if r.Recursive && r.propFlag == 0 {
			return fmt.Errorf("recursive=True applies to bind mounts and propagation, not to a new %s", r.FSType)
		}
		if r.isOverlay() {
			if err := absOverlayDirs(&r.opts); err != nil {
				return err
			}
		}
	default:
		if r.Source != "" {
			return fmt.Errorf("mounting %q needs fstype= (e.g. \"tmpfs\", \"proc\") or bind=True", r.Source)
		}
		if r.propFlag == 0 {
			return fmt.Errorf("nothing to do: give a source and fstype, bind=True, or propagation=")
		}
		if r.Options != "" || r.Readonly || r.Mkdir {
			return fmt.Errorf("a propagation change takes only target, propagation and recursive")
		}
	}
	return nil
}

// checkFSType refuses a type the kernel does not know, before any mount.
func checkFSType(fstype string) error {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return nil // let mount(2) decide
	}
	defer f.Close()
	base, _, _ := strings.Cut(fstype, ".") // fuse.sshfs is fuse
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == base {
			return nil
		}
	}
	return fmt.Errorf("unknown filesystem type %q: the kernel does not list it in /proc/filesystems (and cannot load modules here)", fstype)
}

// absOverlayDirs makes overlay's directory options absolute and checks the
// required ones, since mount(2) resolves them on a thread whose working
// directory is not nsh's.
func absOverlayDirs(o *mountopt.Options) error {
	if _, ok := o.Value("lowerdir"); !ok {
		if _, ok2 := o.Value("lowerdir+"); !ok2 {
			return fmt.Errorf("overlay needs lowerdir= (and upperdir=, workdir= for a writable overlay)")
		}
	}
	_, up := o.Value("upperdir")
	_, work := o.Value("workdir")
	if up != work {
		return fmt.Errorf("overlay needs upperdir= and workdir= together")
	}
	for i, d := range o.Data {
		k, v, ok := strings.Cut(d, "=")
		if !ok {
			continue
		}
		switch k {
		case "lowerdir", "upperdir", "workdir", "lowerdir+", "datadir+":
			parts := strings.Split(v, ":")
			for j, p := range parts {
				if p == "" || filepath.IsAbs(p) {
					continue
				}
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				parts[j] = abs
			}
			o.Data[i] = k + "=" + strings.Join(parts, ":")
		}
	}
	return nil
}

// ProcWithoutPidNS reports whether r mounts a new proc that names no PID
// namespace (pidns=) in its options: it shows the calling thread's PID
// namespace unless PidNS is set.
func (r *Request) ProcWithoutPidNS() bool {
	return r.FSType == "proc" && r.NewMount() && !r.Bind && !hasPidnsOpt(r.opts.Data)
}

func hasPidnsOpt(data []string) bool {
	for _, d := range data {
		if strings.HasPrefix(d, "pidns=") {
			return true
		}
	}
	return false
}
