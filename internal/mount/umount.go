package mount

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/inroot"
	"nsh.dev/nsh/internal/mountinfo"
	"nsh.dev/nsh/internal/mountuse"
	"nsh.dev/nsh/internal/nserr"
)

// Mounted reports whether target (resolved in the calling thread's mount
// namespace and root) is the root of a mount: false when it is a plain
// directory or file, or does not exist.
func Mounted(target string) (bool, error) {
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, nserr.New("open", "/", err)
	}
	fd, err := inroot.Open(rootfd, target)
	unix.Close(rootfd)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, nserr.New("open", strconv.Quote(target), err)
	}
	_, isRoot, err := mountID(fd)
	unix.Close(fd)
	return isRoot, err
}

// Umount unmounts target (and, when recursive, what is below it first)
// and returns the ids of the mounts that went away.
func Umount(proc int, target string, detach, recursive bool) ([]int, error) {
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
	es, err := ReadMounts(proc)
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
			if below := children(es, id); errors.Is(err, unix.EBUSY) && len(tree) == 1 && len(below) > 0 {
				return gone, nserr.Errorf("umount", strconv.Quote(target), err, "mounts below it: %s; pass recursive=True, or detach=True", strings.Join(below, ", "))
			}
			return gone, mountuse.UmountError(proc, tree[i].ID, strconv.Quote(tree[i].Target), err)
		}
		gone = append(gone, tree[i].ID)
	}
	return gone, nil
}

// children lists the targets of the mounts right below mount id, the
// first few of them.
func children(es []mountinfo.Entry, id int) []string {
	var out []string
	for _, e := range es {
		if e.Parent == id && e.ID != id {
			if len(out) == shownBelow {
				return append(out, "...")
			}
			out = append(out, e.Target)
		}
	}
	return out
}

// shownBelow is how many mounts below a busy one its error names.
const shownBelow = 4
