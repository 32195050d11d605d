// Package netnsdir makes, inspects and removes the entries of /run/netns
// (named network namespaces, as "ip netns" keeps them) so that nsh runs
// acting on one name at the same time agree.
//
// An entry is an empty file a network namespace is bind-mounted on. It
// cannot come into being atomically: the file must exist before the mount.
// So nsh holds an exclusive flock(2) on the file's inode from before the
// file has its name until the namespace is mounted on it, and the file
// gets its name by linkat(2) of an O_TMPFILE inode that is already locked.
// Another run that finds the name without a namespace on it can then tell
// the two cases apart: the lock is held (a run is making the entry: wait
// for it) or it is not (its maker died between the link and the mount, or
// a tool that takes no lock, such as "ip netns add", is in that window).
// A lock dies with its holder, so a SIGKILL leaves no lock behind.
//
// An unlocked empty entry is not reused: nsh cannot know that no lockless
// tool is about to mount on it (a second mount would stack on the first and
// hide it), and "ip netns add" refuses an existing name too. Callers wait a
// little for such an entry to get its namespace, then report it as stale
// with the fix (remove it); Remove takes the lock, so it never deletes an
// entry under a maker.
package netnsdir

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/mountinfo"
	"nsh.dev/nsh/internal/nserr"
)

// Dir is where iproute2 keeps named network namespaces.
const Dir = "/run/netns"

// LockWait bounds the wait for a lock on /run/netns or one of its entries:
// holders keep them for a few system calls, so only a stopped process holds
// one this long.
var LockWait = 10 * time.Second

// Errors of Inspect, for an entry that has no namespace mounted on it.
var (
	// ErrMaking: another process holds the entry's lock: it is making it.
	ErrMaking = errors.New("is being made by another process")
	// ErrUnbacked: an empty file nobody holds the lock of: its maker was
	// killed before mounting a namespace on it, or a tool that takes no
	// lock ("ip netns add") is between creating and mounting it.
	ErrUnbacked = errors.New("is an empty file no namespace is mounted on")
	// ErrForeign: something other than an entry (a non-empty file, a
	// directory, ...).
	ErrForeign = errors.New("is neither a namespace nor an empty file")
)

// Prepare makes Dir exist and be a shared mount of its own, as iproute2
// does, so that entries propagate to other mount namespaces and can be
// unmounted everywhere. The directory is bound onto itself only under a
// lock on it, and only if it is still no mount point then: runs starting
// together on a fresh machine would otherwise each stack a bind of their
// own (iproute2 has that race: systemd#2741).
func Prepare() error {
	if err := unix.Mkdir(filepath.Dir(Dir), 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nserr.New("mkdir", filepath.Dir(Dir), err)
	}
	if err := unix.Mkdir(Dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nserr.New("mkdir", Dir, err)
	}
	share := func() error { return unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "") }
	if err := share(); !errors.Is(err, unix.EINVAL) {
		return nserr.New("mount", "--make-rshared "+Dir, err)
	}
	// EINVAL: not a mount point yet. The directory is the same inode
	// before and after the bind, so every run locks the same thing.
	dir, err := unix.Open(Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nserr.New("open", Dir, err)
	}
	defer unix.Close(dir)
	if err := lock(dir, unix.LOCK_EX); err != nil {
		return nserr.New("flock", Dir, err)
	}
	if err := share(); !errors.Is(err, unix.EINVAL) {
		return nserr.New("mount", "--make-rshared "+Dir, err)
	}
	if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nserr.New("mount", "--bind "+Dir+" "+Dir, err)
	}
	return nserr.New("mount", "--make-rshared "+Dir, share())
}

// Publish gives the network namespace held by nsfd the name path (an entry
// of a prepared Dir) and returns the ID of the bind mount and the inode
// number of the file under it. It fails with EEXIST (errors.Is) when the
// name is taken, and then has done nothing. The file is linked in already
// locked and the lock is released only after the mount, so no other nsh
// sees the name without a namespace and without the lock.
//
// Before the file gets its name, Publish calls intend (when not nil) with
// the ID of the mount the directory is on and the file's inode number,
// for the run's reaper: if nsh is killed before the name is finished, it
// unmounts path unless the mount there is still the directory's, and
// removes path only if it is that inode (see reaper.UmountNew, Unlink).
// On a filesystem without O_TMPFILE the file is created first, so a
// SIGKILL between that and intend can leave an empty file (which Inspect
// reports as stale).
func Publish(path string, nsfd int, intend func(dirMnt, ino uint64)) (mntID, ino uint64, err error) {
	dir := filepath.Dir(path)
	var dx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID|unix.STATX_INO, &dx); err != nil {
		return 0, 0, nserr.New("statx", strconv.Quote(dir), err)
	}
	tell := func(fd int) error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nserr.New("fstat", "a new file in "+dir, err)
		}
		ino = st.Ino
		if intend != nil {
			intend(dx.Mnt_id, ino)
		}
		return nil
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case err == nil:
		// A new inode with no name: nobody else can hold its lock.
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			return 0, 0, nserr.New("flock", "a new file in "+dir, err)
		}
		if err := tell(fd); err != nil {
			unix.Close(fd)
			return 0, 0, err
		}
		// By descriptor (needs CAP_DAC_READ_SEARCH), else through /proc.
		err := unix.Linkat(fd, "", unix.AT_FDCWD, path, unix.AT_EMPTY_PATH)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
			proc := "/proc/self/fd/" + strconv.Itoa(fd)
			err = unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
		}
		if err != nil {
			unix.Close(fd)
			return 0, 0, nserr.New("create", strconv.Quote(path), err)
		}
	case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL):
		// A filesystem without O_TMPFILE: create, then lock at once
		// (Inspect's callers wait a little for an unlocked empty file).
		if fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0); err != nil {
			return 0, 0, nserr.New("create", strconv.Quote(path), err)
		}
		err := tell(fd)
		if err == nil {
			if err = lock(fd, unix.LOCK_EX); err != nil {
				err = nserr.New("flock", strconv.Quote(path), err)
			}
		}
		if err != nil {
			unix.Unlink(path)
			unix.Close(fd)
			return 0, 0, err
		}
	default:
		return 0, 0, nserr.New("create", "a file in "+dir, err)
	}
	defer unix.Close(fd) // releases the lock, after the mount
	fault.At("netns.linked")
	src := "/proc/self/fd/" + strconv.Itoa(nsfd)
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		unix.Unlink(path)
		return 0, 0, nserr.New("mount", "--bind "+src+" "+strconv.Quote(path), err)
	}
	id, err := mountinfo.IDOf(path)
	if err != nil {
		unix.Unmount(path, unix.MNT_DETACH)
		unix.Unlink(path)
		return 0, 0, nserr.New("statx", strconv.Quote(path), err)
	}
	return id, ino, nil
}

// Inspect says why the entry path has no namespace on it: ErrMaking,
// ErrUnbacked or ErrForeign (errors.Is). It returns nil when a namespace is
// mounted there by now, and an error with ENOENT when path is gone.
func Inspect(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nserr.New("open", strconv.Quote(path), err)
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return nserr.New("statfs", strconv.Quote(path), err)
	}
	if sfs.Type == unix.NSFS_MAGIC {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nserr.New("fstat", strconv.Quote(path), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
		return fmt.Errorf("%q %w", path, ErrForeign)
	}
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("%q %w", path, ErrMaking)
	} else if err != nil {
		return nserr.New("flock", strconv.Quote(path), err)
	}
	return fmt.Errorf("%q %w", path, ErrUnbacked)
}

// Ident names a namespace as stat(2) of its file does.
type Ident struct{ Dev, Ino uint64 }

// Remove unmounts path and removes the file, as "ip netns del" does. With
// want, it does so only while the namespace mounted there is that one (it
// is still the caller's, not one that replaced it). An entry another nsh is
// making is removed only once made, so the maker never finds its file gone.
// A path that does not exist is not an error.
func Remove(path string, want *Ident) error {
	if want != nil {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return nserr.New("stat", strconv.Quote(path), err)
		}
		if st.Dev != want.Dev || st.Ino != want.Ino {
			return nil
		}
	}
	// A few rounds: a maker may mount a namespace on the file while this
	// waits for its lock; stacked mounts each need an unmount.
	for i := 0; i < 8; i++ {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return nserr.New("umount", strconv.Quote(path), err)
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.ELOOP) {
			// A symlink: no entry nsh or iproute2 makes; remove the link.
			return nserr.New("remove", strconv.Quote(path), unix.Unlink(path))
		}
		if err != nil {
			return nserr.New("open", strconv.Quote(path), err)
		}
		again, err := removeLocked(path, fd)
		unix.Close(fd)
		if !again {
			return err
		}
	}
	return nserr.New("umount", strconv.Quote(path), unix.EBUSY)
}

// removeLocked removes path, whose file fd is, under the file's lock; it
// says again when a mount covers path by then.
func removeLocked(path string, fd int) (again bool, err error) {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return false, nserr.New("statfs", strconv.Quote(path), err)
	}
	if sfs.Type == unix.NSFS_MAGIC {
		return true, nil // another namespace was stacked on the entry
	}
	if err := lock(fd, unix.LOCK_EX); err != nil {
		return false, nserr.New("flock", strconv.Quote(path), err)
	}
	var held, now unix.Stat_t
	if err := unix.Fstat(fd, &held); err != nil {
		return false, nserr.New("fstat", strconv.Quote(path), err)
	}
	if err := unix.Stat(path, &now); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, nserr.New("stat", strconv.Quote(path), err)
	}
	if now.Dev != held.Dev || now.Ino != held.Ino {
		return true, nil // mounted over while this waited for the lock
	}
	if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, nserr.New("remove", strconv.Quote(path), err)
	}
	return false, nil
}

// lock takes a flock of the given kind on fd, waiting up to LockWait.
func lock(fd, how int) error {
	deadline := time.Now().Add(LockWait)
	for wait := 100 * time.Microsecond; ; {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("another process has held the lock for over %v: %w", LockWait, unix.EWOULDBLOCK)
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
}
