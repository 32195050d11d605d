package reaper_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
)

// pair makes a veth pair name/name+"p" through h and returns the index of
// name (this kernel has no dummy links).
func pair(t *testing.T, h *netlink.Handle, name string) int {
	t.Helper()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		t.Fatalf("link add %s: %v", name, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

// start starts a reaper that the test kills at its end if still running.
func start(t *testing.T) *reaper.Reaper {
	t.Helper()
	r, err := reaper.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if unix.Kill(r.Pid(), unix.SIGKILL) == nil {
			unix.Wait4(r.Pid(), nil, 0, nil)
		}
	})
	return r
}

func exists(h *netlink.Handle, name string) bool {
	_, err := h.LinkByName(name)
	return err == nil
}

// waitExit waits for the reaper to end by itself and returns its status.
func waitExit(t *testing.T, r *reaper.Reaper) unix.WaitStatus {
	t.Helper()
	var ws unix.WaitStatus
	if _, err := unix.Wait4(r.Pid(), &ws, 0, nil); err != nil {
		t.Fatalf("wait for the reaper: %v", err)
	}
	return ws
}

// fixture is what each test builds: a host link, a link in a new network
// namespace (so the reaper must enter it), a tmpfs mount on a new
// directory, a file, and a sysctl-like file to write back.
type fixture struct {
	host, inner    *netlink.Handle
	ns             *nsctx.NS
	dir, mnt, file string
	ids            map[string]uint64
}

func setup(t *testing.T, r *reaper.Reaper) *fixture {
	t.Helper()
	tab, err := nsctx.NewTable()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tab.Close() })
	f := &fixture{ids: map[string]uint64{}}
	err = nsthread.Do(nil, func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		nss, err := tab.OpenThreadSelf(unix.CLONE_NEWNET)
		if err != nil {
			return err
		}
		f.ns = nss[0]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.host, err = netlink.NewHandle(); err != nil {
		t.Fatal(err)
	}
	if f.inner, err = netlink.NewHandleAt(netns.NsHandle(f.ns.Fd())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range []string{"rp-host", "rp-kept"} {
			f.host.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}})
		}
		f.host.Close()
		f.inner.Close()
	})
	add := func(key string, ops ...reaper.Op) {
		id, err := r.Add(key, ops...)
		if err != nil {
			t.Fatalf("add %s: %v", key, err)
		}
		f.ids[key] = id
	}
	add("host link", reaper.DelLink(nil, pair(t, f.host, "rp-host"), "rp-host"))
	add("inner link", reaper.DelLink(f.ns, pair(t, f.inner, "rp-inner"), ""))
	add("kept link", reaper.DelLink(nil, pair(t, f.host, "rp-kept"), "rp-kept"))

	f.dir = t.TempDir()
	f.mnt = filepath.Join(f.dir, "m")
	if err := os.Mkdir(f.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", f.mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(f.mnt, unix.MNT_DETACH) })
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, f.mnt, 0, unix.STATX_MNT_ID, &stx); err != nil {
		t.Fatal(err)
	}
	// Unmount, then remove the directory: one record, two steps in order.
	add("mount", reaper.Umount(nil, f.mnt, stx.Mnt_id), reaper.Rmdir(nil, f.mnt))

	f.file = filepath.Join(f.dir, "file")
	if err := os.WriteFile(f.file, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	add("write", reaper.Write(nil, f.file, "old"))
	return f
}

// started is the preamble of the tests that build a fixture: root, the
// leak checker, a reaper and the fixture given to it.
func started(t *testing.T) (*reaper.Reaper, *fixture) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (links in the host, mounts)")
	}
	leakcheck.Check(t)
	r := start(t)
	return r, setup(t, r)
}

// When nsh's end of the socket closes without Stop (nsh died), the reaper
// undoes every record not deleted, in the namespaces they name.
func TestUndoesWhenNshDies(t *testing.T) {
	r, f := started(t)
	if err := r.Del(f.ids["kept link"]); err != nil {
		t.Fatal(err)
	}
	r.Drop() // what nsh's death does to its end of the socket
	if ws := waitExit(t, r); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("reaper ended with %v", ws)
	}
	if exists(f.host, "rp-host") || exists(f.inner, "rp-inner") {
		t.Error("a link the reaper was given is still there")
	}
	if !exists(f.host, "rp-kept") {
		t.Error("the reaper deleted a link whose record was deleted")
	}
	if _, err := os.Stat(f.mnt); !os.IsNotExist(err) {
		t.Errorf("mount point after the reaper: %v (want it unmounted and removed)", err)
	}
	if b, err := os.ReadFile(f.file); err != nil || string(b) != "old" {
		t.Errorf("file after the reaper: %q, %v (want %q)", b, err, "old")
	}
}

// Stop, at the end of a normal run, ends the reaper without any undo.
func TestStopUndoesNothing(t *testing.T) {
	r, f := started(t)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if !exists(f.host, "rp-host") || !exists(f.inner, "rp-inner") || !exists(f.host, "rp-kept") {
		t.Error("a link is gone after Stop")
	}
	if _, err := os.Stat(f.mnt); err != nil {
		t.Errorf("mount point after Stop: %v", err)
	}
	if b, _ := os.ReadFile(f.file); string(b) != "new" {
		t.Errorf("file after Stop: %q, want %q", b, "new")
	}
	if _, err := r.Add("late", reaper.Unlink(nil, f.file, 0)); err == nil {
		t.Error("Add after Stop succeeded")
	}
}

// A mount stacked on the one nsh made is not the reaper's to unmount.
func TestUmountChecksMountID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts)")
	}
	leakcheck.Check(t)
	r := start(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	var first unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID, &first); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add("mount", reaper.Umount(nil, dir, first.Mnt_id)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	r.Drop()
	waitExit(t, r)
	var top unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID, &top); err != nil {
		t.Fatal(err)
	}
	if top.Mnt_id == first.Mnt_id {
		t.Fatal("the second mount was unmounted: the reaper did not check the mount ID")
	}
}

// Ops given ahead of their change (write ahead) act only on what that
// change made: a link by index only under its name, a mount only if it is
// not the one there before, a file only with its inode, a value only over
// the one nsh wrote; and Set replaces a record's ops.
func TestWriteAheadConditions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (links in the host, mounts)")
	}
	leakcheck.Check(t)
	r := start(t)
	host, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	t.Cleanup(func() {
		for _, n := range []string{"rp-mine", "rp-other"} {
			host.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n}})
		}
	})
	set := func(what string, ops ...reaper.Op) uint64 {
		t.Helper()
		id := r.NewID()
		if err := r.Set(id, what, ops...); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// A link nsh meant to make at a chosen index, which failed: the
	// index is now another link's (name differs): kept.
	other := pair(t, host, "rp-other")
	set("other link", reaper.DelLink(nil, other, "rp-would-be"))
	// nsh's link, at an index chosen before it existed: deleted.
	mine := 1<<24 + os.Getpid()
	if err := host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rp-mine", Index: mine}, PeerName: "rp-minep"}); err != nil {
		t.Fatal(err)
	}
	set("my link", reaper.DelLink(nil, mine, "rp-mine"))
	// A link never made: nothing to do, no error.
	set("no link", reaper.DelLink(nil, mine+1, "rp-never"))

	dir := t.TempDir()
	var before unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID, &before); err != nil {
		t.Fatal(err)
	}
	unmounted, untouched := filepath.Join(dir, "m1"), filepath.Join(dir, "m2")
	for _, d := range []string{unmounted, untouched} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("tmpfs", unmounted, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(unmounted, unix.MNT_DETACH) })
	set("mount made", reaper.UmountNew(nil, unmounted, before.Mnt_id))
	set("mount never made", reaper.UmountNew(nil, untouched, before.Mnt_id))

	mineFile, otherFile := filepath.Join(dir, "mine"), filepath.Join(dir, "other")
	for _, p := range []string{mineFile, otherFile} {
		if err := os.WriteFile(p, []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(mineFile, &st); err != nil {
		t.Fatal(err)
	}
	set("my file", reaper.Unlink(nil, mineFile, st.Ino))
	set("not my file", reaper.Unlink(nil, otherFile, st.Ino))

	written, changed := filepath.Join(dir, "written"), filepath.Join(dir, "changed")
	os.WriteFile(written, []byte("new\n"), 0o644)
	os.WriteFile(changed, []byte("someone else's\n"), 0o644)
	set("written", reaper.WriteIf(nil, nil, written, "old", "new"))
	set("changed since", reaper.WriteIf(nil, nil, changed, "old", "new"))

	// Given ahead, then replaced: only the second ops are done.
	replaced := filepath.Join(dir, "replaced")
	os.WriteFile(replaced, []byte("x"), 0o644)
	id := set("replaced", reaper.Unlink(nil, replaced, 0))
	if err := r.Set(id, "replaced", reaper.Write(nil, replaced, "kept")); err != nil {
		t.Fatal(err)
	}

	r.Drop()
	if ws := waitExit(t, r); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("reaper ended with %v", ws)
	}
	if !exists(host, "rp-other") {
		t.Error("the reaper deleted a link by index whose name was not the one given")
	}
	if exists(host, "rp-mine") {
		t.Error("the link at the chosen index, with its name, is still there")
	}
	var now unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, unmounted, 0, unix.STATX_MNT_ID, &now); now.Mnt_id != before.Mnt_id {
		t.Error("a mount made on a path the reaper was told of is still there")
	}
	if _, err := os.Stat(untouched); err != nil {
		t.Errorf("a path never mounted on: %v", err)
	}
	if _, err := os.Stat(mineFile); !os.IsNotExist(err) {
		t.Errorf("the file with the given inode: %v, want it removed", err)
	}
	if _, err := os.Stat(otherFile); err != nil {
		t.Errorf("a file with another inode was removed: %v", err)
	}
	if b, _ := os.ReadFile(written); string(b) != "old\n" { // written over "new\n", as to /proc/sys
		t.Errorf("value nsh wrote: %q after the reaper, want %q", b, "old\n")
	}
	if b, _ := os.ReadFile(changed); string(b) != "someone else's\n" {
		t.Errorf("a value changed since nsh wrote it: %q after the reaper, want it left", b)
	}
	if b, err := os.ReadFile(replaced); err != nil || string(b) != "kept" {
		t.Errorf("replaced record: %q, %v; want the file kept and written", b, err)
	}
}
