// Package cgroup makes the cgroup (v2) that holds the processes a run
// starts, so that they and every process they fork, including those that
// left their parent (daemons, background jobs of a shell), can be killed
// together with one write to cgroup.kill (Linux 5.14+), by nsh at the end
// of the run or by its reaper if nsh was killed.
//
// The cgroup is made under nsh's own one in the cgroup2 hierarchy: the
// "0::" line of /proc/self/cgroup, found under the cgroup2 mount in
// /proc/self/mountinfo (on a hybrid host, /sys/fs/cgroup/unified). No
// controller is enabled, so the cgroup changes no resource accounting. A
// process is born in it (clone3 CLONE_INTO_CGROUP with Dir): moving one
// there by a write to cgroup.procs would cost a full RCU grace period.
package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/mountinfo"
	"nsh.dev/nsh/internal/nserr"
)

// Group is a cgroup made for a run.
type Group struct {
	// Path is its directory.
	Path string
	// Dir is its directory, open (O_PATH) for clone3 CLONE_INTO_CGROUP.
	Dir *os.File
}

// ErrNoCgroup2 says there is no cgroup2 hierarchy that holds nsh.
var ErrNoCgroup2 = errors.New("no cgroup2 mount holds nsh's cgroup")

// Own returns the directory of nsh's own cgroup in the cgroup2 hierarchy.
func Own() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", nserr.New("read", "/proc/self/cgroup", err)
	}
	var rel string
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			rel, found = p, true
			break
		}
	}
	if !found || strings.HasSuffix(rel, " (deleted)") {
		return "", ErrNoCgroup2
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", nserr.New("open", "/proc/self/mountinfo", err)
	}
	defer f.Close()
	es, err := mountinfo.Parse(f)
	if err != nil {
		return "", ErrNoCgroup2
	}
	for _, e := range es {
		if e.FSType != "cgroup2" {
			continue
		}
		if e.Root != "/" {
			r, ok := strings.CutPrefix(rel, e.Root)
			if !ok || (r != "" && r[0] != '/') {
				continue
			}
			rel = r
		}
		return filepath.Join(e.Target, rel), nil
	}
	return "", ErrNoCgroup2
}

// Path returns the directory of the cgroup name under nsh's own one,
// which Make makes: known before it exists, so that its removal can be
// arranged first.
func Path(name string) (string, error) {
	own, err := Own()
	if err != nil {
		return "", err
	}
	return filepath.Join(own, name), nil
}

// Create makes the cgroup name under nsh's own one and opens it; see Make.
func Create(name string) (*Group, error) {
	path, err := Path(name)
	if err != nil {
		return nil, err
	}
	return Make(path)
}

// Make makes the cgroup directory path (from Path) and opens it. It fails
// (EACCES, EROFS, ErrNoCgroup2, ENOENT for a kernel without cgroup.kill)
// where nsh may not make one, and then leaves nothing.
func Make(path string) (*Group, error) {
	if err := unix.Mkdir(path, 0o755); err != nil {
		return nil, nserr.New("mkdir", path, err)
	}
	fault.At("cgroup.made")
	g := &Group{Path: path}
	if err := unix.Access(filepath.Join(path, "cgroup.kill"), unix.W_OK); err != nil {
		unix.Rmdir(path)
		return nil, nserr.New("access", filepath.Join(path, "cgroup.kill"), err)
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Rmdir(path)
		return nil, nserr.New("open", path, err)
	}
	g.Dir = os.NewFile(uintptr(fd), path)
	return g, nil
}

// Kill kills every process in the cgroup, waits up to 5 s for them to be
// gone (exited: their parents may reap them later), and removes it.
func (g *Group) Kill() error {
	if g.Dir != nil {
		g.Dir.Close()
		g.Dir = nil
	}
	kill := filepath.Join(g.Path, "cgroup.kill")
	if err := os.WriteFile(kill, []byte("1"), 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed already
		}
		return nserr.New("write", kill, err)
	}
	events := filepath.Join(g.Path, "cgroup.events")
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, err := os.ReadFile(events)
		if err != nil {
			return nserr.New("read", events, err)
		}
		if bytes.Contains(b, []byte("populated 0")) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of cgroup %s still alive 5 s after cgroup.kill", g.Path)
		}
		time.Sleep(time.Millisecond)
	}
	if err := unix.Rmdir(g.Path); err != nil && !errors.Is(err, unix.ENOENT) {
		return nserr.New("rmdir", g.Path, err)
	}
	return nil
}
