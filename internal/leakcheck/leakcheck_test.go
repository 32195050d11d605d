package leakcheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCatchesDeliberateLeaks leaks a named netns, a host link, a mount and a
// child process on purpose and checks that each is reported, then cleans
// them up and checks that the report is empty again.
func TestCatchesDeliberateLeaks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to leak kernel objects on purpose")
	}
	for _, tool := range []string{"ip", "sleep"} {
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
