package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/leakcheck"
)

// nsh -x prints what running a script does besides building: the
// processes it starts (as unshare/nsenter command lines), the cgroup
// they are born in, the namespaces unshare() makes (a comment: only
// nsh's descriptors hold them), where setns() moves, id map writes and
// pivot_root; and the kills of teardown. In the setup script of --trace
// they are comments, and the teardown script has no undo of theirs.
func TestTraceRunning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	leakcheck.Check(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	script := filepath.Join(dir, "s.star")
	err := os.WriteFile(script, []byte(`p = clone("sleep 60", "net", "uts", hostname="box", wait=False)
setns(p, "net")
run(["true", "a b"])
q = clone("true", "user", paused=True)
set_idmaps(q, uidmap=[uidmap(0, 0, 1)], gidmap=[gidmap(0, 0, 1)])
q.resume()
q.wait()
unshare("mnt")
mount("tmpfs", `+"\""+root+"\""+`, "tmpfs", mkdir=True)
pivot_root(`+"\""+root+"\""+`)
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	setup := filepath.Join(dir, "s.sh")
	_, stderr, code := nsh(t, "", "-x", "--trace="+setup, script)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	at := func(line string) string { return `\+ ` + regexp.QuoteMeta(script) + ":" + line + ": " }
	cg := `/sys/fs/cgroup/\S+/nsh-\d+-[0-9a-f]+`
	fd := `/proc/\d+/fd/\d+`
	mnt := `nsenter --mount=` + fd + ` `
	matchLines(t, stderr, []string{
		at("1") + `mkdir ` + cg,
		at("1") + `unshare --uts --net sh -c 'hostname box && exec "\$0" "\$@"' sleep 60 &  # pid \d+`,
		at("2") + `# nsenter -t \d+ -n: what follows runs there`,
		at("3") + `nsenter --net=` + fd + ` true 'a b'  # pid \d+`,
		at("4") + `nsenter --net=` + fd + ` unshare --user true &  # pid \d+`,
		at("5") + `echo '0 0 1' > /proc/\d+/uid_map`,
		at("5") + `echo '0 0 1' > /proc/\d+/gid_map`,
		at("8") + `# unshare --mount: nsh holds mnt:\[\d+\] as ` + fd,
		at("9") + mnt + `mkdir -p ` + regexp.QuoteMeta(root) + `  # mnt:\[\d+\]`,
		at("9") + mnt + `mount -t tmpfs tmpfs ` + regexp.QuoteMeta(root) + `  # mnt:\[\d+\]`,
		at("10") + mnt + `sh -c 'cd ` + regexp.QuoteMeta(root) + ` && pivot_root \. \. && mount --make-rslave / && umount -l /'  # mnt:\[\d+\]`,
		`- ` + mnt + `rmdir ` + regexp.QuoteMeta(root) + `  # mnt:\[\d+\]`,
		`- kill -KILL \d+`,
		`- echo 1 > ` + cg + `/cgroup.kill`,
		`- rmdir ` + cg,
	})
	b, err := os.ReadFile(setup)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\n# mkdir /sys/fs/cgroup/", "\n# unshare --uts --net sh -c", "\n# nsenter -t "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("setup script lacks %q:\n%s", want, b)
		}
	}
	b, err = os.ReadFile(filepath.Join(dir, "s.teardown.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "kill") || strings.Contains(string(b), "cgroup") {
		t.Errorf("teardown script undoes what the setup script only notes:\n%s", b)
	}
}
