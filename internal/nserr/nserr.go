// Package nserr is nsh's error type for failed kernel operations: it keeps
// the operation, the object it acted on and the errno (so errors.Is works),
// and renders the errno in words with a hint on what to do about it. An
// error with an errno reaches the user as an *Error, built by New, Errorf or
// Explain.
package nserr

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/rootless"
)

// Error is a failed operation on a kernel object.
type Error struct {
	Op   string // what was attempted, e.g. "setns", "mount"
	Obj  string // the object it was attempted on, e.g. `"/proc/42/ns/net"`
	Err  error  // the cause, usually a unix.Errno
	Hint string // what a user can do about it; empty when nothing useful is known
	// Msg, when set, is the whole message in words and stands for
	// "op obj: errno" (see Explain).
	Msg string
}

// Error renders the error as "op obj: EINVAL: invalid argument (hint)", or
// as Msg followed by the hint when Msg is set.
func (e *Error) Error() string {
	s := e.Msg
	if s == "" {
		s = e.Op
		if e.Obj != "" {
			s += " " + e.Obj
		}
		s += ": " + Words(e.Err)
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the cause, so errors.Is(err, unix.EPERM) works.
func (e *Error) Unwrap() error { return e.Err }

// New returns nil when err is nil, and otherwise an *Error for op on obj with
// the hint known for op and the errno, if any. An error of package os that
// wraps the errno (*os.PathError, *os.SyscallError, *os.LinkError) is
// replaced by what it wraps: op and obj already say what it names.
func New(op, obj string, err error) error {
	if err == nil {
		return nil
	}
	err = Cause(err)
	var errno unix.Errno
	hint := ""
	if errors.As(err, &errno) {
		if (errno == unix.EPERM || errno == unix.EACCES) && InUserNS() {
			return &Error{Op: op, Obj: obj, Err: err, Hint: RootlessHint}
		}
		if errno == unix.EPERM && unprivileged() && op != "write" {
			return &Error{Op: op, Obj: obj, Err: err, Hint: unprivilegedHint}
		}
		hint = hints[key{op, errno}]
		if hint == "" {
			hint = hints[key{"", errno}]
		}
	}
	return &Error{Op: op, Obj: obj, Err: err, Hint: hint}
}

// Errorf is New with a hint given by the caller instead of the table's.
func Errorf(op, obj string, err error, hint string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Obj: obj, Err: Cause(err), Hint: fmt.Sprintf(hint, args...)}
}

// Explain returns an *Error whose message, format and args, already says in
// words what errno means (`a link named "x" already exists in net:[…]`):
// it reads as that message and unwraps to errno, so errors.Is(err,
// unix.EEXIST) still holds.
func Explain(errno unix.Errno, format string, args ...any) error {
	return &Error{Err: errno, Msg: fmt.Sprintf(format, args...)}
}

// Cause returns the error that an error of package os (*os.PathError,
// *os.SyscallError, *os.LinkError) wraps, usually a unix.Errno, and any
// other error as it is.
func Cause(err error) error {
	for {
		switch e := err.(type) {
		case *os.PathError:
			err = e.Err
		case *os.SyscallError:
			err = e.Err
		case *os.LinkError:
			err = e.Err
		default:
			return err
		}
	}
}

// Words renders an errno as "ENOENT: no such file or directory"; other
// errors as their own text.
func Words(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) && errors.Is(err, errno) && err == error(errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name + ": " + errno.Error()
		}
	}
	return err.Error()
}

type key struct {
	op    string
	errno unix.Errno
}

// hints maps an operation and errno to advice; op "" applies to any
// operation without a more specific entry.
var hints = map[key]string{
	{"", unix.EPERM}:             "needs privilege: run as root, or rootless inside a user namespace",
	{"setns", unix.EINVAL}:       "the file is not a namespace of the requested kind, or the kind cannot be joined by a multi-threaded process",
	{"setns", unix.EPERM}:        "needs CAP_SYS_ADMIN in the namespace's owning user namespace",
	{"unshare", unix.EINVAL}:     "this kind cannot be unshared by a multi-threaded process; nsh creates it in a helper process instead",
	{"mount", unix.EINVAL}:       "the kernel refused the combination of source, target, type and options shown",
	{"mount", unix.EBUSY}:        "the target is busy or already mounted",
	{"umount", unix.EBUSY}:       "the mount is in use; pass detach=True for a lazy unmount",
	{"umount", unix.EINVAL}:      "the target is not a mount point",
	{"open", unix.ENOENT}:        "no such file: check the path",
	{"", unix.ENOSPC}:            "a kernel limit was reached (e.g. user.max_*_namespaces)",
	{"", unix.EUSERS}:            "user namespace nesting is too deep (32 levels at most)",
	{"link add", unix.EEXIST}:    "a link of that name already exists in that namespace",
	{"sethostname", unix.EINVAL}: "host names are at most 64 bytes",
}

const unprivilegedHint = "nsh runs as an ordinary user without rootless mode (--no-rootless or NSH_ROOTLESS=0): it may create user namespaces and start processes in them, but not act in namespaces itself; run it without --no-rootless"

// unprivileged: not root and not in a user namespace of its own.
func unprivileged() bool { return os.Geteuid() != 0 && !InUserNS() }

// RootlessHint is the hint of New for EPERM and EACCES when nsh runs in a
// user namespace; callers that know which privilege was missing say more.
const RootlessHint = "nsh runs rootless, inside a user namespace: this touches an object the host owns (its network, /run/netns, its mounts) and needs real root"

// InUserNS reports whether nsh runs in a user namespace other than the
// initial one (rootless, or in a container). It is read from /proc once,
// on first use (a run that meets no permission error never needs it), on a
// goroutine of its own: a thread the scheduler hands a fresh goroutine is
// always in nsh's own namespaces (a thread whose namespaces changed never
// returns to its pool), so the answer holds whichever thread asks, even one
// in a mount namespace without /proc.
var InUserNS = sync.OnceValue(func() bool {
	c := make(chan bool)
	go func() { c <- rootless.Active() }()
	return <-c
})
