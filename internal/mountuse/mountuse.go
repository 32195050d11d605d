// Package mountuse finds what holds a mount busy: the processes whose
// working directory, root or open files are on it. It serves the hint of an
// umount that failed with EBUSY ("in use by pid 42 (sleep, working
// directory)").
package mountuse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
)

// shown is how many holders a message names before "and N more".
const shown = 3

// UmountError is nserr.New("umount", obj, err), except that an EBUSY names
// the processes that hold mount id (as Holders finds them) in its hint.
func UmountError(proc, id int, obj string, err error) error {
	if !errors.Is(err, unix.EBUSY) {
		return nserr.New("umount", obj, err)
	}
	h := Holders(proc, id)
	if len(h) == 0 {
		return nserr.New("umount", obj, err)
	}
	by := strings.Join(h[:min(len(h), shown)], ", ")
	if len(h) > shown {
		by += fmt.Sprintf(" and %d more", len(h)-shown)
	}
	return nserr.Errorf("umount", obj, err, "the mount is in use by %s; pass detach=True for a lazy unmount", by)
}

// Holders lists, by pid, the processes of the procfs open at proc whose
// working directory, root or an open file is on the mount with the given
// id (mount ids are those of statx and mountinfo), each as
// "pid 42 (sleep, working directory)". It is a best effort for a message:
// a process that exits meanwhile, or whose entries nsh may not read (another
// user's, rootless), is left out.
func Holders(proc, id int) []string {
	fd, err := unix.Openat(proc, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	dir := os.NewFile(uintptr(fd), "proc")
	names, _ := dir.Readdirnames(-1)
	dir.Close()
	var pids []int
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	var out []string
	for _, pid := range pids {
		p := strconv.Itoa(pid)
		var what []string
		if onMount(proc, p+"/cwd", id) {
			what = append(what, "working directory")
		}
		if onMount(proc, p+"/root", id) {
			what = append(what, "root")
		}
		if n := openFiles(proc, p, id); n == 1 {
			what = append(what, "an open file")
		} else if n > 1 {
			what = append(what, fmt.Sprintf("%d open files", n))
		}
		if len(what) == 0 {
			continue
		}
		comm := "?"
		if b, err := readAt(proc, p+"/comm"); err == nil {
			comm = strings.TrimSpace(string(b))
		}
		out = append(out, fmt.Sprintf("pid %d (%s, %s)", pid, comm, strings.Join(what, ", ")))
	}
	return out
}

// onMount reports whether the file the magic link path (under proc) leads
// to is on mount id.
func onMount(proc int, path string, id int) bool {
	var sx unix.Statx_t
	if err := unix.Statx(proc, path, 0, unix.STATX_MNT_ID, &sx); err != nil {
		return false
	}
	return sx.Mask&unix.STATX_MNT_ID != 0 && int(sx.Mnt_id) == id
}

// openFiles counts the descriptors of process pid whose file is on mount
// id, from the mnt_id line of /proc/PID/fdinfo/N.
func openFiles(proc int, pid string, id int) int {
	fd, err := unix.Openat(proc, pid+"/fdinfo", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	dir := os.NewFile(uintptr(fd), "fdinfo")
	names, _ := dir.Readdirnames(-1)
	dir.Close()
	want := []byte("mnt_id:")
	n := 0
	for _, name := range names {
		b, err := readAt(proc, pid+"/fdinfo/"+name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if rest, ok := bytes.CutPrefix(sc.Bytes(), want); ok {
				if m, err := strconv.Atoi(string(bytes.TrimSpace(rest))); err == nil && m == id {
					n++
				}
				break
			}
		}
	}
	return n
}

func readAt(proc int, path string) ([]byte, error) {
	fd, err := unix.Openat(proc, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}
