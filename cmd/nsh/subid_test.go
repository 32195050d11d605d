package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// A user with subordinate ranges gets them mapped by newuidmap after the
// inner rootless nsh started, which then executes itself again to gain its
// capabilities; the kernel clears the parent-death signal then. The inner
// nsh (and so everything of its run) must still die with a SIGKILLed
// supervisor: it arms the signal again.
func TestRootlessSubIDsDieWithSupervisor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a made-up user with subordinate ranges, in a private mount namespace)")
	}
	for _, c := range []string{"newuidmap", "unshare", "setpriv"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is not installed", c)
		}
	}
	const uid = 23457
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(nshBin), 0o755)
	add := func(name, src, line string) string {
		b, _ := os.ReadFile(src)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, append(b, line...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	binds := ""
	for _, f := range [][3]string{
		{"passwd", "/etc/passwd", fmt.Sprintf("nshsubid:x:%d:%d::/tmp:/bin/sh\n", uid, uid)},
		{"group", "/etc/group", fmt.Sprintf("nshsubid:x:%d:\n", uid)},
		{"subuid", "/dev/null", "nshsubid:300000:65536\n"},
		{"subgid", "/dev/null", "nshsubid:300000:65536\n"},
	} {
		binds += fmt.Sprintf("mount --bind %s /etc/%s && ", add(f[0], f[1], f[2]), f[0])
	}
	script := `run("true")` + readyLoop
	cmd := exec.Command("unshare", "-m", "sh", "-c", binds+`exec setpriv --reuid=$0 --regid=$0 --clear-groups env HOME=/tmp "$1" --rootless -c "$2"`,
		fmt.Sprint(uid), nshBin, script)
	waitReady(t, cmd)
	t.Cleanup(func() { exec.Command("pkill", "-9", "-U", fmt.Sprint(uid)).Run() })
	inner := childNamed(cmd.Process.Pid, "nsh")
	if inner == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("no inner nsh below the supervisor")
	}
	if m, _ := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", inner)); !regexpMatch(`300000\s+65536`, string(m)) {
		t.Errorf("the subordinate range is not mapped: %q", m)
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitExited(t, inner, "the inner nsh")
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
