package mount

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/inroot"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/procstat"
)

// StrangerIn returns the pid of a process in mount namespace ns that is
// neither nsh nor one of its descendants, or 0. pivot_root(2) moves every
// process whose root is the namespace's old root, so nsh pivots only
// namespaces nobody else lives in. Processes it may not inspect are
// skipped.
func StrangerIn(ns *nsctx.NS) int {
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
		p := 0
		if f, err := procstat.Fields(pid); err == nil && len(f) > 1 {
			p, _ = strconv.Atoi(f[1])
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

// PivotRoot makes newRoot the root of the calling thread's mount
// namespace (bind-mounting it on itself first if it is not a mount point)
// and moves the old root to putOld, a path under newRoot, or detaches it
// when putOld is "". It runs on a thread that joined the namespace, and
// reports whether it bind-mounted newRoot on itself (also when it failed
// later: the bind mount stays in the namespace).
func PivotRoot(newRoot, putOld string) (bound bool, err error) {
	obj := strconv.Quote(newRoot)
	fd, err := unix.Open(newRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return bound, nserr.Errorf("pivot_root", obj, err, "new_root must be an existing directory")
	}
	defer unix.Close(fd)
	if _, isRoot, err := mountID(fd); err != nil {
		return bound, err
	} else if !isRoot {
		// pivot_root(2) wants a mount point: make new_root one.
		if err := unix.Mount(newRoot, newRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return bound, nserr.New("mount", "--rbind "+obj+" "+obj, err)
		}
		bound = true
		nfd, err := unix.Open(newRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return bound, nserr.New("open", obj, err)
		}
		defer unix.Close(nfd)
		fd = nfd
	}
	if err := unix.Fchdir(fd); err != nil {
		return bound, nserr.New("chdir", obj, err)
	}
	hint := "the new root's parent mount and the current root must not be shared: unshare(\"mnt\") makes them private, or mount(target=\"/\", propagation=\"private\", recursive=True)"
	if putOld != "" {
		ofd, _, err := inroot.Create(unix.AT_FDCWD, putOld, false, nil)
		var ce *inroot.CreateError
		if errors.As(err, &ce) {
			return bound, mkdirError(filepath.Join(newRoot, ce.Path), "put_old "+strconv.Quote(putOld), ce)
		} else if err != nil {
			return bound, nserr.New("open", "put_old "+strconv.Quote(putOld), err)
		}
		unix.Close(ofd)
		if err := unix.PivotRoot(".", inroot.Rel(putOld)); err != nil {
			return bound, nserr.Errorf("pivot_root", obj+" "+strconv.Quote(putOld), err, "%s", hint)
		}
		return bound, unix.Chdir("/")
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// the top of "." then drops the old root (runc's trick, no put_old dir).
	if err := unix.PivotRoot(".", "."); err != nil {
		return bound, nserr.Errorf("pivot_root", obj, err, "%s", hint)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return bound, nserr.New("mount", "--make-rslave (old root)", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return bound, nserr.New("umount", "-l (old root)", err)
	}
	return bound, unix.Chdir("/")
}
