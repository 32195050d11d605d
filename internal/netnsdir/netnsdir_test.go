package netnsdir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestInspect tells the states of an entry without a namespace apart: being
// made (locked), unbacked (empty, unlocked), foreign, gone.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "e")
	if err := Inspect(path); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing entry: %v", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Inspect(path); !errors.Is(err, ErrUnbacked) {
		t.Errorf("empty unlocked file: %v", err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := Inspect(path); !errors.Is(err, ErrMaking) {
		t.Errorf("locked file: %v", err)
	}
	unix.Close(fd)
	if err := Inspect(path); !errors.Is(err, ErrUnbacked) {
		t.Errorf("after its maker died (lock gone): %v", err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Inspect(path); !errors.Is(err, ErrForeign) {
		t.Errorf("non-empty file: %v", err)
	}
	if err := Inspect(dir); !errors.Is(err, ErrForeign) {
		t.Errorf("directory: %v", err)
	}
}

// TestRemoveWaitsForMaker: an entry whose maker holds the lock is removed
// only once the lock is released, never under the maker.
func TestRemoveWaitsForMaker(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (umount)")
	}
	path := filepath.Join(t.TempDir(), "e")
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		released <- time.Now()
		unix.Close(fd)
	}()
	if err := Remove(path, nil); err != nil {
		t.Fatal(err)
	}
	done := time.Now()
	if at := <-released; done.Before(at) {
		t.Errorf("removed before the maker released its lock")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("entry still there: %v", err)
	}
	if err := Remove(path, nil); err != nil {
		t.Errorf("removing a missing entry: %v", err)
	}
}
