package leakcheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"nsh.dev/nsh/internal/mountinfo"
)

// TestCatchesDeliberateLeaks leaks a named netns, a host link, a mount and a
// child process on purpose and checks that each is reported, then cleans
// them up and checks that the report is empty again.
func TestCatchesDeliberateLeaks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to leak kernel objects on purpose")
	}
	for _, tool := range []string{"ip", "sleep", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	before, err := Take()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	sh("ip", "netns", "add", "leakcheck-test")
	sh("ip", "link", "add", "lc-a", "type", "veth", "peer", "name", "lc-b")
	sh("mount", "-t", "tmpfs", "leaktest", dir)
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	after, err := Take()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(before, after), "\n")
	for _, want := range []string{"named netns leakcheck-test", "host link lc-a(veth)", "host link lc-b(veth)", "mount " + dir + " tmpfs leaktest", "sleep"} {
		if !strings.Contains(got, want) {
			t.Errorf("leak of %q not reported; report:\n%s", want, got)
		}
	}
	child.Process.Kill()
	child.Wait()
	sh("umount", dir)
	sh("ip", "link", "del", "lc-a")
	sh("ip", "netns", "del", "leakcheck-test")
	Settle = 2 * time.Second
	left, err := Wait(before)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("after cleanup still reported: %v", left)
	}
}

// TestNetnsDirPreparedIsNoLeak: on a machine where /run/netns was no mount
// point, the first named netns makes it a shared bind of itself (as "ip
// netns add" does). That one change is not a leak; anything else about
// /run/netns still is.
func TestNetnsDirPreparedIsNoLeak(t *testing.T) {
	// A fresh machine's view: / on ext4 with an old /run/netns bind hidden
	// under a tmpfs on /run (as in a private mount namespace with a fresh
	// /run), and nothing on /run/netns.
	base := []string{
		"94 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
		"114 94 254:0 /run/netns /run/netns rw,relatime shared:2 - ext4 /dev/vda rw",
		"115 94 0:42 / /run rw,relatime - tmpfs tmpfs rw",
	}
	snap := func(lines []string, netns ...string) Snapshot {
		t.Helper()
		var es []mountinfo.Entry
		for _, l := range lines {
			e, err := mountinfo.ParseLine(l)
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
		var s Snapshot
		s.Mounts, s.NetnsDir = fromMountinfo(es)
		s.Netns = netns
		return s
	}
	before := snap(base)
	if before.NetnsDir != "" {
		t.Fatalf("a hidden mount counted as /run/netns's: %q", before.NetnsDir)
	}
	with := func(lines ...string) []string { return append(append([]string{}, base...), lines...) }
	selfBind := "116 115 0:42 /netns /run/netns rw,relatime shared:4 - tmpfs tmpfs rw"
	for _, c := range []struct {
		name  string
		after Snapshot
		want  []string
	}{
		{"prepared", snap(with(selfBind)), nil},
		{"prepared with an entry left", snap(with(selfBind, "141 116 0:4 net:[4026532503] /run/netns/x rw shared:5 - nsfs nsfs rw"), "x"),
			[]string{"named netns x", "mount /run/netns tmpfs tmpfs", "mount /run/netns/x nsfs nsfs"}},
		{"private bind", snap(with("116 115 0:42 /netns /run/netns rw,relatime - tmpfs tmpfs rw")),
			[]string{"mount /run/netns tmpfs tmpfs"}},
		{"two binds stacked", snap(with(selfBind, "117 116 0:42 /netns /run/netns rw,relatime shared:4 - tmpfs tmpfs rw")),
			[]string{"mount /run/netns tmpfs tmpfs", "mount /run/netns tmpfs tmpfs"}},
		{"another filesystem", snap(with("116 115 0:50 / /run/netns rw,relatime shared:4 - tmpfs other rw")),
			[]string{"mount /run/netns tmpfs other"}},
		{"another directory", snap(with("116 115 0:42 /elsewhere /run/netns rw,relatime shared:4 - tmpfs tmpfs rw")),
			[]string{"mount /run/netns tmpfs tmpfs"}},
	} {
		got := Diff(before, c.after)
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s: Diff = %q, want %q", c.name, got, c.want)
		}
	}
	// Already prepared before: a second bind is a leak.
	prepared := snap(with(selfBind))
	if got := Diff(prepared, snap(with(selfBind, "117 116 0:42 /netns /run/netns rw,relatime shared:4 - tmpfs tmpfs rw"))); len(got) != 1 {
		t.Errorf("a bind stacked on a prepared /run/netns: Diff = %q", got)
	}
}
