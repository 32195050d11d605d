package builtins

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/mount"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
)

const mkdirDoc = `Makes a directory in the current context's mount namespace, as mkdir(1).
path is absolute. mode is its permission bits exactly (0o755 by default;
not masked by the umask, as mkdir -m). parents=True makes the missing
parents too (mode 0o755), as mkdir -p, and is content with a directory
that exists; exist_ok=True alone is content with an existing directory
but not with missing parents. Something else than a directory at path is
an error either way.
What mkdir() made is removed at the end of the run, newest first, as the
directories mount(mkdir=True) makes are: each only while it is still the
directory nsh made (same inode) and empty, so what a process put in it is
never lost (such a directory is left). persist=True keeps them. In the
mount namespace nsh started in, a SIGKILLed nsh's reaper removes them too.
Example (a root for clone(root=) with a minimal /dev):
  mount("tmpfs", "/tmp/box", "tmpfs", mkdir=True)
  mkdir("/tmp/box/dev"); mkdir("/tmp/box/proc", mode=0o555)
  mkdir("/tmp/box/var/tmp", mode=0o1777, parents=True)`

// mkdirBuiltin is mkdir(path, mode=0o755, parents=False, exist_ok=False,
// persist=False).
func mkdirBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	mode := 0o755
	var parents, existOK, persist bool
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "path", &path, "mode?", &mode,
		"parents?", &parents, "exist_ok?", &existOK, "persist?", &persist); err != nil {
		return nil, err
	}
	switch {
	case path == "":
		return nil, fmt.Errorf("mkdir: empty path")
	case strings.IndexByte(path, 0) >= 0:
		return nil, fmt.Errorf("mkdir: path %q contains a NUL byte", path)
	case !filepath.IsAbs(path):
		return nil, fmt.Errorf("mkdir: path %q is not absolute", path)
	case mode < 0 || mode > 0o7777:
		return nil, fmt.Errorf("mkdir: mode %#o is not a permission mode (0 to 0o7777)", mode)
	}
	path = filepath.Clean(path)
	if path == "/" {
		return nil, fmt.Errorf("mkdir: %q is the root, which exists", path)
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	persist = persist && st.lab == nil // a lab keeps it until nsh down anyway
	cur := st.current()
	mnt := cur.Get("mnt")
	host := nsctx.Same(mnt, st.tab.Initial.Get("mnt"))
	rec := &change.Mkdir{NS: st.mountNS(mnt), Path: path, Mode: uint32(mode), Parents: parents}
	rec.What = "directory " + strconv.Quote(path)
	var made []mount.Made
	rec.Apply = func() error {
		return nsthread.Do(st.tab.Joins(cur), func() error {
			var err error
			made, err = makeDirs(path, uint32(mode), parents, existOK, func(ops []reaper.Op) {
				if host {
					rec.Intend(ops...)
				}
			}, mnt)
			for _, d := range made {
				rec.Dirs = append(rec.Dirs, d.Path)
			}
			switch {
			case err != nil:
			case len(made) == 0: // it existed: nothing to undo
				rec.Undo = nil
			case persist:
				rec.Undo, rec.Kept = nil, true
			}
			return err
		})
	}
	rec.Undo = func() (bool, error) {
		var left []mount.Made
		nsthread.Do(st.tab.Joins(st.tab.Initial.With(mnt)), func() error {
			left = mount.RemoveDirs(made)
			return nil
		})
		return len(left) < len(made), nil
	}
	rec.Reap = func() []reaper.Op {
		if !host {
			return nil
		}
		return rmdirOps(mnt, made, false)
	}
	if _, err := st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	return starlark.None, nil
}

// makeDirs makes path (and, with parents, its missing parents) on the
// calling thread, and returns what it made, oldest first; on failure it
// removes what it made and returns nothing. intend gives the reaper, before
// each directory is made, the ops that remove it and the ones made before.
func makeDirs(path string, mode uint32, parents, existOK bool, intend func([]reaper.Op), mnt *nsctx.NS) ([]mount.Made, error) {
	// The components to make: path, and with parents the missing ones above it.
	todo := []string{path}
	if parents {
		for p := filepath.Dir(path); p != "/"; p = filepath.Dir(p) {
			var sb unix.Stat_t
			err := unix.Stat(p, &sb)
			if err == nil {
				if sb.Mode&unix.S_IFMT != unix.S_IFDIR {
					return nil, nserr.Explain(unix.ENOTDIR, "mkdir: %q (a parent of %q) is not a directory", p, path)
				}
				break
			}
			if !errors.Is(err, unix.ENOENT) {
				return nil, nserr.New("mkdir: stat", strconv.Quote(p), err)
			}
			todo = append([]string{p}, todo...)
		}
	}
	var made []mount.Made
	var ops []reaper.Op
	fail := func(err error) ([]mount.Made, error) {
		mount.RemoveDirs(made)
		return nil, err
	}
	for i, d := range todo {
		last := i == len(todo)-1
		m := uint32(0o755)
		if last {
			m = mode
		}
		ops = append([]reaper.Op{reaper.Rmdir(mnt, d)}, ops...)
		intend(ops)
		err := unix.Mkdir(d, 0o700) // no wider than 0o700 until its mode is set
		if errors.Is(err, unix.EEXIST) {
			ops = ops[1:]
			var sb unix.Stat_t
			if serr := unix.Stat(d, &sb); serr != nil || sb.Mode&unix.S_IFMT != unix.S_IFDIR {
				return fail(nserr.Explain(unix.EEXIST, "mkdir: %q exists and is not a directory", d))
			}
			if last && !parents && !existOK {
				return fail(nserr.Errorf("mkdir", strconv.Quote(d), unix.EEXIST, "exist_ok=True accepts an existing directory"))
			}
			continue
		}
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return fail(nserr.Errorf("mkdir", strconv.Quote(d), err, "its parent %q is missing; parents=True makes it", filepath.Dir(d)))
			}
			return fail(nserr.New("mkdir", strconv.Quote(d), err))
		}
		var sb unix.Stat_t
		if err := unix.Lstat(d, &sb); err != nil {
			unix.Rmdir(d)
			return fail(nserr.New("mkdir: stat", strconv.Quote(d), err))
		}
		made = append(made, mount.Made{Path: d, Dev: sb.Dev, Ino: sb.Ino})
		if err := unix.Chmod(d, m); err != nil {
			return fail(nserr.New("mkdir: chmod", fmt.Sprintf("%#o %q", m, d), err))
		}
	}
	return made, nil
}
