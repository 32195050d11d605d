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
// existing one; a symlink met on the way is followed inside root (its
// text is resolved against root, never against "/"), up to 40 of them. It
// returns the descriptor and the created paths, relative to root, in the
// order they were made.
func Create(root int, path string, file bool) (fd int, created []string, err error) {
	for hops := 0; hops <= 40; hops++ {
		var link string
		fd, created, link, err = create(root, Rel(path), file)
		if link == "" {
			return fd, created, err
		}
		path = link
	}
	return -1, nil, unix.ELOOP
}

// create does one pass of Create over rel. When it meets a symlink among
// the missing components, it undoes its work and returns the path to try
// instead: the symlink's text resolved against its directory, then the
// components after it.
func create(root int, rel string, file bool) (fd int, created []string, link string, err error) {
	fd, err = Open(root, rel)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, nil, "", err
	}
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
			return -1, nil, "", err
		}
	}
	if dir < 0 {
		return -1, nil, "", unix.ENOENT
	}
	undo := func() {
		for i := len(created) - 1; i >= 0; i-- {
			flags := unix.AT_REMOVEDIR
			if file && created[i] == rel {
				flags = 0
			}
			unix.Unlinkat(root, created[i], flags)
		}
	}
	// The existing ancestor may itself have been reached through
	// symlinks: name it by where it really is, relative to root.
	at := strings.Join(comps[:base], "/")
	for i := base; i < len(comps); i++ {
		name := comps[i]
		here := strings.TrimPrefix(at+"/"+name, "/")
		last := i == len(comps)-1
		if last && file {
			f, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(f)
				created = append(created, here)
			} else if !errors.Is(err, unix.EEXIST) {
				unix.Close(dir)
				undo()
				return -1, nil, "", err
			}
		} else if err := unix.Mkdirat(dir, name, 0o755); err == nil {
			created = append(created, here)
		} else if !errors.Is(err, unix.EEXIST) {
			unix.Close(dir)
			undo()
			return -1, nil, "", err
		}
		next, err := unix.Openat2(dir, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
		if errors.Is(err, unix.ELOOP) {
			// A symlink (dangling, since Open failed): follow its text
			// inside root and start over from there.
			target, rerr := readlinkat(dir, name)
			unix.Close(dir)
			undo()
			if rerr != nil {
				return -1, nil, "", rerr
			}
			if !strings.HasPrefix(target, "/") {
				// Relative text is resolved against the link's directory,
				// whose name must then be its real one: refuse when the
				// existing ancestor was itself reached through symlinks.
				if base > 0 {
					d, err := unix.Openat2(root, strings.Join(comps[:base], "/"), &unix.OpenHow{
						Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
					if err != nil {
						return -1, nil, "", err
					}
					unix.Close(d)
				}
				target = at + "/" + target
			}
			rest := strings.Join(comps[i+1:], "/")
			return -1, nil, Rel(target + "/" + rest), nil
		}
		unix.Close(dir)
		if err != nil {
			undo()
			return -1, nil, "", err
		}
		dir = next
		at = here
	}
	return dir, created, "", nil
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
