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

	"nsh.dev/nsh/internal/fault"
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
	return openat2(root, Rel(path), resolve)
}

// openat2 retries on EAGAIN: with RESOLVE_IN_ROOT or RESOLVE_BENEATH the
// kernel gives up on ".." when any mount or rename happened anywhere
// meanwhile, and asks the caller to try again.
func openat2(dir int, path string, res uint64) (int, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: res}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dir, path, how)
		if !errors.Is(err, unix.EAGAIN) || i == 1000 {
			return fd, err
		}
	}
}

// CreateError is Create's failure to make one missing component: which
// one, and how. It unwraps to the errno, so errors.Is still works.
type CreateError struct {
	Op   string // "mkdir", or "create" for the empty file of a file target
	Path string // the component's real path, relative to root
	Err  error
}

func (e *CreateError) Error() string { return e.Op + " " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the errno.
func (e *CreateError) Unwrap() error { return e.Err }

// Create is Open that first creates what is missing, as mkdir -p does:
// the missing directories, and the last component as an empty file when
// file is true. It walks the path one component at a time, never letting
// the kernel follow a symlink: a symlink's text is read and walked in its
// place, absolute ones from root, ".." never above root (up to 40 links).
// So it always knows the real name, under root, of what it creates, and
// returns those names in the order they were made. A failure to create a
// component is a *CreateError naming it.
//
// before, when not nil, is called before each component is made, with
// its real name under root and, for the file, its inode number (0 for a
// directory): what a reaper must be told ahead (write ahead). The file is
// made nameless (O_TMPFILE) and linked in once before has its inode; on a
// filesystem without O_TMPFILE it is created first, and before is called
// right after.
func Create(root int, path string, file bool, before func(rel string, ino uint64)) (fd int, created []string, err error) {
	const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS
	open := func(dir int, name string) (int, error) { return openat2(dir, name, beneath) }
	undo := func() {
		for i := len(created) - 1; i >= 0; i-- {
			if unix.Unlinkat(root, created[i], unix.AT_REMOVEDIR) != nil {
				unix.Unlinkat(root, created[i], 0)
			}
		}
	}
	dir, err := open(root, ".")
	if err != nil {
		return -1, nil, err
	}
	at := "" // the real path of dir, relative to root
	pending := strings.Split(Rel(path), "/")
	links := 0
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			at = parent(at)
			next, err := open(root, dotIfEmpty(at))
			unix.Close(dir)
			if err != nil {
				undo()
				return -1, nil, err
			}
			dir = next
			continue
		}
		here := strings.TrimPrefix(at+"/"+name, "/")
		next, err := open(dir, name)
		if errors.Is(err, unix.ENOENT) {
			op := "mkdir"
			if len(pending) == 0 && file {
				op = "create"
				err = createFile(dir, name, func(ino uint64) {
					if before != nil {
						before(here, ino)
					}
				})
			} else {
				if before != nil {
					before(here, 0)
				}
				err = unix.Mkdirat(dir, name, 0o755)
			}
			if err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(dir)
				undo()
				return -1, nil, &CreateError{Op: op, Path: here, Err: err}
			}
			if err == nil {
				created = append(created, here)
				fault.At("inroot.created")
				next, err = open(dir, name)
			}
		}
		if errors.Is(err, unix.ELOOP) {
			// A symlink: walk its text instead.
			links++
			target, rerr := readlinkat(dir, name)
			if rerr != nil || links > 40 {
				unix.Close(dir)
				undo()
				if rerr == nil {
					rerr = unix.ELOOP
				}
				return -1, nil, rerr
			}
			if strings.HasPrefix(target, "/") {
				at = ""
				next, err := open(root, ".")
				unix.Close(dir)
				if err != nil {
					undo()
					return -1, nil, err
				}
				dir = next
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		unix.Close(dir)
		if err != nil {
			undo()
			return -1, nil, err
		}
		dir, at = next, here
	}
	return dir, created, nil
}

// createFile makes the empty file name in dir, failing with EEXIST if
// it is there; made is called with its inode number before it has its
// name, when the filesystem has O_TMPFILE (else right after).
func createFile(dir int, name string, made func(ino uint64)) error {
	excl := func() error {
		f, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		defer unix.Close(f)
		var st unix.Stat_t
		if unix.Fstat(f, &st) == nil {
			made(st.Ino)
		}
		return nil
	}
	f, err := unix.Openat(dir, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
		return excl()
	}
	if err != nil {
		return err
	}
	defer unix.Close(f)
	var st unix.Stat_t
	if err := unix.Fstat(f, &st); err != nil {
		return err
	}
	made(st.Ino)
	// Linking a descriptor in is allowed for one's own files since Linux
	// 6.10; before, it needs CAP_DAC_READ_SEARCH (ENOENT without).
	err = unix.Linkat(f, "", dir, name, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		return excl()
	}
	return err
}

func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func dotIfEmpty(p string) string {
	if p == "" {
		return "."
	}
	return p
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
