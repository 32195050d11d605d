package mountuse

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The test process itself holds the mount of a temporary directory: its
// working directory is there and a file there is open.
func TestHoldersFindsCwdAndOpenFile(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Chdir(dir)
	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID, &sx); err != nil {
		t.Fatal(err)
	}
	proc, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(proc)
	id := int(sx.Mnt_id)
	me := "pid " + strconv.Itoa(os.Getpid()) + " ("
	var mine string
	for _, h := range Holders(proc, id) {
		if strings.HasPrefix(h, me) {
			mine = h
		}
	}
	if !strings.Contains(mine, "working directory") || !strings.Contains(mine, "open file") {
		t.Errorf("Holders of mount %d: want this process with its working directory and an open file, got %q", id, mine)
	}
	err = UmountError(proc, id, strconv.Quote(dir), unix.EBUSY)
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "in use by pid ") || !strings.HasSuffix(err.Error(), "; pass detach=True for a lazy unmount)") {
		t.Errorf("UmountError: %v", err)
	}
	if err := UmountError(proc, id, "x", unix.EINVAL); strings.Contains(err.Error(), "in use by") {
		t.Errorf("UmountError names holders for EINVAL: %v", err)
	}
}
