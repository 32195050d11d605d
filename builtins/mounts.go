package builtins

import (
	"fmt"
	"path/filepath"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/mount"
	"nsh.dev/nsh/internal/mountinfo"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
)

func mountTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "mount", Sig: `mount(source=None, target=None, fstype="", options="", bind=False, recursive=False, readonly=False, propagation=None, mkdir=False, root=None, persist=False)`,
				Impl: mountBuiltin, Doc: `Mounts in the current context's mount namespace; returns the new nsh.mount.
target is required; source may be left out (see below).
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
			{Name: "umount", Sig: "umount(target, detach=False, recursive=False, missing_ok=False)", Impl: umountBuiltin, Doc: `Unmounts target in the current context's mount namespace.
recursive=True unmounts the mounts below target first; detach=True is a
lazy unmount (MNT_DETACH) that also takes everything below. A busy mount or
a path that is not a mount point is an error; with missing_ok=True a target
that does not exist or is not a mount point is left as it is, silently.
Example: umount("/mnt/lab", recursive=True, missing_ok=True)`},
			{Name: "mkdir", Sig: "mkdir(path, mode=0o755, parents=False, exist_ok=False, persist=False)", Impl: mkdirBuiltin, Doc: mkdirDoc},
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
	if m.entry != nil && m.st.lab == nil { // a lab keeps it until nsh down anyway
		m.entry.Persist()
	}
	return m, nil
}

// parseMount unpacks and validates mount()'s arguments and returns the
// checked request and persist=; it makes no syscall besides reading
// /proc/filesystems.
func parseMount(fname string, args starlark.Tuple, kwargs []starlark.Tuple) (*mount.Request, bool, error) {
	var source, target, propagation, root starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
	r := &mount.Request{}
	var persist bool
	if err := starlark.UnpackArgs(fname, args, kwargs,
		"source?", &source, "target?", &target, "fstype?", &r.FSType, "options?", &r.Options,
		"bind?", &r.Bind, "recursive?", &r.Recursive, "readonly?", &r.Readonly,
		"propagation?", &propagation, "mkdir?", &r.Mkdir, "root?", &root, "persist?", &persist); err != nil {
		return nil, false, err
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
	if r.Source, err = str("source", source); err != nil {
		return nil, false, err
	}
	if r.Target, err = str("target", target); err != nil {
		return nil, false, err
	}
	if r.Root, err = str("root", root); err != nil {
		return nil, false, err
	}
	if r.Propagation, err = str("propagation", propagation); err != nil {
		return nil, false, err
	}
	if err := checkNoNUL("fstype", r.FSType); err != nil {
		return nil, false, err
	}
	if err := checkNoNUL("options", r.Options); err != nil {
		return nil, false, err
	}
	if err := r.Check(); err != nil {
		return nil, false, err
	}
	return r, persist, nil
}

// mountRegistry maps the ids of the mounts this run made in the initial
// mount namespace to their lifecycle entries and records, so umount() can
// drop them.
type mountRegistry struct {
	entries map[int]*lifecycle.Entry
	recs    map[int]*mountMade
}

// mountMade is a mount the run made in the initial mount namespace: its
// record, and what mkdir=True made for it.
type mountMade struct {
	rec     *change.Mount
	created []mount.Made
}

func mountsOf(st *state) *mountRegistry {
	return st.reg.Shared("nsh.builtins.mounts", func() any {
		return &mountRegistry{entries: map[int]*lifecycle.Entry{}, recs: map[int]*mountMade{}}
	}).(*mountRegistry)
}

func (st *state) mntRegistry() (*mountRegistry, func()) {
	st.mu.Lock()
	return mountsOf(st), st.mu.Unlock
}

// mountNS names mnt in commands: the zero value when it is nsh's own.
func (st *state) mountNS(mnt *nsctx.NS) change.MountNS {
	if nsctx.Same(mnt, st.tab.Initial.Get("mnt")) {
		return change.MountNS{}
	}
	return change.MountNS{Path: change.FdPath(mnt.Fd()), Label: st.nsName(mnt)}
}

func mountBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, persist, err := parseMount(fn.Name(), args, kwargs)
	if err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	persist = persist && st.lab == nil // a lab keeps it until nsh down anyway
	cur := st.current()
	mnt := cur.Get("mnt")
	host := nsctx.Same(mnt, st.tab.Initial.Get("mnt"))
	if r.ProcWithoutPidNS() && !nsctx.Same(cur.Get("pid"), st.tab.Initial.Get("pid")) {
		r.PidNS = cur.Get("pid").Fd()
	}
	rec := &change.Mount{NS: st.mountNS(mnt), Vanishes: !host}
	rec.Args, rec.Source, rec.Target = r.Args()
	made := &mountMade{rec: rec}
	var res mount.Result
	if host {
		// Written ahead: what the mount is about to make, before each
		// step (the directories, the file, the mount itself).
		r.Ahead = func(a mount.Ahead) { rec.Intend(aheadOps(mnt, a)...) }
	} else if r.Mkdir {
		// The mount dies with its namespace; what mkdir=True makes for
		// it may not (see sharedDirOps): written ahead where nsh
		// started, if the directory it is made in is the same there.
		var shared *bool
		r.Ahead = func(a mount.Ahead) {
			if len(a.Dirs) == 0 && a.File == "" {
				return
			}
			if shared == nil {
				first := a.File
				if len(a.Dirs) > 0 {
					first = a.Dirs[0]
				}
				same := sameWhereStarted(filepath.Dir(first))
				shared = &same
			}
			if *shared {
				rec.Intend(aheadOps(nil, mount.Ahead{Dirs: a.Dirs, File: a.File, FileIno: a.FileIno})...)
			}
		}
	}
	rec.Apply = func() error {
		proc, err := mount.OpenProc()
		if err != nil {
			return err
		}
		defer unix.Close(proc)
		err = nsthread.Do(st.tab.Joins(cur), func() error {
			var err error
			if res, err = r.Apply(proc); err != nil {
				return err
			}
			for _, d := range res.Created {
				rec.Dirs = append(rec.Dirs, d.Path)
			}
			if n := len(res.Created); n > 0 {
				// A file bind's target is an empty file.
				var sb unix.Stat_t
				if unix.Lstat(res.Created[n-1].Path, &sb) == nil && sb.Mode&unix.S_IFMT != unix.S_IFDIR {
					rec.File = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		made.created = res.Created
		if !host && len(res.Created) > 0 {
			// Checked by inode now that they are made (r.Ahead gave
			// them by path, before each mkdir).
			rec.Intend(sharedDirOps(res.Created, rec.File)...)
		}
		rec.What = fmt.Sprintf("directories made for mount on %s", res.Entry.Target)
		switch {
		case host && r.NewMount() && persist:
			rec.Undo, rec.Kept = nil, true
		case host && r.NewMount():
			rec.What = fmt.Sprintf("mount %s on %s", res.Entry.FSType, res.Entry.Target)
		case !host && len(res.Created) > 0:
			// The mount dies with its namespace, but the directories
			// made for it may be on a filesystem the host shares:
			// remove them.
		default:
			rec.Undo = nil
		}
		return nil
	}
	rec.Undo = func() (bool, error) {
		if made.rec.IsUnmounted() { // by umount(): only created is undone
			return true, nsthread.Do(nil, func() error { mount.RemoveDirs(made.created); return nil })
		}
		proc, err := mount.OpenProc()
		if err != nil {
			return false, err
		}
		defer unix.Close(proc)
		id, target, created := res.Entry.ID, res.Entry.Target, res.Created
		var left []mount.Made
		err = nsthread.Do(st.tab.Joins(st.tab.Initial.With(mnt)), func() error {
			var err error
			left, err = mount.Undo(proc, id, target, created)
			return err
		})
		if len(left) > 0 && !host {
			// After pivot_root the directories are out of the
			// namespace's reach; where nsh started, the same path
			// usually names them (checked by inode).
			nsthread.Do(nil, func() error { mount.RemoveDirs(left); return nil })
		}
		return true, err
	}
	rec.Reap = func() []reaper.Op {
		if !host {
			return sharedDirOps(res.Created, rec.File)
		}
		ops := []reaper.Op{reaper.Umount(mnt, res.Entry.Target, uint64(res.Entry.ID))}
		return append(ops, rmdirOps(mnt, res.Created, rec.File)...)
	}
	e, err := st.ex.Do(th, rec)
	if err != nil {
		return nil, err
	}
	m := &Mount{e: res.Entry, ns: mnt, st: st, made: r.NewMount()}
	if host && e != nil {
		m.entry = e
		reg, unlock := st.mntRegistry()
		reg.entries[res.Entry.ID] = e
		reg.recs[res.Entry.ID] = made
		unlock()
	}
	return m, nil
}

// rmdirOps are the reaper's ops that remove what mkdir=True made, newest
// first: the file a file bind's target is (when file), by its inode, and
// the directories if empty.
func rmdirOps(mnt *nsctx.NS, created []mount.Made, file bool) []reaper.Op {
	var ops []reaper.Op
	for i := len(created) - 1; i >= 0; i-- {
		if file && i == len(created)-1 {
			ops = append(ops, reaper.Unlink(mnt, created[i].Path, created[i].Ino))
			continue
		}
		ops = append(ops, reaper.Rmdir(mnt, created[i].Path))
	}
	return ops
}

// sharedDirOps are the reaper's ops that remove, where nsh started, what
// mkdir=True made for a mount in another mount namespace: the mount dies
// with its namespace, but the directories may be on a filesystem nsh's
// own namespace shares, where they would outlive a SIGKILL of nsh. Only
// the paths that name there the very directory (or file) made get an op.
func sharedDirOps(created []mount.Made, file bool) []reaper.Op {
	var same []mount.Made
	nsthread.Do(nil, func() error {
		for _, m := range created {
			var sb unix.Stat_t
			if unix.Lstat(m.Path, &sb) == nil && sb.Dev == m.Dev && sb.Ino == m.Ino {
				same = append(same, m)
			}
		}
		return nil
	})
	if len(same) == 0 {
		return nil
	}
	return rmdirOps(nil, same, file && same[len(same)-1] == created[len(created)-1])
}

// sameWhereStarted reports whether dir, as this thread sees it, is the
// very directory the path names in nsh's initial mount namespace.
func sameWhereStarted(dir string) bool {
	var here, there unix.Stat_t
	if unix.Stat(dir, &here) != nil {
		return false
	}
	err := nsthread.Do(nil, func() error { return unix.Stat(dir, &there) })
	return err == nil && here.Dev == there.Dev && here.Ino == there.Ino
}

// aheadOps are the reaper's ops that undo what a mount is about to make
// (see mount.Ahead): the new mount, unless the one there before is still
// there; the file, by its inode; the directories, if empty.
func aheadOps(mnt *nsctx.NS, a mount.Ahead) []reaper.Op {
	var ops []reaper.Op
	if a.Target != "" {
		ops = append(ops, reaper.UmountNew(mnt, a.Target, a.Under))
	}
	if a.File != "" {
		ops = append(ops, reaper.Unlink(mnt, a.File, a.FileIno))
	}
	for i := len(a.Dirs) - 1; i >= 0; i-- {
		ops = append(ops, reaper.Rmdir(mnt, a.Dirs[i]))
	}
	return ops
}

func umountBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target string
	var detach, recursive, missingOK bool
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "target", &target, "detach?", &detach, "recursive?", &recursive, "missing_ok?", &missingOK); err != nil {
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
	var gone []int
	cur := st.current()
	mnt := cur.Get("mnt")
	if missingOK {
		// Nothing to unmount is no change: nothing is traced or done.
		var mounted bool
		err := nsthread.Do(st.tab.Joins(cur), func() error {
			var err error
			mounted, err = mount.Mounted(target)
			return err
		})
		if err != nil {
			return nil, err
		}
		if !mounted {
			return starlark.None, nil
		}
	}
	rec := &change.Umount{NS: st.mountNS(mnt), Target: target, Detach: detach, Recursive: recursive}
	rec.What = "umount " + target
	rec.Apply = func() error {
		proc, err := mount.OpenProc()
		if err != nil {
			return err
		}
		defer unix.Close(proc)
		return nsthread.Do(st.tab.Joins(cur), func() error {
			var err error
			gone, err = mount.Umount(proc, target, detach, recursive)
			return err
		})
	}
	_, err = st.ex.Do(th, rec)
	if !nsctx.Same(mnt, st.tab.Initial.Get("mnt")) {
		gone = nil // only mounts in the initial namespace are registered
	}
	type dropped struct {
		e    *lifecycle.Entry
		made *mountMade
	}
	var drop []dropped
	reg, unlock := st.mntRegistry()
	for _, id := range gone {
		if e := reg.entries[id]; e != nil {
			drop = append(drop, dropped{e, reg.recs[id]})
			delete(reg.entries, id)
			delete(reg.recs, id)
		}
	}
	unlock()
	for _, d := range drop {
		// Unmounted by hand: nothing to unmount at the end (the id may
		// be reused), but the directories made for it still go.
		if len(d.made.created) == 0 {
			d.e.Forget()
			continue
		}
		d.made.rec.Unmounted()
		st.ex.Watch(d.e, rmdirOps(mnt, d.made.created, d.made.rec.File)...)
	}
	if err != nil {
		return nil, err
	}
	return starlark.None, nil
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
	proc, err := mount.OpenProc()
	if err != nil {
		return nil, err
	}
	defer unix.Close(proc)
	var es []mountinfo.Entry
	err = nsthread.Do(st.tab.Joins(st.tab.Initial.With(mnt)), func() error {
		var err error
		es, err = mount.ReadMounts(proc)
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
	if pid := mount.StrangerIn(cur.Get("mnt")); pid != 0 {
		return nil, fmt.Errorf("pivot_root: process %d, not started by nsh, lives in %s; pivot_root would change its root too (use a mount namespace of the run's own: unshare(\"mnt\"))", pid, cur.Get("mnt"))
	}
	rec := &change.PivotRoot{NS: st.mountNS(cur.Get("mnt")), NewRoot: newRoot, PutOld: old}
	rec.What = fmt.Sprintf("pivot_root %q", newRoot)
	rec.Apply = func() error {
		return nsthread.Do(st.tab.Joins(cur), func() (err error) {
			rec.Bound, err = mount.PivotRoot(newRoot, old)
			return err
		})
	}
	if _, err := st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	return starlark.None, nil
}
