package nserr

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestExplainKeepsErrno(t *testing.T) {
	err := Explain(unix.EEXIST, "a link named %q already exists", "x")
	if err.Error() != `a link named "x" already exists` || !errors.Is(err, unix.EEXIST) {
		t.Errorf("Explain: %q, errors.Is EEXIST = %v", err, errors.Is(err, unix.EEXIST))
	}
	var e *Error
	if !errors.As(err, &e) || e.Err != unix.EEXIST {
		t.Errorf("Explain: not an *Error with the errno: %#v", err)
	}
}

// The wrappers of package os around an errno render as the bare errno
// would (op and obj already name the path or call), and the errno stays
// reachable.
func TestNewTakesOffOSWrappers(t *testing.T) {
	want := New("read", "/x", unix.ENOENT).Error()
	if want != "read /x: ENOENT: no such file or directory" {
		t.Fatalf("bare errno renders as %q", want)
	}
	for _, wrapped := range []error{
		&os.PathError{Op: "open", Path: "/x", Err: unix.ENOENT},
		os.NewSyscallError("read", unix.ENOENT),
		&os.LinkError{Op: "rename", Old: "/x", New: "/y", Err: unix.ENOENT},
		&os.PathError{Op: "open", Path: "/x", Err: os.NewSyscallError("openat", unix.ENOENT)},
	} {
		err := New("read", "/x", wrapped)
		if err.Error() != want {
			t.Errorf("New(%#v) = %q, want %q", wrapped, err, want)
		}
		if !errors.Is(err, unix.ENOENT) {
			t.Errorf("New(%#v): errors.Is ENOENT is false", wrapped)
		}
		var errno unix.Errno
		if !errors.As(err, &errno) || errno != unix.ENOENT {
			t.Errorf("New(%#v): errors.As errno = %v", wrapped, errno)
		}
		if err := Errorf("read", "/x", wrapped, "hint %d", 1); err.Error() != "read /x: ENOENT: no such file or directory (hint 1)" {
			t.Errorf("Errorf(%#v) = %q", wrapped, err)
		}
	}
	if Cause(nil) != nil || New("x", "", nil) != nil {
		t.Errorf("nil is not kept nil")
	}
	other := errors.New("other")
	if Cause(other) != other {
		t.Errorf("Cause changed an error that is not of package os")
	}
}
