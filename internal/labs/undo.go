package labs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/mountinfo"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
)

// Outcome is what undoing one step did.
type Outcome struct {
	Step Step
	What string // the record's description
	Gone string // not "": there was nothing to undo, and why
	Err  error
}

// String renders o for nsh down's report.
func (o Outcome) String() string {
	s := o.What + ": " + o.Step.Describe()
	switch {
	case o.Err != nil:
		return s + ": " + o.Err.Error()
	case o.Gone != "":
		return s + ": already gone (" + o.Gone + ")"
	}
	return s
}

// Describe renders the step as the command that does the same.
func (s Step) Describe() string {
	in := ""
	if s.Net != "" {
		in = " in " + s.Net
	}
	switch s.Kind {
	case "dellink":
		return fmt.Sprintf("ip link del %s (index %d)%s", s.Path, s.Arg, in)
	case "umount", "umount-new":
		return "umount -l " + s.Path
	case "unlink":
		return "rm " + s.Path
	case "rmdir":
		return "rmdir " + s.Path
	case "write":
		return fmt.Sprintf("echo %s > %s%s", s.Value, s.Path, in)
	case "killcg":
		return "kill the processes of cgroup " + s.Path
	}
	return s.Kind + " " + s.Path
}

// Undo undoes the live records of a journal, newest first, each step in
// order, going on past failures, and reports each step.
func Undo(recs []Record) []Outcome {
	n := 0
	for _, r := range recs {
		n += len(r.Steps)
	}
	out := make([]Outcome, 0, n)
	for i := len(recs) - 1; i >= 0; i-- {
		for _, s := range recs[i].Steps {
			gone, err := s.undo()
			out = append(out, Outcome{Step: s, What: recs[i].What, Gone: gone, Err: err})
		}
	}
	return out
}

// joins opens the step's namespaces for nsthread.Do; close them after.
func (s Step) joins() ([]nsthread.Join, func(), error) {
	if s.Mnt == "" && s.Net == "" && s.UTS == "" {
		return nil, func() {}, nil // in nsh's own namespaces
	}
	var js []nsthread.Join
	var fds []int
	done := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	for _, x := range []struct {
		path string
		typ  int
	}{{s.Mnt, unix.CLONE_NEWNS}, {s.Net, unix.CLONE_NEWNET}, {s.UTS, unix.CLONE_NEWUTS}} {
		if x.path == "" {
			continue
		}
		fd, err := unix.Open(x.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done()
			return nil, nil, nserr.New("open", x.path, err)
		}
		fds = append(fds, fd)
		if x.typ == unix.CLONE_NEWNET && s.NetIno != 0 {
			var st unix.Stat_t
			if unix.Fstat(fd, &st) == nil && st.Ino != s.NetIno {
				done()
				return nil, nil, errOtherNetns
			}
		}
		js = append(js, nsthread.Join{Fd: fd, Type: x.typ, Name: x.path})
	}
	return js, done, nil
}

// undo does the step; gone (not "") says there was nothing to do.
func (s Step) undo() (gone string, err error) {
	if s.Kind == "dellink" {
		return s.delLink() // by a netlink socket opened in its namespace
	}
	js, done, err := s.joins()
	if err != nil {
		if errors.Is(err, errOtherNetns) {
			return "its namespace " + s.Net + " is another one now", nil
		}
		if errors.Is(err, unix.ENOENT) {
			return "its namespace is gone", nil
		}
		return "", err
	}
	defer done()
	if len(js) == 0 {
		// In nsh's own namespaces: no thread of its own needed.
		return s.local()
	}
	err = nsthread.Do(js, func() error {
		var e error
		gone, e = s.local()
		return e
	})
	return gone, err
}

// errOtherNetns says a step's namespace path holds another namespace now.
var errOtherNetns = errors.New("another network namespace has its name now")

// handleIn opens a netlink handle in the network namespace at path ("":
// nsh's own), if it is still the one with inode ino (0: any).
func handleIn(path string, ino uint64) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	if ino != 0 {
		var st unix.Stat_t
		if err := unix.Fstat(int(ns), &st); err != nil {
			return nil, err
		}
		if st.Ino != ino {
			return nil, errOtherNetns
		}
	}
	return netlink.NewHandleAt(ns)
}

func (s Step) delLink() (string, error) {
	h, err := handleIn(s.Net, s.NetIno)
	if errors.Is(err, errOtherNetns) {
		return "its namespace " + s.Net + " is another one now", nil
	}
	if errors.Is(err, unix.ENOENT) {
		return "its namespace is gone", nil
	}
	if err != nil {
		return "", err
	}
	defer h.Close()
	l, err := h.LinkByIndex(int(s.Arg))
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return "no link has its index", nil
		}
		return "", err
	}
	if s.Path != "" && l.Attrs().Name != s.Path {
		return fmt.Sprintf("index %d is now %q, not nsh's", s.Arg, l.Attrs().Name), nil
	}
	if err := h.LinkDel(l); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return "deleted meanwhile", nil
		}
		return "", err
	}
	return "", nil
}

// local does a step that acts through paths, on a thread in its
// namespaces.
func (s Step) local() (string, error) {
	switch s.Kind {
	case "umount", "umount-new":
		id, err := mountinfo.IDOf(s.Path)
		if errors.Is(err, unix.ENOENT) {
			return "the mount point is gone", nil
		}
		if err != nil {
			return "", err
		}
		if s.Kind == "umount" && s.Arg != 0 && id != s.Arg || s.Kind == "umount-new" && id == s.Arg {
			return "not nsh's mount", nil
		}
		if err := unix.Unmount(s.Path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return "not mounted", nil
			}
			return "", err
		}
	case "unlink":
		var st unix.Stat_t
		if err := unix.Lstat(s.Path, &st); err != nil {
			return "removed", nil
		}
		if s.Arg != 0 && st.Ino != s.Arg {
			return "another file has its name", nil
		}
		if err := unix.Unlink(s.Path); err != nil && !errors.Is(err, unix.ENOENT) {
			return "", err
		}
	case "rmdir":
		if err := unix.Rmdir(s.Path); err != nil {
			switch {
			case errors.Is(err, unix.ENOENT):
				return "removed", nil
			case errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST):
				return "not empty: kept", nil
			}
			return "", err
		}
	case "write":
		if s.Arg != 0 {
			b, err := os.ReadFile(s.Path)
			if err != nil {
				return "", err
			}
			if strings.TrimSuffix(string(b), "\n") != s.Expect {
				return fmt.Sprintf("it reads %q now, not nsh's %q: left", strings.TrimSpace(string(b)), s.Expect), nil
			}
		}
		if err := os.WriteFile(s.Path, []byte(s.Value), 0); err != nil {
			return "", err
		}
	case "killcg":
		return killCgroup(s.Path)
	default:
		return "", fmt.Errorf("unknown step %q (a newer nsh's journal?)", s.Kind)
	}
	return "", nil
}

// killCgroup kills every process of the cgroup, waits for them to be
// gone (5 s at most) and removes it.
func killCgroup(path string) (string, error) {
	if err := os.WriteFile(filepath.Join(path, "cgroup.kill"), []byte("1"), 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "removed", nil
		}
		return "", err
	}
	for i := 0; i < 500; i++ {
		b, err := os.ReadFile(filepath.Join(path, "cgroup.events"))
		if err != nil || strings.Contains(string(b), "populated 0") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := unix.Rmdir(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return "", nserr.New("rmdir", path, err)
	}
	return "", nil
}

// Check reports whether what step s undoes is still there: "" if it is
// (or cannot tell), else what is missing.
func Check(s Step) string {
	switch s.Kind {
	case "dellink":
		h, err := handleIn(s.Net, s.NetIno)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, errOtherNetns) {
			return "its namespace " + s.Net + " is gone"
		}
		if err != nil {
			return ""
		}
		defer h.Close()
		l, err := h.LinkByIndex(int(s.Arg))
		if err != nil {
			return fmt.Sprintf("link %s (index %d) is gone", s.Path, s.Arg)
		}
		if s.Path != "" && l.Attrs().Name != s.Path {
			return fmt.Sprintf("link %s (index %d) is gone (the index is %q's now)", s.Path, s.Arg, l.Attrs().Name)
		}
	case "unlink", "rmdir":
		if s.Mnt == "" {
			if _, err := os.Lstat(s.Path); err != nil {
				return s.Path + " is gone"
			}
		}
	}
	return ""
}
