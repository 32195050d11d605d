package main_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/leakcheck"
)

// onFreshMachine runs the shell script in a private mount namespace whose
// /run is a new, empty tmpfs: a machine on which no named network
// namespace was ever made. $NSH is the nsh binary; "$@" are args. The
// script's last line of output should be report(), which says what is left
// in /run/netns afterwards: its entries, and how many mounts the fresh
// tmpfs has on /run/netns itself (1 once a netns() prepared it).
func onFreshMachine(t *testing.T, script string, args ...string) (string, string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (a mount namespace with a fresh /run)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed (util-linux)")
	}
	leakcheck.Check(t)
	const prelude = `mount -t tmpfs fresh-run /run || exit 99
report() {
	echo "entries=[$(ls -A /run/netns 2>/dev/null | tr '\n' ' ')]" \
		"mounts=$(grep -cE '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ /run/netns .* - tmpfs fresh-run ' /proc/self/mountinfo)"
}
`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", prelude + script, "sh"}, args...)...)
	cmd.Env = append(os.Environ(), "NSH="+nshBin)
	return runCmd(t, cmd)
}

// lastLine returns the last line of s and what precedes it.
func lastLine(s string) (string, string) {
	s = strings.TrimSuffix(s, "\n")
	i := strings.LastIndexByte(s, '\n')
	return s[:i+1], s[i+1:]
}

// The first named netns on a machine where /run/netns never was a mount
// point (a fresh /run) works, says nothing on stderr, and leaves /run/netns
// as "ip netns add" would: one shared bind of itself, no entry.
func TestFreshMachine(t *testing.T) {
	out, stderr, code := onFreshMachine(t, `"$NSH" -c "$1"; echo "exit=$?"; report`, `
a = netns("fresh-a", persist = False)
b = netns("fresh-b", persist = False)
veth("fm-a", "fm-b", ns = a, peer_ns = b, addr = "10.77.0.1/24", peer_addr = "10.77.0.2/24")
r = ping("10.77.0.2", ns = "fresh-a", count = 2, interval = 0.05)
print(r.received)
`)
	if code != 0 || stderr != "" || out != "2\nexit=0\nentries=[] mounts=1\n" {
		t.Errorf("fresh machine: code %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// Item 9: netns(NAME) "creates, or opens if it exists" also when runs ask
// for the same name at once: every run gets the namespace (one makes it,
// the others open it, waiting while it is half made), /run/netns is
// prepared once (not one stacked bind per run), and with persist=False
// only the run that made the namespace deletes it, so nothing is left.
func TestItem9ConcurrentNetnsCreateOrOpen(t *testing.T) {
	out, stderr, code := onFreshMachine(t, `
pids=
for i in 1 2 3 4 5 6 7 8 9 10; do
	"$NSH" -c 'netns("racens", persist = False)' & pids="$pids $!"
done
failed=0
for p in $pids; do wait $p || failed=$((failed + 1)); done
echo "failed=$failed"
report`)
	if code != 0 || out != "failed=0\nentries=[] mounts=1\n" {
		t.Errorf("10 concurrent netns(\"racens\", persist=False): stdout %q, stderr %q", out, stderr)
	}

	// An entry another process is making (it holds the file's lock, as
	// nsh does, until the namespace is mounted) is waited for, not
	// reported as invalid.
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock is not installed (util-linux)")
	}
	out, stderr, code = onFreshMachine(t, `
mkdir -p /run/netns
flock /run/netns/halfmade sh -c 'sleep 0.3; mount --bind /proc/self/ns/net /run/netns/halfmade' &
while [ ! -e /run/netns/halfmade ]; do sleep 0.01; done
"$NSH" -c 'print(netns("halfmade") == namespaces().net)'; echo "exit=$?"
wait
umount /run/netns/halfmade && rm /run/netns/halfmade
report`)
	if code != 0 || stderr != "" || out != "True\nexit=0\nentries=[] mounts=1\n" {
		t.Errorf("a half-made entry: code %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// Item 10: an empty file in /run/netns with no namespace mounted on it (its
// maker was killed between creating and mounting it) is reported as such,
// with the fix, by netns() and by every use of the name; netns_delete()
// removes it, and the name works again.
func TestItem10StaleNetnsEntry(t *testing.T) {
	out, stderr, code := onFreshMachine(t, `
mkdir -p /run/netns && : > /run/netns/probe1
"$NSH" -c 'netns("probe1")'; echo "netns=$?"
"$NSH" -c 'setns("probe1")'; echo "setns=$?"
"$NSH" -c 'netns_delete("probe1"); netns("probe1", persist = False); print("fixed")'; echo "fix=$?"
report`)
	if code != 0 || out != "netns=1\nsetns=1\nfixed\nfix=0\nentries=[] mounts=1\n" {
		t.Errorf("stale entry: code %d, stdout %q, stderr %q", code, out, stderr)
	}
	want := regexp.MustCompile(`network namespace "probe1": "/run/netns/probe1" is an empty file no namespace is mounted on, left by a process killed while making it; remove it with netns_delete\("probe1"\) \(or "ip netns del probe1"\) and try again`)
	if n := len(want.FindAllString(stderr, -1)); n != 2 {
		t.Errorf("want the stale entry explained twice (netns, setns), got %d times in:\n%s", n, stderr)
	}
}
