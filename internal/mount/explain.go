package mount

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/inroot"
	"nsh.dev/nsh/internal/nserr"
)

// explain turns a refused mount into an error that shows the call and,
// for EINVAL on a filesystem, asks the kernel which option it objects to.
func explainMount(obj string, r *Request, err error) error {
	switch {
	case errors.Is(err, unix.EPERM) && nserr.InUserNS() && (r.FSType == "proc" || r.FSType == "sysfs" || r.FSType == "mqueue" || r.FSType == "cgroup2"):
		return nserr.Errorf("mount", obj, err, `in a user namespace (rootless) %s shows the context's %s namespace, which must be one nsh created (unshare(%q) first), and the kernel mounts it only where a full %s is already visible (before pivot_root)`,
			r.FSType, pseudoNS[r.FSType], pseudoNS[r.FSType], r.FSType)
	case errors.Is(err, unix.EINVAL) && r.FSType != "":
		if why := diagnose(r.FSType, r.Source, r.opts.Data); why != "" {
			return nserr.Errorf("mount", obj, err, "%s", why)
		}
		return nserr.Errorf("mount", obj, err, "the kernel refused type %s with flags [%s] and options [%s]",
			r.FSType, strings.Join(r.opts.Names, ","), r.opts.DataString())
	case errors.Is(err, unix.EINVAL) && r.Bind:
		return nserr.Errorf("mount", obj, err, "the kernel refused the bind; is the source in another mount namespace, or on an unbindable mount?")
	case errors.Is(err, unix.ENOENT) && r.FSType != "":
		if why := diagnose(r.FSType, r.Source, r.opts.Data); why != "" {
			return nserr.Errorf("mount", obj, err, "%s", why)
		}
		return nserr.Errorf("mount", obj, err, "a path in the source or options does not exist")
	case errors.Is(err, unix.ENOTDIR) && r.Bind:
		return nserr.Errorf("mount", obj, err, "a directory and a file cannot be bound onto each other")
	}
	return nserr.New("mount", obj, err)
}

// pseudoNS names the namespace kind each pseudo filesystem shows.
var pseudoNS = map[string]string{"proc": "pid", "sysfs": "net", "mqueue": "ipc", "cgroup2": "cgroup"}

// diagnose replays a refused mount through the new mount API (fsopen,
// fsconfig), which names the offending option and lets the filesystem say
// why; it mounts nothing. It returns "" when it learns nothing.
func diagnose(fstype, source string, data []string) string {
	fd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	if source != "" && source != fstype {
		if err := unix.FsconfigSetString(fd, "source", source); err != nil {
			return fmt.Sprintf("source %q: %s", source, fsLog(fd, err))
		}
	}
	for _, d := range data {
		k, v, hasValue := strings.Cut(d, "=")
		var err error
		if hasValue {
			err = unix.FsconfigSetString(fd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fd, k)
		}
		if err != nil {
			return fmt.Sprintf("option %q: %s", d, fsLog(fd, err))
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fsLog(fd, err)
	}
	return ""
}

// fsLog reads the messages a filesystem context logged ("e tmpfs: Bad
// value for 'size'") and returns the errors among them.
func fsLog(fd int, err error) string {
	var msgs []string
	buf := make([]byte, 4096)
	for i := 0; i < 16; i++ {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		m := string(buf[:n])
		if t, ok := strings.CutPrefix(m, "e "); ok {
			msgs = append(msgs, strings.TrimSpace(t))
		}
	}
	if len(msgs) == 0 {
		return nserr.Words(err)
	}
	return strings.Join(msgs, "; ")
}

// mkdirError reports what mkdir=True (or pivot_root's put_old) could not
// create: the operation is the mkdir, not the mount, and the object the
// directory (path, absolute), made for what (`target "/mnt/x"`).
func mkdirError(path, forWhat string, ce *inroot.CreateError) error {
	obj := fmt.Sprintf("%q (for %s)", path, forWhat)
	var errno unix.Errno
	if errors.As(ce.Err, &errno) && (errno == unix.EACCES || errno == unix.EPERM) {
		hint := "the parent directory (its filesystem or its permissions) refuses new entries"
		if nserr.InUserNS() {
			hint = "nsh runs rootless: the host owns the parent directory, so only real root can create in it"
		}
		return nserr.Errorf(ce.Op, obj, errno, "%s; create the directory beforehand, or mount on a directory you may write to", hint)
	}
	return nserr.New(ce.Op, obj, ce.Err)
}
