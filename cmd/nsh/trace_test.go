package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/leakcheck"
)

// matchLines checks that got's lines match want's regexps one for one.
func matchLines(t *testing.T, got string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), got)
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(lines[i]) {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, lines[i], w)
		}
	}
}

// nsh -x prints the equivalent command of every change of the demo script,
// with the script line that made it; namespaces held only by nsh's
// descriptors are entered with nsenter.
func TestTraceTwoNetnsPing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	leakcheck.Check(t)
	out, stderr, code := nsh(t, "", "-x", "../../scripts/two-netns-ping.star")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
	fd := `nsenter --net=/proc/\d+/fd/\d+ `
	at := `\+ \.\./\.\./scripts/two-netns-ping\.star:23: `
	matchLines(t, stderr, []string{
		at + fd + `ip link add veth-red up type veth peer name veth-blue netns /proc/\d+/fd/\d+`,
		at + fd + `ip addr add 10\.0\.0\.1/24 dev veth-red`,
		at + fd + `ip addr add fd00::1/64 dev veth-red nodad`,
		at + fd + `ip addr add 10\.0\.0\.2/24 dev veth-blue`,
		at + fd + `ip addr add fd00::2/64 dev veth-blue nodad`,
		at + fd + `ip link set dev veth-blue up`,
	})
	// Without -x, nothing is printed on stderr.
	if _, stderr, code := nsh(t, "", "../../scripts/two-netns-ping.star"); code != 0 || stderr != "" {
		t.Fatalf("without -x: exit %d, stderr %q", code, stderr)
	}
}

// nsh -x names named namespaces with ip -n, traces routes, link settings,
// sysctl writes and hostnames, and marks the undos of teardown with "-".
func TestTraceTeardown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	leakcheck.Check(t)
	script := filepath.Join(t.TempDir(), "t.star")
	err := os.WriteFile(script, []byte(`r = netns("nsh-tr-red", persist=False)
b = netns("nsh-tr-blue", persist=False)
x, y = veth("nsh-tr-a", "nsh-tr-b", peer_ns=r, addr="10.77.0.1/24", peer_addr="10.77.0.2/24")
route("10.78.0.0/16", via="10.77.0.2")
br = bridge("nsh-tr-br", ns=r, up=False)
y.set_master(br)
y.set_mtu(1400)
y.move(b)
y.add_addr("10.77.0.2/24")
y.up()
route("default", via="10.77.0.1", dev=y)
sysctl("net.ipv4.ip_forward", 1, ns=b)
unshare("uts")
hostname("box")
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := nsh(t, "", "-x", script)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
	at := func(line string) string { return `\+ ` + regexp.QuoteMeta(script) + ":" + line + ": " }
	matchLines(t, stderr, []string{
		at("3") + `ip link add nsh-tr-a up type veth peer name nsh-tr-b netns nsh-tr-red`,
		at("3") + `ip addr add 10\.77\.0\.1/24 dev nsh-tr-a`,
		at("3") + `ip -n nsh-tr-red addr add 10\.77\.0\.2/24 dev nsh-tr-b`,
		at("3") + `ip -n nsh-tr-red link set dev nsh-tr-b up`,
		at("4") + `ip route add 10\.78\.0\.0/16 via 10\.77\.0\.2`,
		at("5") + `ip -n nsh-tr-red link add nsh-tr-br type bridge`,
		at("6") + `ip -n nsh-tr-red link set dev nsh-tr-b master nsh-tr-br`,
		at("7") + `ip -n nsh-tr-red link set dev nsh-tr-b mtu 1400`,
		at("8") + `ip -n nsh-tr-red link set dev nsh-tr-b netns nsh-tr-blue`,
		at("9") + `ip -n nsh-tr-blue addr add 10\.77\.0\.2/24 dev nsh-tr-b`,
		at("10") + `ip -n nsh-tr-blue link set dev nsh-tr-b up`,
		at("11") + `ip -n nsh-tr-blue route add default via 10\.77\.0\.1 dev nsh-tr-b`,
		at("12") + `ip netns exec nsh-tr-blue sysctl -w net\.ipv4\.ip_forward=1`,
		at("14") + `nsenter --uts=/proc/\d+/fd/\d+ hostname box  # uts:\[\d+\]`,
		// Teardown, newest first; what sits in the dying namespaces
		// (the bridge, the route in nsh-tr-blue) goes with them.
		`- ip route del 10\.78\.0\.0/16 via 10\.77\.0\.2`,
		`- ip link del nsh-tr-a`,
	})
}
