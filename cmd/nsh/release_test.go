package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/leakcheck"
)

// TestItem7NamespacesReleased: a loop that makes a network namespace and
// drops it used to keep two descriptors per namespace (the namespace and
// its netlink socket) until the end of the run: EMFILE at iteration 118
// under ulimit -n 256 (issue 15 item 7). Now a namespace nothing references
// is released, and one that a value, a link or the context still
// references stays usable.
func TestItem7NamespacesReleased(t *testing.T) {
	leakcheck.Check(t) // as root and rootless alike
	script := `
def check(ok, what):
    if not ok:
        fail(what)

def fds():
    return int(run(["sh", "-c", "ls /proc/$PPID/fd | wc -l"]).stdout.strip())

start = namespaces()
kept = []   # values: the namespace must stay usable
links = []  # link objects: their namespace too
most = 0
for i in range(600):
    n = unshare("net")
    if i % 100 == 0:
        kept.append(n)
    if i % 100 == 50:
        a, _ = veth("it7a", "it7b", addr = "10.7.0.1/24", peer_addr = "10.7.0.2/24")
        links.append(a)
    setns(start)
    if i % 50 == 0:
        most = max(most, fds())
most = max(most, fds())
print("most", most)

# Every kept namespace is still the one it was, and usable.
for k in kept:
    setns(k)
    check(namespaces().net == k.net, "kept namespace %s changed" % k.net)
    check(link("lo").is_up, "lo down in a kept namespace")
    x, _ = veth("it7x", "it7y")
    x.delete()
setns(start)
for a in links:
    check(link("it7a", ns = a.ns) == a, "link %s lost" % a)
    check(ping("10.7.0.2", ns = a.ns).ok, "no ping in the namespace of %s" % a)
# The current context alone holds a namespace too: made once, then only
# the context refers to it while other namespaces come and go (opened
# from processes, without leaving the context).
unshare("net")
veth("it7c", "it7d", addr = "10.8.0.1/24", peer_addr = "10.8.0.2/24")
ino = namespaces().net.inode
kept = None
links = None
for i in range(40):
    p = clone(["sleep", "5"], "net", wait = False)
    namespaces(p)
    p.kill("SIGKILL")
    p.wait()
check(namespaces().net.inode == ino, "the current namespace changed")
check(link("lo").is_up and link("it7c").is_up, "the current namespace lost its links")
check(ping("10.8.0.2").ok, "no ping in the current namespace")
print("end", fds())
`
	path := filepath.Join(t.TempDir(), "item7.star")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCmd(t, exec.Command("sh", "-c", `ulimit -n 256 && exec "$0" "$1"`, nshBin, path))
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("unexpected output %q", out)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("unexpected output %q", out)
		}
		// nsh's own descriptors (~20), at most 2*32 of dropped
		// namespaces before a sweep, and 2 per kept namespace.
		if n > 110 {
			t.Errorf("%s: %d descriptors open; the namespaces were not released", f[0], n)
		}
	}
	t.Logf("%s", out)
}
