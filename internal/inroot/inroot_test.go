package inroot

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRel(t *testing.T) {
	for in, want := range map[string]string{"/": ".", "": ".", "/a/../b/": "b", "a/b": "a/b", "../../x": "x"} {
		if got := Rel(in); got != want {
			t.Errorf("Rel(%q) = %q, want %q", in, got, want)
		}
	}
}

func where(t *testing.T, fd int) string {
	t.Helper()
	p, err := os.Readlink(filepath.Join("/proc/self/fd", strconv.Itoa(fd)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSymlinksStayInRoot(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "mt-root")
	outside := filepath.Join(top, "mt-outside")
	for _, d := range []string{root, outside, filepath.Join(root, outside)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// An absolute symlink and a climbing one, both pointing out of root.
	os.Symlink(outside, filepath.Join(root, "abs"))
	os.Symlink("../../../../../..", filepath.Join(root, "up"))
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	fd, err := Open(rfd, "abs")
	if err != nil {
		t.Fatal(err)
	}
	if got := where(t, fd); got != filepath.Join(root, outside) {
		t.Errorf("abs resolved to %s, want %s", got, filepath.Join(root, outside))
	}
	unix.Close(fd)
	fd, err = Open(rfd, "up")
	if err != nil {
		t.Fatal(err)
	}
	if got := where(t, fd); got != root {
		t.Errorf("up resolved to %s, want %s", got, root)
	}
	unix.Close(fd)
	// Magic links are refused.
	if _, err := Open(rfd, "/proc/self/root"); err == nil {
		t.Errorf("magic link opened")
	}
}

func TestCreate(t *testing.T) {
	root := t.TempDir()
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	os.Mkdir(filepath.Join(root, "a"), 0o755)
	// before is told of each component before it exists: the file with
	// the inode it will have once linked in (write ahead).
	var told []string
	var fileIno uint64
	before := func(rel string, ino uint64) {
		if _, err := os.Lstat(filepath.Join(root, rel)); err == nil {
			t.Errorf("before(%q) called after it was made", rel)
		}
		told = append(told, rel)
		if ino != 0 {
			fileIno = ino
		}
	}
	fd, created, err := Create(rfd, "/a/b/c/file", true, before)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if len(created) != 3 || created[0] != "a/b" || created[2] != "a/b/c/file" {
		t.Errorf("created %q", created)
	}
	if strings.Join(told, ",") != strings.Join(created, ",") {
		t.Errorf("before was told %q, made %q", told, created)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "a/b/c/file"), &st); err != nil || st.Ino != fileIno {
		t.Errorf("the file's inode is %d (%v); before was told %d", st.Ino, err, fileIno)
	}
	if st, err := os.Stat(filepath.Join(root, "a/b/c/file")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("file not created: %v", err)
	}
	// A dangling symlink in the way is followed inside root only.
	os.Symlink("/mt-nonexistent-outside", filepath.Join(root, "evil"))
	os.Symlink("../../../mt-rel", filepath.Join(root, "a", "rel"))
	fd, created, err = Create(rfd, "evil/x", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if len(created) != 2 || created[0] != "mt-nonexistent-outside" || created[1] != "mt-nonexistent-outside/x" {
		t.Errorf("created %q", created)
	}
	if _, err := os.Stat("/mt-nonexistent-outside"); err == nil {
		t.Errorf("created outside root")
	}
	fd, created, err = Create(rfd, "a/rel/y", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if len(created) != 2 || created[0] != "mt-rel" || created[1] != "mt-rel/y" {
		t.Errorf("created %q", created)
	}
	if st, err := os.Stat(filepath.Join(root, "mt-rel/y")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("file not created in root: %v", err)
	}
	// A symlink loop ends.
	os.Symlink("loop", filepath.Join(root, "loop"))
	if _, _, err := Create(rfd, "loop/z", false, nil); !errors.Is(err, unix.ELOOP) {
		t.Errorf("loop: %v", err)
	}
}
