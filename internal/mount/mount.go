// Package mount makes, changes and removes mounts for nsh's mount(),
// umount() and pivot_root() builtins: it checks a request before any
// syscall, resolves targets inside a root with openat2(RESOLVE_IN_ROOT) and
// mounts through the descriptor, creates missing targets (mkdir=True) and
// remembers what it created, and explains refusals in words (a mount(8)
// command line, the errno, what the filesystem objected to). Its functions
// run on a thread that has joined the context's mount namespace; proc is
// nsh's own /proc (OpenProc), the working directory they use for
// descriptor paths. Undo registration stays with the caller.
package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/inroot"
	"nsh.dev/nsh/internal/mountinfo"
	"nsh.dev/nsh/internal/nserr"
)

// OpenProc opens nsh's own /proc, which stays usable on a thread that moved
// into a mount namespace without one (after pivot_root, say): thread-self
// relative to it is always the calling thread.
func OpenProc() (int, error) {
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

// ReadMounts reads the mount table of the calling thread's namespace.
func ReadMounts(proc int) ([]mountinfo.Entry, error) {
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

// Result is what Apply did: the mountinfo entry of the mount it made or
// changed, and what mkdir=True created for it (oldest first).
type Result struct {
	Entry   mountinfo.Entry
	Created []Made
}

// Ahead is what Request.Apply is about to make, given to Request.Ahead
// before each step: all of it so far, so a SIGKILL at any instant leaves
// nothing a reaper told of it does not undo.
type Ahead struct {
	// Dirs are the absolute paths of the directories mkdir=True makes,
	// in the order they are made (the last maybe not made yet).
	Dirs []string
	// File is the empty file made as a file bind's target, and FileIno
	// its inode number (given before it has its name).
	File    string
	FileIno uint64
	// Target is the target's real path, once resolved, and Under the
	// ID (statx STATX_MNT_ID) of the mount it is on before the new one.
	Target string
	Under  uint64
}

// Made is a directory (or file) mkdir=True created: its absolute path
// in the namespace, and its inode, so that cleanup removes that very one.
type Made struct {
	Path     string
	Dev, Ino uint64
}

// RemoveDirs removes what mkdir=True made, newest first, skipping paths
// that now name something else, and returns what it could not reach.
func RemoveDirs(ds []Made) (left []Made) {
	for i := len(ds) - 1; i >= 0; i-- {
		var st unix.Stat_t
		if err := unix.Lstat(ds[i].Path, &st); err != nil || st.Dev != ds[i].Dev || st.Ino != ds[i].Ino {
			left = append([]Made{ds[i]}, left...)
			continue
		}
		if unix.Rmdir(ds[i].Path) != nil {
			unix.Unlink(ds[i].Path)
		}
	}
	return left
}

// Apply makes the mount r asks for, or changes one in place. It runs on a
// thread that joined the context. It resolves the target inside the root,
// mounts on the descriptor, and reports the new mount's mountinfo entry;
// on failure nothing stays mounted or created.
func (r *Request) Apply(proc int) (res Result, err error) {
	// Private fs attributes: the thread changes its working directory.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return res, nserr.New("unshare", "CLONE_FS", err)
	}
	obj := r.Describe()
	rootfd, err := unix.Open(r.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return res, nserr.Errorf("mount", obj, err, "root %s is not a directory in this mount namespace", r.Root)
	}
	defer unix.Close(rootfd)

	srcPath, srcIsDir := r.Source, true
	if r.bindNew() {
		sfd, err := unix.Open(r.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return res, nserr.Errorf("mount", obj, err, "the bind source %s does not exist", r.Source)
		} else if err != nil {
			return res, nserr.New("mount", obj, err)
		}
		defer unix.Close(sfd)
		var sst unix.Stat_t
		if err := unix.Fstat(sfd, &sst); err != nil {
			return res, nserr.New("fstat", r.Source, err)
		}
		srcIsDir = sst.Mode&unix.S_IFMT == unix.S_IFDIR
		id, _, err := mountID(sfd)
		if err != nil {
			return res, err
		}
		es, err := ReadMounts(proc)
		if err != nil {
			return res, err
		}
		if e, ok := findMount(es, id); ok && e.Unbindable {
			return res, nserr.Errorf("mount", obj, unix.EINVAL, "the source is on %s, an unbindable mount: it cannot be bound anywhere", e.Target)
		}
		srcPath = fdPath(sfd)
	}

	if err := pseudoOnLink(rootfd, r, obj); err != nil {
		return res, err
	}
	var tfd int
	var ahead Ahead
	if r.Mkdir {
		var created []string
		var before func(string, uint64)
		if r.Ahead != nil {
			before = func(rel string, ino uint64) {
				if p := filepath.Join(r.Root, rel); ino != 0 {
					ahead.File, ahead.FileIno = p, ino
				} else {
					ahead.Dirs = append(ahead.Dirs, p)
				}
				r.Ahead(ahead)
			}
		}
		tfd, created, err = inroot.Create(rootfd, r.Target, r.bindNew() && !srcIsDir, before)
		for _, c := range created {
			var st unix.Stat_t
			if err := unix.Fstatat(rootfd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
				res.Created = append(res.Created, Made{Path: filepath.Join(r.Root, c), Dev: st.Dev, Ino: st.Ino})
			}
		}
	} else {
		tfd, err = inroot.Open(rootfd, r.Target)
	}
	if err != nil {
		var ce *inroot.CreateError
		if errors.As(err, &ce) {
			return res, mkdirError(filepath.Join(r.Root, ce.Path), "target "+strconv.Quote(r.Target), ce)
		}
		if errors.Is(err, unix.ENOENT) && !r.Mkdir {
			if r.Root != "/" && r.Root != "" {
				return res, nserr.Errorf("mount", obj, err, "the target does not exist in the root %s, where symlinks on its path are resolved as if it were /; mkdir=True creates it", r.Root)
			}
			return res, nserr.Errorf("mount", obj, err, "the target does not exist; mkdir=True creates it")
		}
		if errors.Is(err, unix.ELOOP) {
			return res, nserr.Errorf("mount", obj, err, "a symlink is in the way of the target; it is not followed")
		}
		return res, nserr.New("mount", obj, err)
	}
	if r.NewMount() {
		// Runs mounting on the same directory at once take turns, so
		// that each finds its own mount after (they stack).
		var unlock func()
		tfd, unlock = lockTarget(rootfd, tfd, r.Target)
		defer unlock()
	}
	defer unix.Close(tfd)
	fail := func(err error) (Result, error) {
		RemoveDirs(res.Created)
		return Result{}, err
	}
	underID, isRoot, err := mountID(tfd)
	if err != nil {
		return fail(err)
	}
	if !r.NewMount() && !isRoot {
		return fail(nserr.Errorf("mount", obj, unix.EINVAL, "%s is not a mount point; bind it onto itself first: mount(%q, %q, bind=True)", r.Target, r.Target, r.Target))
	}
	if err := unix.Fchdir(proc); err != nil {
		return fail(nserr.New("chdir", "/proc", err))
	}
	tpath := fdPath(tfd)
	if r.Ahead != nil && r.NewMount() {
		if ahead.Target, err = os.Readlink(tpath); err != nil {
			return fail(nserr.New("readlink", "the target "+strconv.Quote(r.Target), err))
		}
		ahead.Under = uint64(underID)
		r.Ahead(ahead)
	}
	was := ahead.Target // where the target was before the mount, for movedOr
	if was == "" && r.NewMount() {
		was, _ = os.Readlink(tpath)
	}

	switch {
	case r.propOnly():
		if err := unix.Mount("none", tpath, "", r.propFlag|recFlag(r.Recursive), ""); err != nil {
			return fail(nserr.New("mount", obj, err))
		}
		return finish(proc, res, underID, tfd)
	case r.remount():
		flags := r.opts.Flags
		if r.Bind {
			flags |= unix.MS_BIND
		}
		if err := unix.Mount(r.Source, tpath, r.FSType, flags, r.opts.DataString()); err != nil {
			return fail(explainMount(obj, r, err))
		}
		return finish(proc, res, underID, tfd)
	case r.Bind:
		if err := unix.Mount(srcPath, tpath, "", unix.MS_BIND|recFlag(r.Recursive), ""); err != nil {
			return fail(movedOr(rootfd, tfd, tpath, was, r.Target, obj, explainMount(obj, r, err), err))
		}
	default:
		data := r.opts.DataString()
		if r.PidNS > 0 {
			// The proc of the context's PID namespace, not of the
			// thread's (which stays nsh's): the path is resolved from
			// the working directory, nsh's /proc.
			data = strings.TrimPrefix(data+",pidns="+fdPath(r.PidNS), ",")
		}
		if err := unix.Mount(r.Source, tpath, r.FSType, r.opts.Flags, data); err != nil {
			if r.PidNS > 0 && errors.Is(err, unix.EINVAL) {
				return fail(nserr.Errorf("mount", obj, err, `this kernel cannot mount the proc of another PID namespace (proc's pidns= option needs Linux 6.17 or later); clone(..., "pid", mount_proc=True) mounts one from inside`))
			}
			return fail(movedOr(rootfd, tfd, tpath, was, r.Target, obj, explainMount(obj, r, err), err))
		}
	}
	fault.At("mount.mounted")
	// The new mount: its root is now what the target path leads to, a
	// mount whose parent is the one the target was on. If the path
	// changed under us (a directory on it renamed), the mount is taken off
	// again where the directory it is on now is (dropMoved).
	moved := func() (Result, error) {
		err := nserr.Errorf("mount", obj, unix.ESTALE, "the target moved while mounting (a directory on its path was renamed meanwhile); nothing was mounted")
		if rerr := dropMoved(proc, tpath, underID, r.FSType, r.Bind); rerr != nil {
			err = errors.Join(err, nserr.New("umount", "the mount just made on "+strconv.Quote(r.Target), rerr))
		}
		return fail(err)
	}
	nfd, err := inroot.Open(rootfd, r.Target)
	if err != nil {
		return moved()
	}
	defer unix.Close(nfd)
	npath := fdPath(nfd)
	undo := func(err error) (Result, error) {
		if uerr := unix.Unmount(npath, unix.MNT_DETACH); uerr != nil {
			err = errors.Join(err, nserr.New("umount", "the mount just made on "+strconv.Quote(r.Target), uerr))
		}
		return fail(err)
	}
	newID, _, err := mountID(nfd)
	if err != nil {
		return undo(err)
	}
	if newID == underID {
		return moved()
	}
	if r.Bind || r.propFlag != 0 {
		// Before changing its flags, make sure it is ours (else checked
		// below, with the entry reported).
		if es, err := ReadMounts(proc); err != nil {
			return undo(err)
		} else if e, ok := findMount(es, newID); !ok || e.Parent != underID {
			return moved()
		}
	}
	if r.Bind {
		if err := bindFlags(nfd, npath, r); err != nil {
			return undo(nserr.New("mount", "-o remount,bind,"+strings.Join(r.opts.Names, ",")+" "+strconv.Quote(r.Target), err))
		}
	}
	if r.propFlag != 0 {
		if err := unix.Mount("none", npath, "", r.propFlag|recFlag(r.Recursive), ""); err != nil {
			return undo(nserr.New("mount", "--make-"+r.Propagation+" "+strconv.Quote(r.Target), err))
		}
	}
	es, err := ReadMounts(proc)
	if err != nil {
		return undo(err)
	}
	e, ok := findMount(es, newID)
	if !ok || e.Parent != underID {
		// The path leads to some other mount now.
		return moved()
	}
	res.Entry = e
	return res, nil
}

// lockTarget takes an exclusive flock(2) on the directory that holds the
// target of a new mount (its parent, resolved inside the root), and
// returns the target resolved again once the lock is held, with the
// function that drops the lock (tfd is then closed). Processes of nsh
// mounting on one target, or taking a mount off it (Undo), thus do it one
// at a time: each mounts on the mount the previous one made, and finds its
// own after. A target whose parent cannot be locked, or that no longer
// resolves, is returned as it was, unlocked (the mount's own checks report
// what moved).
func lockTarget(rootfd, tfd int, target string) (int, func()) {
	none := func() {}
	rel := inroot.Rel(target)
	if rel == "." {
		return tfd, none
	}
	pfd, err := inroot.Open(rootfd, filepath.Dir(rel))
	if err != nil {
		return tfd, none
	}
	lfd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	unix.Close(pfd)
	if err != nil {
		return tfd, none
	}
	if err := unix.Flock(lfd, unix.LOCK_EX); err != nil {
		unix.Close(lfd)
		return tfd, none
	}
	unlock := func() { unix.Close(lfd) }
	nfd, err := inroot.Open(rootfd, target)
	if err != nil {
		return tfd, unlock
	}
	unix.Close(tfd)
	return nfd, unlock
}

// dropMoved unmounts the mount just made on the directory tpath (a
// descriptor path) holds, after that directory was renamed: the kernel
// does not cross the new mount through the descriptor, so the mount is
// found at the directory's current name, and taken off only if it is one
// whose parent is under (the mount the directory is on) and of the type
// just mounted, and the directory still has that name after it was opened.
// A renaming that goes on may move it again meanwhile: it tries a while.
func dropMoved(proc int, tpath string, under int, fstype string, bind bool) error {
	var last error = unix.ESTALE
	for i := 0; i < 1000; i++ {
		p, err := os.Readlink(tpath)
		if err != nil {
			return err
		}
		fd, err := openat2(p)
		if err != nil {
			last = err
			continue
		}
		id, isRoot, err := mountID(fd)
		again, _ := os.Readlink(tpath)
		if err != nil || !isRoot || again != p {
			unix.Close(fd)
			continue
		}
		es, err := ReadMounts(proc)
		if err != nil {
			unix.Close(fd)
			return err
		}
		e, ok := findMount(es, id)
		if !ok || e.Parent != under || (!bind && e.FSType != fstype) {
			unix.Close(fd)
			last = fmt.Errorf("no mount just made at %s", p)
			continue
		}
		err = unix.Unmount(fdPath(fd), unix.MNT_DETACH)
		unix.Close(fd)
		return err
	}
	return last
}

// openat2 opens an absolute path without following any symlink.
func openat2(path string) (int, error) {
	return unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
}

// pseudoOnLink refuses to mount proc or sysfs inside a root (root= not
// "/") on a target whose last component is a symlink, as runc does: the
// link is resolved inside the root, but a root whose /proc or /sys is a
// symlink is not one to trust with them.
func pseudoOnLink(rootfd int, r *Request, obj string) error {
	if r.Root == "/" || (r.FSType != "proc" && r.FSType != "sysfs") || !r.NewMount() {
		return nil
	}
	rel := inroot.Rel(r.Target)
	dir, base := filepath.Split(rel)
	if base == "." {
		return nil
	}
	pfd, err := inroot.Open(rootfd, dir)
	if err != nil {
		return nil // resolving the target reports it
	}
	defer unix.Close(pfd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(pfd, base, buf)
	if err != nil {
		return nil // not a symlink
	}
	return nserr.Errorf("mount", obj, unix.ELOOP, "%s is a symlink (to %q) in the root %s; %s is mounted only on a real directory there", filepath.Join(r.Root, rel), buf[:n], r.Root, r.FSType)
}

// movedOr returns explained, the error of a refused mount, unless the
// target, resolved again inside the root, is no longer the directory tfd
// holds, or that directory's name is no longer was: then a directory on
// its path was renamed while nsh mounted (the kernel refuses a mount on a
// path that changes under it, at times with a bare EINVAL), and the error
// says so.
func movedOr(rootfd, tfd int, tpath, was, target, obj string, explained, err error) error {
	fd, oerr := inroot.Open(rootfd, target)
	if oerr == nil {
		defer unix.Close(fd)
		now, _ := os.Readlink(tpath)
		var a, b unix.Stat_t
		if unix.Fstat(tfd, &a) != nil || unix.Fstat(fd, &b) != nil || (a.Dev == b.Dev && a.Ino == b.Ino && now == was) {
			return explained
		}
	}
	return nserr.Errorf("mount", obj, err, "the target moved while mounting (a directory on its path was renamed meanwhile); nothing was mounted")
}

// finish reports the entry of the mount at tfd after an in-place change.
func finish(proc int, res Result, id, tfd int) (Result, error) {
	es, err := ReadMounts(proc)
	if err != nil {
		return res, err
	}
	res.Entry, _ = findMount(es, id)
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
func bindFlags(nfd int, npath string, r *Request) error {
	want := r.opts.Flags &^ unix.MS_REMOUNT
	if want == 0 {
		return nil
	}
	if r.Recursive {
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

// CoveredWait is how long Undo waits for mounts stacked on the one it
// takes off (by other runs, on the same target) to go first, counted from
// the last change of their number.
const CoveredWait = 5 * time.Second

// covered returns how many mounts are stacked on mount id, and whether
// mount id is there at all.
func covered(proc, id int) (int, bool) {
	es, err := ReadMounts(proc)
	if err != nil {
		return 0, false
	}
	e, ok := findMount(es, id)
	if !ok {
		return 0, false
	}
	n := 0
	for cur := id; ; n++ {
		next := 0
		for _, c := range es {
			if c.Parent == cur && c.Target == e.Target {
				next = c.ID
				break
			}
		}
		if next == 0 {
			return n, true
		}
		cur = next
	}
}

// Undo unmounts a mount this run made (mount id id, on target), if the
// path it was made on still leads to it (same mount id, resolved without
// leaving the root), and removes the directories mkdir=True made for it.
// It returns the directories it could not find. It runs on a thread that
// joined the mount's namespace.
func Undo(proc, id int, target string, created []Made) ([]Made, error) {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, nserr.New("unshare", "CLONE_FS", err)
	}
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("open", "/", err)
	}
	defer unix.Close(rootfd)
	// A mount another run stacked on this one (on the same target) is
	// waited for: each run takes off its own, the last made first. The
	// wait ends CoveredWait after the stack last changed.
	above := -1
	for deadline := time.Now().Add(CoveredWait); ; {
		fd, err := inroot.Open(rootfd, target)
		if err != nil {
			break
		}
		got, isRoot, err := mountID(fd)
		if err == nil && got == id && isRoot {
			// Under the lock a run stacking a mount on it takes
			// (lockTarget), and only if still on top then.
			lfd, unlock := lockTarget(rootfd, fd, target)
			if got, _, err := mountID(lfd); err != nil || got != id {
				unlock()
				unix.Close(lfd)
				continue
			}
			fd = lfd
			defer unlock()
			if err := unix.Fchdir(proc); err != nil {
				unix.Close(fd)
				return nil, nserr.New("chdir", "/proc", err)
			}
			// Lazily: the descriptor itself holds the mount.
			err := unix.Unmount(fdPath(fd), unix.MNT_DETACH)
			unix.Close(fd)
			if err != nil {
				return nil, nserr.New("umount", strconv.Quote(target), err)
			}
			break
		}
		unix.Close(fd)
		n, present := 0, false
		if err == nil {
			n, present = covered(proc, id)
		}
		if !present {
			break // gone: not ours to chase
		}
		// Uncovered (n == 0): the run above took its mount off between
		// the open and the read of the table, so the target leads to
		// this one now (look again); or it was moved away, and a short
		// wait ends.
		if n != above {
			above, deadline = n, time.Now().Add(CoveredWait)
			if n == 0 {
				deadline = time.Now().Add(100 * time.Millisecond)
			}
		}
		if time.Now().After(deadline) {
			if n == 0 {
				break // moved away: not ours to chase
			}
			return RemoveDirs(created), fmt.Errorf("umount %q: left mounted: %d other mounts still stacked on it after %v", target, n, CoveredWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return RemoveDirs(created), nil
}
