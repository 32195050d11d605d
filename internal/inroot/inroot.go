// Package inroot opens paths inside a directory tree without leaving it:
// symlinks and ".." are resolved as if the directory were "/" (openat2(2)
// with RESOLVE_IN_ROOT), and magic links such as /proc/self/root are
// refused. A mount target found this way cannot be redirected out of a
// container's root by a symlink planted inside it.
package inroot

import (
	"errors"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// Rel cleans path and makes it relative to the root: "/a/../b/" -> "b",
// "/" -> ".".
func Rel(path string) string {
	p := strings.TrimLeft(filepath.Clean("/"+path), "/")
	if p == "" {
		return "."
	}
	return p
}

// Open returns an O_PATH descriptor of path inside the directory root.
func Open(root int, path string) (int, error) {
	return unix.Openat2(root, Rel(path), &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolve})
}

// Create is Open that first creates what is missing, as mkdir -p does:
// the missing directories, and the last component as an empty file when
// file is true. Components are created one at a time below the deepest
// existing one, and none of the new ones may be a symlink (a symlink that
// appears in a created component's place is refused with ELOOP). It
// returns the descriptor and the created paths, relative to root, in the
// order they were made.
func Create(root int, path string, file bool) (fd int, created []string, err error) {
	fd, err = Open(root, path)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, nil, err
	}
	rel := Rel(path)
	comps := strings.Split(rel, "/")
	// The deepest existing ancestor.
	base := -1
	dir := -1
	for i := len(comps) - 1; i >= 0; i-- {
		prefix := "."
		if i > 0 {
			prefix = strings.Join(comps[:i], "/")
		}
		d, err := Open(root, prefix)
		if err == nil {
			base, dir = i, d
			break
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, nil, err
		}
	}
	if dir < 0 {
		return -1, nil, unix.ENOENT
	}
	undo := func() {
		for i := len(created) - 1; i >= 0; i-- {
			flags := 0
			if !(file && i == len(comps)-1-base) {
				flags = unix.AT_REMOVEDIR
			}
			unix.Unlinkat(root, created[i], flags)
		}
	}
	for i := base; i < len(comps); i++ {
		name := comps[i]
		last := i == len(comps)-1
		if last && file {
			f, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
			if err != nil {
				unix.Close(dir)
				undo()
				return -1, nil, err
			}
			unix.Close(f)
		} else if err := unix.Mkdirat(dir, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(dir)
			undo()
			return -1, nil, err
		} else if err == nil {
			created = append(created, strings.Join(comps[:i+1], "/"))
		}
		if last && file {
			created = append(created, strings.Join(comps[:i+1], "/"))
		}
		next, err := unix.Openat2(dir, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
		unix.Close(dir)
		if err != nil {
			undo()
			return -1, nil, err
		}
		dir = next
	}
	return dir, created, nil
}
