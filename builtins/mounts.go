package builtins

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/inroot"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/mountinfo"
	"nsh.dev/nsh/internal/mountopt"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
)

func mountTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "mount", Sig: `mount(source=None, target=None, fstype="", options="", bind=False, recursive=False, readonly=False, propagation=None, mkdir=False, root=None, persist=False)`,
				Impl: mountBuiltin, Doc: `Mounts in the current context's mount namespace; returns the new nsh.mount.
A filesystem:      mount("tmpfs", "/mnt/x", "tmpfs", "size=10m,mode=755")
                   proc, sysfs, tmpfs, devpts, mqueue, cgroup2, overlay
                   ("lowerdir=/l1:/l2,upperdir=/u,workdir=/w"), ...; source
                   defaults to fstype.
A bind:            mount("/src", "/dst", bind=True, recursive=True, readonly=True)
                   read-only is a bind then a read-only bind remount, as the
                   kernel needs; recursive read-only uses mount_setattr(2).
Propagation only:  mount(target="/", propagation="private", recursive=True)
                   == mount --make-rprivate / (no source).
A remount:         mount(target="/mnt/x", options="remount,ro")
                   the superblock; with bind=True only that mount's flags.
options is a mount(8) option string: flags (ro, nosuid, nodev, noexec,
relatime, ...) become mount flags, the rest goes to the filesystem;
fstab-only options (defaults, noauto, x-*) are dropped. A refusal shows the
options and, when the filesystem says, which one and why. propagation
("shared", "slave", "private", "unbindable") applies to the new mount, or
to target when there is no source, and to the mounts below when recursive.
mkdir=True creates a missing target (an empty file when binding a file);
what it creates is removed at the end of the run.
The target is resolved inside root (default "/"; with root=, a relative
target is relative to it) with openat2(RESOLVE_IN_ROOT): a symlink under
root cannot lead the mount out of it. Other relative paths are relative to
nsh's working directory. A proc mount shows the current context's PID
namespace (after unshare("pid"), the new one: proc's pidns= option, Linux
6.17+). In a user namespace (rootless nsh) the kernel mounts proc, sysfs,
mqueue and cgroup2 only for a pid/net/ipc/cgroup namespace that user
namespace owns (unshare() it first) and only where a full instance is still
visible: mount proc under the new root before pivot_root.
Mounts made in a mount namespace the run created vanish with it. Mounts
made in the mount namespace nsh started in are unmounted at the end of the
run, unless persist=True or .persist() is called on the result. Changes of
propagation and remounts of existing mounts are not undone.`},
			{Name: "umount", Sig: "umount(target, detach=False, recursive=False)", Impl: umountBuiltin, Doc: `Unmounts target in the current context's mount namespace.
recursive=True unmounts the mounts below target first; detach=True is a
lazy unmount (MNT_DETACH) that also takes everything below. A busy mount or
a path that is not a mount point is an error.`},
			{Name: "mounts", Sig: "mounts(ns=None)", Impl: mountsBuiltin, Doc: `Returns the mount table of a mount namespace as a list of nsh.mount, in
/proc/PID/mountinfo order, with targets as seen from that namespace's root.
ns is a target as for setns() (a namespaces value, a mnt namespace, a pid,
a process or a path); default the current context.
Example: [m.target for m in mounts() if m.fstype == "tmpfs"]`},
			{Name: "pivot_root", Sig: "pivot_root(new_root, put_old=None)", Impl: pivotRootBuiltin, Doc: `Makes new_root the root of the current context's mount namespace.
The namespace must be one the run moved into (unshare("mnt")), never the
one nsh started in. new_root is bind-mounted on itself first if it is not
a mount point. The old root is detached (umount -l) unless put_old, a path
under new_root, is given to keep it there. Afterwards every builtin and
every process started in the context sees new_root as "/". nsh's builtins
reach /proc through nsh's own; processes started there need one mounted
(mount("proc", "/proc", "proc", mkdir=True)).`},
		},
		Types: []doc.Type{mountType.Type()},
	}
}

var mountType = doc.Members[*Mount]{
	Name: "nsh.mount",
	Doc: `One mount, from /proc/PID/mountinfo (str() reads like mount(8)'s listing:
"tmpfs on /mnt/x type tmpfs (rw,relatime) shared:12"). A snapshot: call
mounts() again to see changes. Two values of the same mount (namespace and
id) compare equal, so m in mounts() tells whether m is still mounted.`,
	Attrs: []doc.AttrOf[*Mount]{
		{Name: "id", Doc: "mount id", Get: func(m *Mount) (starlark.Value, error) { return starlark.MakeInt(m.e.ID), nil }},
		{Name: "parent", Doc: "mount id of the parent mount", Get: func(m *Mount) (starlark.Value, error) { return starlark.MakeInt(m.e.Parent), nil }},
		{Name: "source", Doc: `the mounted source ("tmpfs", "/dev/vda", "overlay")`,
			Get: func(m *Mount) (starlark.Value, error) { return starlark.String(m.e.Source), nil }},
		{Name: "target", Doc: "the mount point, as seen from the namespace's root",
			Get: func(m *Mount) (starlark.Value, error) { return starlark.String(m.e.Target), nil }},
		{Name: "root", Doc: "the directory of the filesystem mounted there (not / for binds of subdirectories)",
			Get: func(m *Mount) (starlark.Value, error) { return starlark.String(m.e.Root), nil }},
		{Name: "fstype", Doc: `filesystem type ("ext4", "tmpfs", "fuse.sshfs")`,
			Get: func(m *Mount) (starlark.Value, error) { return starlark.String(m.e.FSType), nil }},
		{Name: "options", Doc: `per-mount options ("rw,nosuid,relatime")`,
			Get: func(m *Mount) (starlark.Value, error) { return starlark.String(m.e.Options), nil }},
		{Name: "super_options", Doc: "per-superblock options (size=, lowerdir=, ...)",
			Get: func(m *Mount) (starlark.Value, error) { return starlark.String(m.e.SuperOptions), nil }},
		{Name: "propagation", Doc: `"shared", "slave", "shared+slave", "private" or "unbindable"`,
			Get: func(m *Mount) (starlark.Value, error) { return starlark.String(m.e.Propagation()), nil }},
		{Name: "shared", Doc: "peer group id when shared, else None", Get: func(m *Mount) (starlark.Value, error) { return optInt(m.e.Shared), nil }},
		{Name: "master", Doc: "peer group this slave receives from, else None", Get: func(m *Mount) (starlark.Value, error) { return optInt(m.e.Master), nil }},
		{Name: "ns", Doc: "the mount namespace (nsh.namespace)", Get: func(m *Mount) (starlark.Value, error) { return &Namespace{ns: m.ns, st: m.st}, nil }},
	},
	Methods: []doc.MethodOf[*Mount]{
		{Name: "persist", Sig: "persist()", Impl: (*Mount).persist, Doc: `Keeps a mount made in nsh's initial mount namespace after the run; returns the mount.
A mount in a namespace the run created lives as long as that namespace,
whatever persist says.`},
	},
}

// optInt is a peer group id: None for 0.
func optInt(v int) starlark.Value {
	if v == 0 {
		return starlark.None
	}
	return starlark.MakeInt(v)
}

// Mount is the Starlark value of one mountinfo entry.
type Mount struct {
	e     mountinfo.Entry
	ns    *nsctx.NS
	st    *state
	made  bool             // made by this run's mount()
	entry *lifecycle.Entry // its undo, for mounts made in the initial namespace
}

var (
	_ starlark.HasAttrs   = (*Mount)(nil)
	_ starlark.Comparable = (*Mount)(nil)
)

// CompareSameType compares mounts by namespace and mount id, so a value
// from mount() is found in mounts().
func (m *Mount) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	o := y.(*Mount)
	same := nsctx.Same(m.ns, o.ns) && m.e.ID == o.e.ID
	switch op {
	case syntax.EQL:
		return same, nil
	case syntax.NEQ:
		return !same, nil
	}
	return false, fmt.Errorf("%s %s %s not supported", m.Type(), op, y.Type())
}

// String renders the mount as mount(8) lists it.
func (m *Mount) String() string {
	s := fmt.Sprintf("%s on %s type %s (%s)", m.e.Source, m.e.Target, m.e.FSType, m.e.Options)
	if m.e.Shared != 0 {
		s += fmt.Sprintf(" shared:%d", m.e.Shared)
	}
	if m.e.Master != 0 {
		s += fmt.Sprintf(" master:%d", m.e.Master)
	}
	if m.e.Unbindable {
		s += " unbindable"
	}
	return s
}

// Type returns "nsh.mount".
func (m *Mount) Type() string { return "nsh.mount" }

// Freeze is a no-op: a Mount is a snapshot.
func (m *Mount) Freeze() {}

// Truth is always true.
func (m *Mount) Truth() starlark.Bool { return true }

// Hash hashes the mount id.
func (m *Mount) Hash() (uint32, error) { return uint32(m.e.ID), nil }

// AttrNames lists the attributes and methods.
func (m *Mount) AttrNames() []string { return mountType.AttrNames() }

// Attr returns an attribute or a bound method.
func (m *Mount) Attr(name string) (starlark.Value, error) { return mountType.Attr(m, name) }

func (m *Mount) persist(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs); err != nil {
		return nil, err
	}
	if !m.made {
		return nil, fmt.Errorf("%s was not made by this run's mount(); only those can be persisted", m.e.Target)
	}
	if m.entry != nil {
		m.entry.Persist()
	}
	return m, nil
}

// mountReq is a validated mount() call.
type mountReq struct {
	source      string
	target      string
	root        string
	fstype      string
	opts        mountopt.Options
	optString   string
	bind        bool
	recursive   bool
	readonly    bool
	propagation uintptr // MS_SHARED etc., 0 for none
	propName    string
	mkdir       bool
	persist     bool
	pidns       int // proc: descriptor of the PID namespace to show (pidns=), 0 for the thread's own
}

func (r *mountReq) remount() bool   { return r.opts.Flags&unix.MS_REMOUNT != 0 }
func (r *mountReq) propOnly() bool  { return !r.bind && r.fstype == "" && !r.remount() }
func (r *mountReq) bindNew() bool   { return r.bind && !r.remount() }
func (r *mountReq) newMount() bool  { return !r.propOnly() && !r.remount() }
func (r *mountReq) isOverlay() bool { return r.fstype == "overlay" }

// describe renders the call as a mount(8) command line, for messages.
func (r *mountReq) describe() string {
	var parts []string
	switch {
	case r.bindNew() && r.recursive:
		parts = append(parts, "--rbind")
	case r.bindNew():
		parts = append(parts, "--bind")
	case r.propOnly():
		rec := ""
		if r.recursive {
			rec = "r"
		}
		parts = append(parts, "--make-"+rec+r.propName)
	}
	if r.fstype != "" {
		parts = append(parts, "-t", r.fstype)
	}
	o := r.optString
	if r.readonly && !strings.Contains(","+o+",", ",ro,") {
		o = strings.TrimPrefix(o+",ro", ",")
	}
	if o != "" {
		parts = append(parts, "-o", o)
	}
	if r.source != "" {
		parts = append(parts, strconv.Quote(r.source))
	}
	t := r.target
	if r.root != "/" {
		t = r.root + "/" + inroot.Rel(r.target)
	}
	parts = append(parts, strconv.Quote(t))
	return strings.Join(parts, " ")
}

var propagationFlags = map[string]uintptr{
	"shared": unix.MS_SHARED, "slave": unix.MS_SLAVE, "private": unix.MS_PRIVATE, "unbindable": unix.MS_UNBINDABLE,
}

// parseMount unpacks and validates mount()'s arguments; it makes no
// syscall besides reading /proc/filesystems.
func parseMount(fname string, args starlark.Tuple, kwargs []starlark.Tuple) (*mountReq, error) {
	var source, target, propagation, root starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
	r := &mountReq{}
	if err := starlark.UnpackArgs(fname, args, kwargs,
		"source?", &source, "target?", &target, "fstype?", &r.fstype, "options?", &r.optString,
		"bind?", &r.bind, "recursive?", &r.recursive, "readonly?", &r.readonly,
		"propagation?", &propagation, "mkdir?", &r.mkdir, "root?", &root, "persist?", &r.persist); err != nil {
		return nil, err
	}
	str := func(name string, v starlark.Value) (string, error) {
		if v == starlark.None {
			return "", nil
		}
		s, ok := starlark.AsString(v)
		if !ok {
			return "", fmt.Errorf("%s must be a string, not %s", name, v.Type())
		}
		return s, checkNoNUL(name, s)
	}
	var err error
	if r.source, err = str("source", source); err != nil {
		return nil, err
	}
	if r.target, err = str("target", target); err != nil {
		return nil, err
	}
	if r.root, err = str("root", root); err != nil {
		return nil, err
	}
	if r.propName, err = str("propagation", propagation); err != nil {
		return nil, err
	}
	if err := checkNoNUL("fstype", r.fstype); err != nil {
		return nil, err
	}
	if err := checkNoNUL("options", r.optString); err != nil {
		return nil, err
	}
	if r.target == "" {
		return nil, fmt.Errorf("missing target: mount(source, target, ...), e.g. mount(\"tmpfs\", \"/mnt\", \"tmpfs\")")
	}
	if r.propName != "" {
		f, ok := propagationFlags[r.propName]
		if !ok {
			return nil, fmt.Errorf("unknown propagation %q (shared, slave, private, unbindable)", r.propName)
		}
		r.propagation = f
	}
	if r.opts, err = mountopt.Parse(r.optString); err != nil {
		return nil, err
	}
	if r.readonly {
		r.opts.Flags |= unix.MS_RDONLY
	}
	if r.root == "" {
		r.root = "/"
	}
	if r.root, err = filepath.Abs(r.root); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(r.target) && r.root == "/" {
		if r.target, err = filepath.Abs(r.target); err != nil {
			return nil, err
		}
	}
	switch {
	case r.bind:
		if r.fstype != "" {
			return nil, fmt.Errorf("bind=True takes no fstype (got %q)", r.fstype)
		}
		if len(r.opts.Data) > 0 {
			return nil, fmt.Errorf("a bind mount takes only mount flags (ro, nosuid, nodev, noexec, ...), not %q", r.opts.DataString())
		}
		if r.remount() {
			// A bind remount: per-mount flags of target only.
			if r.source != "" || r.mkdir || r.recursive {
				return nil, fmt.Errorf("a bind remount takes target and options only: mount(target=T, options=\"remount,ro\", bind=True)")
			}
			break
		}
		if r.source == "" {
			return nil, fmt.Errorf("bind=True needs a source path")
		}
		if r.source, err = filepath.Abs(r.source); err != nil {
			return nil, err
		}
	case r.remount():
		if r.source != "" || r.mkdir || r.recursive {
			return nil, fmt.Errorf("a remount takes target and options only")
		}
	case r.fstype != "":
		if err := checkFSType(r.fstype); err != nil {
			return nil, err
		}
		if r.source == "" {
			r.source = r.fstype
		}
		if r.recursive && r.propagation == 0 {
			return nil, fmt.Errorf("recursive=True applies to bind mounts and propagation, not to a new %s", r.fstype)
		}
		if r.isOverlay() {
			if err := absOverlayDirs(&r.opts); err != nil {
				return nil, err
			}
		}
	default:
		if r.source != "" {
			return nil, fmt.Errorf("mounting %q needs fstype= (e.g. \"tmpfs\", \"proc\") or bind=True", r.source)
		}
		if r.propagation == 0 {
			return nil, fmt.Errorf("nothing to do: give a source and fstype, bind=True, or propagation=")
		}
		if r.optString != "" || r.readonly || r.mkdir {
			return nil, fmt.Errorf("a propagation change takes only target, propagation and recursive")
		}
	}
	return r, nil
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

// mountRegistry maps the ids of the mounts this run made in the initial
// mount namespace to their lifecycle entries, so umount() can drop them.
type mountRegistry struct {
	entries map[int]*lifecycle.Entry
	dirs    map[int][]madeDir // what mkdir=True made for them
}

func mountsOf(st *state) *mountRegistry {
	return st.reg.Shared("nsh.builtins.mounts", func() any {
		return &mountRegistry{entries: map[int]*lifecycle.Entry{}, dirs: map[int][]madeDir{}}
	}).(*mountRegistry)
}

func (st *state) mntRegistry() (*mountRegistry, func()) {
	st.mu.Lock()
	return mountsOf(st), st.mu.Unlock
}

func mountBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := parseMount(fn.Name(), args, kwargs)
	if err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	cur := st.current()
	mnt := cur.Get("mnt")
	host := nsctx.Same(mnt, st.tab.Initial.Get("mnt"))
	if r.fstype == "proc" && r.newMount() && !r.bind && !hasPidnsOpt(r.opts.Data) && !nsctx.Same(cur.Get("pid"), st.tab.Initial.Get("pid")) {
		r.pidns = cur.Get("pid").Fd()
	}
	proc, err := openProc()
	if err != nil {
		return nil, err
	}
	defer unix.Close(proc)
	var res mountResult
	err = nsthread.Do(st.tab.Joins(cur), func() error {
		var err error
		res, err = doMount(proc, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	m := &Mount{e: res.entry, ns: mnt, st: st, made: r.newMount()}
	id, target, created := res.entry.ID, res.entry.Target, res.created
	undo := func() error {
		proc, err := openProc()
		if err != nil {
			return err
		}
		defer unix.Close(proc)
		var left []madeDir
		err = nsthread.Do(st.tab.Joins(st.tab.Initial.With(mnt)), func() error {
			var err error
			left, err = undoMount(proc, id, target, created)
			return err
		})
		if len(left) > 0 && !host {
			// After pivot_root the directories are out of the
			// namespace's reach; where nsh started, the same path
			// usually names them (checked by inode).
			nsthread.Do(nil, func() error { removeDirs(left); return nil })
		}
		return err
	}
	switch {
	case host && r.newMount() && !r.persist:
		m.entry = st.reg.Add(fmt.Sprintf("mount %s on %s", res.entry.FSType, target), undo)
		ops := []reaper.Op{reaper.Umount(mnt, target, uint64(id))}
		for i := len(created) - 1; i >= 0; i-- {
			ops = append(ops, reaper.Rmdir(mnt, created[i].path))
		}
		st.watch(m.entry, ops...)
		reg, unlock := st.mntRegistry()
		reg.entries[id] = m.entry
		reg.dirs[id] = created
		unlock()
	case !host && len(created) > 0:
		// The mount dies with its namespace, but the directories made
		// for it may be on a filesystem the host shares: remove them.
		st.reg.Add(fmt.Sprintf("directories made for mount on %s", target), undo)
	}
	return m, nil
}

func hasPidnsOpt(data []string) bool {
	for _, d := range data {
		if strings.HasPrefix(d, "pidns=") {
			return true
		}
	}
	return false
}

// openProc opens nsh's own /proc, which stays usable on a thread that moved
// into a mount namespace without one (after pivot_root, say): thread-self
// relative to it is always the calling thread.
func openProc() (int, error) {
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nserr.New("open", "/proc", err)
	}
	return fd, nil
}

// fdPath names descriptor fd of the calling thread relative to proc, for
// syscalls that take paths (mount, umount): with the working directory at
// proc, "thread-self/fd/N" reaches the very file the descriptor holds.
func fdPath(fd int) string { return "thread-self/fd/" + strconv.Itoa(fd) }

// readMounts reads the mount table of the calling thread's namespace.
func readMounts(proc int) ([]mountinfo.Entry, error) {
	fd, err := unix.Openat(proc, "thread-self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("open", "/proc/thread-self/mountinfo", err)
	}
	f := os.NewFile(uintptr(fd), "mountinfo")
	defer f.Close()
	return mountinfo.Parse(f)
}

func mountID(fd int) (int, bool, error) {
	var sx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sx); err != nil {
		return 0, false, nserr.New("statx", "", err)
	}
	return int(sx.Mnt_id), sx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
}

func findMount(es []mountinfo.Entry, id int) (mountinfo.Entry, bool) {
	for _, e := range es {
		if e.ID == id {
			return e, true
		}
	}
	return mountinfo.Entry{}, false
}

type mountResult struct {
	entry   mountinfo.Entry
	created []madeDir // what mkdir=True created
}

// madeDir is a directory (or file) mkdir=True created: its absolute path
// in the namespace, and its inode, so that cleanup removes that very one.
type madeDir struct {
	path     string
	dev, ino uint64
}

// removeDirs removes what mkdir=True made, newest first, skipping paths
// that now name something else, and returns what it could not reach.
func removeDirs(ds []madeDir) (left []madeDir) {
	for i := len(ds) - 1; i >= 0; i-- {
		var st unix.Stat_t
		if err := unix.Lstat(ds[i].path, &st); err != nil || st.Dev != ds[i].dev || st.Ino != ds[i].ino {
			left = append([]madeDir{ds[i]}, left...)
			continue
		}
		if unix.Rmdir(ds[i].path) != nil {
			unix.Unlink(ds[i].path)
		}
	}
	return left
}

// doMount runs on a thread that joined the context. It resolves the
// target inside the root, mounts on the descriptor, and reports the new
// mount's mountinfo entry; on failure nothing stays mounted or created.
func doMount(proc int, r *mountReq) (res mountResult, err error) {
	// Private fs attributes: the thread changes its working directory.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return res, nserr.New("unshare", "CLONE_FS", err)
	}
	obj := r.describe()
	rootfd, err := unix.Open(r.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return res, nserr.Errorf("mount", obj, err, "root %s is not a directory in this mount namespace", r.root)
	}
	defer unix.Close(rootfd)

	srcPath, srcIsDir := r.source, true
	if r.bindNew() {
		sfd, err := unix.Open(r.source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return res, nserr.Errorf("mount", obj, err, "the bind source %s does not exist", r.source)
		} else if err != nil {
			return res, nserr.New("mount", obj, err)
		}
		defer unix.Close(sfd)
		var sst unix.Stat_t
		if err := unix.Fstat(sfd, &sst); err != nil {
			return res, nserr.New("fstat", r.source, err)
		}
		srcIsDir = sst.Mode&unix.S_IFMT == unix.S_IFDIR
		id, _, err := mountID(sfd)
		if err != nil {
			return res, err
		}
		es, err := readMounts(proc)
		if err != nil {
			return res, err
		}
		if e, ok := findMount(es, id); ok && e.Unbindable {
			return res, nserr.Errorf("mount", obj, unix.EINVAL, "the source is on %s, an unbindable mount: it cannot be bound anywhere", e.Target)
		}
		srcPath = fdPath(sfd)
	}

	var tfd int
	if r.mkdir {
		var created []string
		tfd, created, err = inroot.Create(rootfd, r.target, r.bindNew() && !srcIsDir)
		for _, c := range created {
			var st unix.Stat_t
			if err := unix.Fstatat(rootfd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
				res.created = append(res.created, madeDir{path: filepath.Join(r.root, c), dev: st.Dev, ino: st.Ino})
			}
		}
	} else {
		tfd, err = inroot.Open(rootfd, r.target)
	}
	if err != nil {
		var ce *inroot.CreateError
		if errors.As(err, &ce) {
			return res, mkdirError(filepath.Join(r.root, ce.Path), "target "+strconv.Quote(r.target), ce)
		}
		if errors.Is(err, unix.ENOENT) && !r.mkdir {
			return res, nserr.Errorf("mount", obj, err, "the target does not exist; mkdir=True creates it")
		}
		if errors.Is(err, unix.ELOOP) {
			return res, nserr.Errorf("mount", obj, err, "a symlink is in the way of the target; it is not followed")
		}
		return res, nserr.New("mount", obj, err)
	}
	defer unix.Close(tfd)
	fail := func(err error) (mountResult, error) {
		removeDirs(res.created)
		return mountResult{}, err
	}
	underID, isRoot, err := mountID(tfd)
	if err != nil {
		return fail(err)
	}
	if !r.newMount() && !isRoot {
		return fail(nserr.Errorf("mount", obj, unix.EINVAL, "%s is not a mount point; bind it onto itself first: mount(%q, %q, bind=True)", r.target, r.target, r.target))
	}
	if err := unix.Fchdir(proc); err != nil {
		return fail(nserr.New("chdir", "/proc", err))
	}
	tpath := fdPath(tfd)

	switch {
	case r.propOnly():
		if err := unix.Mount("none", tpath, "", r.propagation|recFlag(r.recursive), ""); err != nil {
			return fail(nserr.New("mount", obj, err))
		}
		return finish(proc, res, underID, tfd)
	case r.remount():
		flags := r.opts.Flags
		if r.bind {
			flags |= unix.MS_BIND
		}
		if err := unix.Mount(r.source, tpath, r.fstype, flags, r.opts.DataString()); err != nil {
			return fail(explainMount(obj, r, err))
		}
		return finish(proc, res, underID, tfd)
	case r.bind:
		if err := unix.Mount(srcPath, tpath, "", unix.MS_BIND|recFlag(r.recursive), ""); err != nil {
			return fail(explainMount(obj, r, err))
		}
	default:
		data := r.opts.DataString()
		if r.pidns > 0 {
			// The proc of the context's PID namespace, not of the
			// thread's (which stays nsh's): the path is resolved from
			// the working directory, nsh's /proc.
			data = strings.TrimPrefix(data+",pidns="+fdPath(r.pidns), ",")
		}
		if err := unix.Mount(r.source, tpath, r.fstype, r.opts.Flags, data); err != nil {
			if r.pidns > 0 && errors.Is(err, unix.EINVAL) {
				return fail(nserr.Errorf("mount", obj, err, `this kernel cannot mount the proc of another PID namespace (proc's pidns= option needs Linux 6.17 or later); clone(..., "pid", mount_proc=True) mounts one from inside`))
			}
			return fail(explainMount(obj, r, err))
		}
	}
	// The new mount: its root is now what the target path leads to.
	// If the path changed under us, the mount is taken off again by the
	// name the kernel gives the directory it is on.
	dropByName := func(err error) (mountResult, error) {
		p, rerr := os.Readlink(tpath)
		if rerr == nil {
			rerr = unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		}
		if rerr != nil {
			err = errors.Join(err, nserr.New("umount", "the mount just made on "+strconv.Quote(r.target), rerr))
		}
		return fail(err)
	}
	nfd, err := inroot.Open(rootfd, r.target)
	if err != nil {
		return dropByName(nserr.New("open", "new mount "+r.target, err))
	}
	defer unix.Close(nfd)
	npath := fdPath(nfd)
	undo := func(err error) (mountResult, error) {
		if uerr := unix.Unmount(npath, unix.MNT_DETACH); uerr != nil {
			err = errors.Join(err, nserr.New("umount", "the mount just made on "+strconv.Quote(r.target), uerr))
		}
		return fail(err)
	}
	newID, _, err := mountID(nfd)
	if err != nil {
		return undo(err)
	}
	if newID == underID {
		return dropByName(fmt.Errorf("mount %s: the target moved while mounting", obj))
	}
	if r.bind {
		if err := bindFlags(nfd, npath, r); err != nil {
			return undo(nserr.New("mount", "-o remount,bind,"+strings.Join(r.opts.Names, ",")+" "+strconv.Quote(r.target), err))
		}
	}
	if r.propagation != 0 {
		if err := unix.Mount("none", npath, "", r.propagation|recFlag(r.recursive), ""); err != nil {
			return undo(nserr.New("mount", "--make-"+r.propName+" "+strconv.Quote(r.target), err))
		}
	}
	es, err := readMounts(proc)
	if err != nil {
		return undo(err)
	}
	e, ok := findMount(es, newID)
	if !ok {
		return undo(fmt.Errorf("mount %s: the new mount is not in mountinfo", obj))
	}
	res.entry = e
	return res, nil
}

// finish reports the entry of the mount at tfd after an in-place change.
func finish(proc int, res mountResult, id, tfd int) (mountResult, error) {
	es, err := readMounts(proc)
	if err != nil {
		return res, err
	}
	res.entry, _ = findMount(es, id)
	return res, nil
}

func recFlag(rec bool) uintptr {
	if rec {
		return unix.MS_REC
	}
	return 0
}

// bindFlags applies the flags of a bind (ro, nosuid, ...) in the second
// step the kernel needs: a bind remount of the new mount, keeping the
// flags it already has (the kernel refuses to drop locked ones). A
// recursive bind gets them on every mount below too, via mount_setattr.
func bindFlags(nfd int, npath string, r *mountReq) error {
	want := r.opts.Flags &^ unix.MS_REMOUNT
	if want == 0 {
		return nil
	}
	if r.recursive {
		var a unix.MountAttr
		for ms, attr := range map[uintptr]uint64{
			unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
			unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
			unix.MS_NODIRATIME: unix.MOUNT_ATTR_NODIRATIME, unix.MS_NOSYMFOLLOW: unix.MOUNT_ATTR_NOSYMFOLLOW,
		} {
			if want&ms != 0 {
				a.Attr_set |= attr
			}
		}
		switch {
		case want&unix.MS_NOATIME != 0:
			a.Attr_set |= unix.MOUNT_ATTR_NOATIME
			a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		case want&unix.MS_STRICTATIME != 0:
			a.Attr_set |= unix.MOUNT_ATTR_STRICTATIME
			a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		case want&unix.MS_RELATIME != 0:
			a.Attr_set |= unix.MOUNT_ATTR_RELATIME
			a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		}
		return unix.MountSetattr(nfd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &a)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(nfd, &sfs); err != nil {
		return err
	}
	var have uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
		unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME,
		unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if sfs.Flags&st != 0 {
			have |= ms
		}
	}
	have &^= r.opts.Clear
	return unix.Mount("", npath, "", unix.MS_REMOUNT|unix.MS_BIND|have|want, "")
}

// explain turns a refused mount into an error that shows the call and,
// for EINVAL on a filesystem, asks the kernel which option it objects to.
func explainMount(obj string, r *mountReq, err error) error {
	switch {
	case errors.Is(err, unix.EPERM) && nserr.InUserNS() && (r.fstype == "proc" || r.fstype == "sysfs" || r.fstype == "mqueue" || r.fstype == "cgroup2"):
		return nserr.Errorf("mount", obj, err, `in a user namespace (rootless) %s shows the context's %s namespace, which must be one nsh created (unshare(%q) first), and the kernel mounts it only where a full %s is already visible (before pivot_root)`,
			r.fstype, pseudoNS[r.fstype], pseudoNS[r.fstype], r.fstype)
	case errors.Is(err, unix.EINVAL) && r.fstype != "":
		if why := diagnose(r.fstype, r.source, r.opts.Data); why != "" {
			return nserr.Errorf("mount", obj, err, "%s", why)
		}
		return nserr.Errorf("mount", obj, err, "the kernel refused type %s with flags [%s] and options [%s]",
			r.fstype, strings.Join(r.opts.Names, ","), r.opts.DataString())
	case errors.Is(err, unix.EINVAL) && r.bind:
		return nserr.Errorf("mount", obj, err, "the kernel refused the bind; is the source in another mount namespace, or on an unbindable mount?")
	case errors.Is(err, unix.ENOENT) && r.fstype != "":
		if why := diagnose(r.fstype, r.source, r.opts.Data); why != "" {
			return nserr.Errorf("mount", obj, err, "%s", why)
		}
		return nserr.Errorf("mount", obj, err, "a path in the source or options does not exist")
	case errors.Is(err, unix.ENOTDIR) && r.bind:
		return nserr.Errorf("mount", obj, err, "a directory and a file cannot be bound onto each other")
	}
	return nserr.New("mount", obj, err)
}

// pseudoNS names the namespace kind each pseudo filesystem shows.
var pseudoNS = map[string]string{"proc": "pid", "sysfs": "net", "mqueue": "ipc", "cgroup2": "cgroup"}

// diagnose replays a refused mount through the new mount API (fsopen,
// fsconfig), which names the offending option and lets the filesystem say
// why; it mounts nothing. It returns "" when it learns nothing.
func diagnose(fstype, source string, data []string) string {
	fd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	if source != "" && source != fstype {
		if err := unix.FsconfigSetString(fd, "source", source); err != nil {
			return fmt.Sprintf("source %q: %s", source, fsLog(fd, err))
		}
	}
	for _, d := range data {
		k, v, hasValue := strings.Cut(d, "=")
		var err error
		if hasValue {
			err = unix.FsconfigSetString(fd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fd, k)
		}
		if err != nil {
			return fmt.Sprintf("option %q: %s", d, fsLog(fd, err))
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fsLog(fd, err)
	}
	return ""
}

// fsLog reads the messages a filesystem context logged ("e tmpfs: Bad
// value for 'size'") and returns the errors among them.
func fsLog(fd int, err error) string {
	var msgs []string
	buf := make([]byte, 4096)
	for i := 0; i < 16; i++ {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		m := string(buf[:n])
		if t, ok := strings.CutPrefix(m, "e "); ok {
			msgs = append(msgs, strings.TrimSpace(t))
		}
	}
	if len(msgs) == 0 {
		return nserr.Words(err)
	}
	return strings.Join(msgs, "; ")
}

// undoMount unmounts a mount this run made, if the path it was made on
// still leads to it (same mount id, resolved without leaving the root),
// and removes the directories mkdir=True made for it. It returns the
// directories it could not find.
func undoMount(proc, id int, target string, created []madeDir) ([]madeDir, error) {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, nserr.New("unshare", "CLONE_FS", err)
	}
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("open", "/", err)
	}
	defer unix.Close(rootfd)
	if fd, err := inroot.Open(rootfd, target); err == nil {
		defer unix.Close(fd)
		got, isRoot, err := mountID(fd)
		if err == nil && got == id && isRoot {
			if err := unix.Fchdir(proc); err != nil {
				return nil, nserr.New("chdir", "/proc", err)
			}
			// Lazily: the descriptor itself holds the mount.
			if err := unix.Unmount(fdPath(fd), unix.MNT_DETACH); err != nil {
				return nil, nserr.New("umount", strconv.Quote(target), err)
			}
		}
	}
	return removeDirs(created), nil
}

func umountBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target string
	var detach, recursive bool
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "target", &target, "detach?", &detach, "recursive?", &recursive); err != nil {
		return nil, err
	}
	if target == "" {
		return nil, fmt.Errorf("missing target")
	}
	if err := checkNoNUL("target", target); err != nil {
		return nil, err
	}
	target, err := filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	proc, err := openProc()
	if err != nil {
		return nil, err
	}
	defer unix.Close(proc)
	var gone []int
	cur := st.current()
	err = nsthread.Do(st.tab.Joins(cur), func() error {
		var err error
		gone, err = doUmount(proc, target, detach, recursive)
		return err
	})
	if !nsctx.Same(cur.Get("mnt"), st.tab.Initial.Get("mnt")) {
		gone = nil // only mounts in the initial namespace are registered
	}
	reg, unlock := st.mntRegistry()
	for _, id := range gone {
		if e := reg.entries[id]; e != nil {
			// Unmounted by hand: nothing to unmount at the end (the id
			// may be reused), but the directories made for it still go.
			e.Forget()
			if dirs := reg.dirs[id]; len(dirs) > 0 {
				st.reg.Add("directories made for mount on "+target, func() error {
					return nsthread.Do(nil, func() error { removeDirs(dirs); return nil })
				})
			}
			delete(reg.entries, id)
			delete(reg.dirs, id)
		}
	}
	unlock()
	if err != nil {
		return nil, err
	}
	return starlark.None, nil
}

// doUmount unmounts target (and, when recursive, what is below it first)
// and returns the ids of the mounts that went away.
func doUmount(proc int, target string, detach, recursive bool) ([]int, error) {
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("open", "/", err)
	}
	fd, err := inroot.Open(rootfd, target)
	unix.Close(rootfd)
	if err != nil {
		return nil, nserr.New("umount", strconv.Quote(target), err)
	}
	id, isRoot, err := mountID(fd)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	if !isRoot {
		return nil, nserr.New("umount", strconv.Quote(target), unix.EINVAL)
	}
	es, err := readMounts(proc)
	if err != nil {
		return nil, err
	}
	self, ok := findMount(es, id)
	if !ok {
		return nil, fmt.Errorf("umount %q: mount %d is not in mountinfo", target, id)
	}
	// The subtree below the mount, children after their parents.
	tree := []mountinfo.Entry{self}
	for i := 0; i < len(tree); i++ {
		for _, e := range es {
			if e.Parent == tree[i].ID && e.ID != tree[i].ID {
				tree = append(tree, e)
			}
		}
	}
	var gone []int
	if detach {
		if err := unix.Unmount(self.Target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			return nil, nserr.New("umount", strconv.Quote(target), err)
		}
		for _, e := range tree {
			gone = append(gone, e.ID)
		}
		return gone, nil
	}
	if !recursive {
		tree = tree[:1]
	}
	for i := len(tree) - 1; i >= 0; i-- {
		if err := unix.Unmount(tree[i].Target, unix.UMOUNT_NOFOLLOW); err != nil {
			if errors.Is(err, unix.EBUSY) && len(tree) == 1 && hasChildren(es, id) {
				return gone, nserr.Errorf("umount", strconv.Quote(target), err, "mounts below it: pass recursive=True, or detach=True")
			}
			return gone, nserr.New("umount", strconv.Quote(tree[i].Target), err)
		}
		gone = append(gone, tree[i].ID)
	}
	return gone, nil
}

func hasChildren(es []mountinfo.Entry, id int) bool {
	for _, e := range es {
		if e.Parent == id && e.ID != id {
			return true
		}
	}
	return false
}

func mountsBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "ns?", &target); err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	ctx, err := st.contextOf(target)
	if err != nil {
		return nil, err
	}
	mnt := ctx.Get("mnt")
	proc, err := openProc()
	if err != nil {
		return nil, err
	}
	defer unix.Close(proc)
	var es []mountinfo.Entry
	err = nsthread.Do(st.tab.Joins(st.tab.Initial.With(mnt)), func() error {
		var err error
		es, err = readMounts(proc)
		return err
	})
	if err != nil {
		return nil, err
	}
	reg, unlock := st.mntRegistry()
	out := make([]starlark.Value, len(es))
	host := nsctx.Same(mnt, st.tab.Initial.Get("mnt"))
	for i, e := range es {
		m := &Mount{e: e, ns: mnt, st: st}
		if host {
			if le := reg.entries[e.ID]; le != nil {
				m.made, m.entry = true, le
			}
		}
		out[i] = m
	}
	unlock()
	return starlark.NewList(out), nil
}

func pivotRootBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var newRoot string
	var putOld starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "new_root", &newRoot, "put_old?", &putOld); err != nil {
		return nil, err
	}
	if newRoot == "" {
		return nil, fmt.Errorf("missing new_root")
	}
	if err := checkNoNUL("new_root", newRoot); err != nil {
		return nil, err
	}
	old := ""
	if putOld != starlark.None {
		s, ok := starlark.AsString(putOld)
		if !ok || s == "" {
			return nil, fmt.Errorf("put_old must be a non-empty path under new_root")
		}
		if err := checkNoNUL("put_old", s); err != nil {
			return nil, err
		}
		old = s
	}
	newRoot, err := filepath.Abs(newRoot)
	if err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	cur := st.current()
	if nsctx.Same(cur.Get("mnt"), st.tab.Initial.Get("mnt")) {
		return nil, fmt.Errorf("pivot_root needs a mount namespace of its own: call unshare(\"mnt\") first (this would change the root of the mount namespace nsh started in)")
	}
	if pid := strangerIn(cur.Get("mnt")); pid != 0 {
		return nil, fmt.Errorf("pivot_root: process %d, not started by nsh, lives in %s; pivot_root would change its root too (use a mount namespace of the run's own: unshare(\"mnt\"))", pid, cur.Get("mnt"))
	}
	err = nsthread.Do(st.tab.Joins(cur), func() error { return doPivotRoot(newRoot, old) })
	if err != nil {
		return nil, err
	}
	return starlark.None, nil
}

// strangerIn returns the pid of a process in mount namespace ns that is
// neither nsh nor one of its descendants, or 0. pivot_root(2) moves every
// process whose root is the namespace's old root, so nsh pivots only
// namespaces nobody else lives in. Processes it may not inspect are
// skipped.
func strangerIn(ns *nsctx.NS) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	want := ns.String()
	self := os.Getpid()
	parent := map[int]int{}
	var in []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		link, err := os.Readlink("/proc/" + e.Name() + "/ns/mnt")
		if err != nil || link != want {
			continue
		}
		in = append(in, pid)
	}
	ppid := func(pid int) int {
		if p, ok := parent[pid]; ok {
			return p
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		p := 0
		if err == nil {
			if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
				if f := strings.Fields(string(b[i+1:])); len(f) > 1 {
					p, _ = strconv.Atoi(f[1])
				}
			}
		}
		parent[pid] = p
		return p
	}
	for _, pid := range in {
		ours := false
		for q := ppid(pid); q > 1; q = ppid(q) {
			if q == self {
				ours = true
				break
			}
		}
		if !ours {
			return pid
		}
	}
	return 0
}

func doPivotRoot(newRoot, putOld string) error {
	obj := strconv.Quote(newRoot)
	fd, err := unix.Open(newRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nserr.Errorf("pivot_root", obj, err, "new_root must be an existing directory")
	}
	defer unix.Close(fd)
	if _, isRoot, err := mountID(fd); err != nil {
		return err
	} else if !isRoot {
		// pivot_root(2) wants a mount point: make new_root one.
		if err := unix.Mount(newRoot, newRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return nserr.New("mount", "--rbind "+obj+" "+obj, err)
		}
		nfd, err := unix.Open(newRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nserr.New("open", obj, err)
		}
		defer unix.Close(nfd)
		fd = nfd
	}
	if err := unix.Fchdir(fd); err != nil {
		return nserr.New("chdir", obj, err)
	}
	hint := "the new root's parent mount and the current root must not be shared: unshare(\"mnt\") makes them private, or mount(target=\"/\", propagation=\"private\", recursive=True)"
	if putOld != "" {
		ofd, _, err := inroot.Create(unix.AT_FDCWD, putOld, false)
		var ce *inroot.CreateError
		if errors.As(err, &ce) {
			return mkdirError(filepath.Join(newRoot, ce.Path), "put_old "+strconv.Quote(putOld), ce)
		} else if err != nil {
			return nserr.New("open", "put_old "+strconv.Quote(putOld), err)
		}
		unix.Close(ofd)
		if err := unix.PivotRoot(".", inroot.Rel(putOld)); err != nil {
			return nserr.Errorf("pivot_root", obj+" "+strconv.Quote(putOld), err, "%s", hint)
		}
		return unix.Chdir("/")
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// the top of "." then drops the old root (runc's trick, no put_old dir).
	if err := unix.PivotRoot(".", "."); err != nil {
		return nserr.Errorf("pivot_root", obj, err, "%s", hint)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return nserr.New("mount", "--make-rslave (old root)", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return nserr.New("umount", "-l (old root)", err)
	}
	return unix.Chdir("/")
}

// mkdirError reports what mkdir=True (or pivot_root's put_old) could not
// create: the operation is the mkdir, not the mount, and the object the
// directory (path, absolute), made for what (`target "/mnt/x"`).
func mkdirError(path, forWhat string, ce *inroot.CreateError) error {
	obj := fmt.Sprintf("%q (for %s)", path, forWhat)
	var errno unix.Errno
	if errors.As(ce.Err, &errno) && (errno == unix.EACCES || errno == unix.EPERM) {
		hint := "the parent directory (its filesystem or its permissions) refuses new entries"
		if nserr.InUserNS() {
			hint = "nsh runs rootless: the host owns the parent directory, so only real root can create in it"
		}
		return nserr.Errorf(ce.Op, obj, errno, "%s; create the directory beforehand, or mount on a directory you may write to", hint)
	}
	return nserr.New(ce.Op, obj, ce.Err)
}
