package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	at := `\+ \.\./\.\./scripts/two-netns-ping\.star:20: `
	netnsNew := func(line, label string) []string {
		at := `\+ \.\./\.\./scripts/two-netns-ping\.star:` + line + `: `
		return []string{
			at + `# unshare --net: nsh holds net:` + label + ` \[\d+\] as /proc/\d+/fd/\d+`,
			at + fd + `ip link set dev lo up`,
		}
	}
	red, blue := netnsNew("14", "red"), netnsNew("15", "blue")
	matchLines(t, stderr, []string{
		red[0], red[1],
		blue[0], blue[1],
		at + fd + `ip link add name veth-red up type veth peer name veth-blue netns /proc/\d+/fd/\d+`,
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
		at("1") + `ip netns add nsh-tr-red`,
		at("1") + `ip -n nsh-tr-red link set dev lo up`,
		at("2") + `ip netns add nsh-tr-blue`,
		at("2") + `ip -n nsh-tr-blue link set dev lo up`,
		`nsh: veth: creating in the host's network namespace; pass ns= to build elsewhere \(nsh --no-host-note hides this note\)`,
		at("3") + `ip link add name nsh-tr-a up type veth peer name nsh-tr-b netns nsh-tr-red`,
		at("3") + `ip addr add 10\.77\.0\.1/24 dev nsh-tr-a`,
		at("3") + `ip -n nsh-tr-red addr add 10\.77\.0\.2/24 dev nsh-tr-b`,
		at("3") + `ip -n nsh-tr-red link set dev nsh-tr-b up`,
		at("4") + `ip route add 10\.78\.0\.0/16 via 10\.77\.0\.2`,
		at("5") + `ip -n nsh-tr-red link add name nsh-tr-br type bridge`,
		at("6") + `ip -n nsh-tr-red link set dev nsh-tr-b master nsh-tr-br`,
		at("7") + `ip -n nsh-tr-red link set dev nsh-tr-b mtu 1400`,
		at("8") + `ip -n nsh-tr-red link set dev nsh-tr-b netns nsh-tr-blue`,
		at("9") + `ip -n nsh-tr-blue addr add 10\.77\.0\.2/24 dev nsh-tr-b`,
		at("10") + `ip -n nsh-tr-blue link set dev nsh-tr-b up`,
		at("11") + `ip -n nsh-tr-blue route add default via 10\.77\.0\.1 dev nsh-tr-b`,
		at("12") + `ip netns exec nsh-tr-blue sysctl -q -w net\.ipv4\.ip_forward=1`,
		at("13") + `# unshare --uts: nsh holds uts:\[\d+\] as /proc/\d+/fd/\d+`,
		at("14") + `nsenter --uts=/proc/\d+/fd/\d+ hostname box  # uts:\[\d+\]`,
		// Teardown, newest first; what sits in the dying namespaces
		// (the bridge, the route in nsh-tr-blue) goes with them.
		`- ip route del 10\.78\.0\.0/16 via 10\.77\.0\.2`,
		`- ip link del dev nsh-tr-a`,
		`- ip netns del nsh-tr-blue`,
		`- ip netns del nsh-tr-red`,
	})
}

// snapshotCmd prints what the comparison of TestTraceScripts looks at in
// each of the given named network namespaces.
const snapshotCmd = `for n in "$@"; do
	echo "== $n"
	ip -n "$n" -o -d link show
	ip -n "$n" -o addr show
	ip -n "$n" route show
	ip -n "$n" -6 route show
	ip netns exec "$n" cat /proc/sys/net/ipv4/ip_forward
done`

// normalizeSnapshot keeps of snapshotCmd's output what a rebuild must
// reproduce: per namespace, each link's name, kind, admin state, MTU and
// master; addresses (but link-local ones, which derive from random MACs);
// routes (but link-local ones and the carrier-timing flag linkdown); the
// forwarding sysctl. Interface indexes, MACs and operational state are not
// compared.
func normalizeSnapshot(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case strings.HasPrefix(line, "== "), len(f) == 1: // namespace; ip_forward
			out = append(out, line)
		case strings.Contains(line, "link/"): // ip -o -d link show
			seg := strings.Split(line, `\`)
			h := strings.Fields(seg[0])
			name, _, _ := strings.Cut(strings.TrimSuffix(h[1], ":"), "@")
			up := strings.Contains(h[2], ",UP") || strings.Contains(h[2], "<UP")
			l := fmt.Sprintf("link %s up=%v", name, up)
			for i := 3; i+1 < len(h); i++ {
				if h[i] == "mtu" || h[i] == "master" {
					l += " " + h[i] + " " + h[i+1]
				}
			}
			if len(seg) > 2 {
				if k := strings.Fields(seg[2]); len(k) > 0 && (k[0] == "veth" || k[0] == "bridge" || k[0] == "vxlan") {
					l += " " + k[0]
				}
			}
			out = append(out, l)
		case len(f) > 3 && (f[2] == "inet" || f[2] == "inet6"): // ip -o addr show
			if !strings.HasPrefix(f[3], "fe80:") {
				out = append(out, "addr "+f[1]+" "+f[3])
			}
		default: // a route
			if !strings.HasPrefix(line, "fe80:") && !strings.HasPrefix(line, "multicast") {
				out = append(out, "route "+strings.Join(slices.DeleteFunc(f, func(x string) bool { return x == "linkdown" }), " "))
			}
		}
	}
	return out
}

// nsh --trace=FILE writes a setup script that rebuilds, with iproute2 alone
// on a machine without what nsh made, the same namespaces, links,
// addresses, routes and sysctls (a VXLAN link born in another namespace
// than its underlay's among them); and a teardown script that leaves
// nothing. (The tests run on a "clean machine": a private net and mount
// namespace with its own /run.)
func TestTraceScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, cmd := range []string{"ip", "sysctl"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("needs %s", cmd)
		}
	}
	leakcheck.Check(t)
	dir := t.TempDir()
	names := []string{"trs-r", "trs-m", "trs-b"}
	script := filepath.Join(dir, "lab.star")
	err := os.WriteFile(script, []byte(`r = netns("trs-r", persist=False)
m = netns("trs-m", persist=False)
b = netns("trs-b", persist=False, lo=False)
ra, ma = veth("trs-ra", "trs-ma", ns=r, peer_ns=m, addr=["10.81.1.1/24", "fd81:1::1/64"])
bb, mb = veth("trs-bb", "trs-mb", ns=b, peer_ns=m, addr="10.81.1.2/24", mtu=1400)
br = bridge("trs-br", ns=m)
ma.set_master(br)
mb.set_master("trs-br")
br.add_addr("10.81.1.254/24")
route("default", via="10.81.1.254", ns=r)
route("default", via="fd81:1::fe", ns=r)
route("10.99.0.0/16", dev=bb)
x, y = veth("trs-x", "trs-y", ns=r, peer_ns=r, up=False)
y.move(b)
y.set_mtu(1300)
y.add_addr("10.82.0.2/24")
y.up()
x.up()
x.down()
sysctl("net.ipv4.ip_forward", 1, ns=m)
start = namespaces()
setns(m)
vxlan("trs-vx", 77, remote="10.81.1.1", dev="trs-br", ns=b, addr="10.83.0.2/24", learning=False)
setns(start)
print(run(["sh", "-c", `+"'''"+snapshotCmd+"'''"+`, "sh", "trs-r", "trs-m", "trs-b"]).stdout)
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	setup := filepath.Join(dir, "lab.sh")
	built, stderr, code := nsh(t, "", "--trace="+setup, script)
	if code != 0 {
		t.Fatalf("nsh: exit %d: %s", code, stderr)
	}
	want := normalizeSnapshot(built)
	if len(want) < 20 {
		t.Fatalf("the snapshot of nsh's build is too short:\n%s", built)
	}
	if !slices.Contains(want, "link trs-vx up=true mtu 1350 vxlan") {
		t.Fatalf("the snapshot of nsh's build has no VXLAN link trs-vx (mtu 1400 - 50):\n%s", strings.Join(want, "\n"))
	}
	if _, err := os.Stat("/run/netns/trs-r"); err == nil {
		t.Fatal("nsh left trs-r")
	}
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("sh", args...).CombinedOutput()
		if err != nil {
			b, _ := os.ReadFile(args[0])
			t.Fatalf("sh %s: %v\n%s\nscript:\n%s", args[0], err, out, b)
		}
		return string(out)
	}
	if out := sh(setup); out != "" {
		t.Errorf("the setup script printed %q", out)
	}
	rebuilt := sh(append([]string{"-c", snapshotCmd, "sh"}, names...)...)
	if got := normalizeSnapshot(rebuilt); !slices.Equal(got, want) {
		b, _ := os.ReadFile(setup)
		t.Errorf("the setup script built\n%s\nnsh built\n%s\nsetup script:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), b)
	}
	if out := sh(filepath.Join(dir, "lab.teardown.sh")); out != "" {
		t.Errorf("the teardown script printed %q", out)
	}
	for _, n := range names {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			t.Errorf("the teardown script left %s", n)
		}
	}
}

// --trace needs a file name; a run that fails before it starts writes no
// scripts.
func TestTraceUsage(t *testing.T) {
	if _, stderr, code := nsh(t, "", "--trace=", "-c", "pass"); code != 2 || !strings.Contains(stderr, "--trace: needs a file name") {
		t.Errorf("--trace=: exit %d, %q", code, stderr)
	}
	setup := filepath.Join(t.TempDir(), "lab.sh")
	if _, _, code := nsh(t, "", "--trace", setup, "/no/such/file.star"); code != 2 {
		t.Errorf("missing file: exit %d", code)
	}
	if _, err := os.Stat(setup); err == nil {
		t.Errorf("a run that did not start wrote %s", setup)
	}
}

// -x works with -c too; positions read "-c:LINE".
func TestTraceOneLiner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	leakcheck.Check(t)
	_, stderr, code := nsh(t, "", "-x", "-c", "unshare(\"net\")\nveth(\"t1\", \"t2\", up=False, addr=\"10.83.0.1/24\")")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	fd := `nsenter --net=/proc/\d+/fd/\d+ `
	matchLines(t, stderr, []string{
		`\+ -c:1: # unshare --net: nsh holds net:\[\d+\] as /proc/\d+/fd/\d+`,
		`\+ -c:1: ` + fd + `ip link set dev lo up`,
		`\+ -c:2: ` + fd + `ip link add name t1 type veth peer name t2`,
		`\+ -c:2: ` + fd + `ip addr add 10\.83\.0\.1/24 dev t1`,
	})
}

// A rate limit is traced as its tc command, and the default qdisc it
// restores at the end of the run as its teardown; shaping the link again
// replaces the qdisc but restores it once. In a namespace the run only
// opened (made by ip) the qdisc is undone; in one it made and keeps
// (netns()), the qdisc is kept with the namespace (issue 21 item 7) and
// only the link the run made is deleted.
func TestTraceQdisc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	leakcheck.Check(t)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", "nsh-tq-red").Run() })
	for _, c := range [][]string{
		{"ip", "netns", "add", "nsh-tq-red"},
		{"ip", "-n", "nsh-tq-red", "link", "add", "nsh-tq-a", "type", "veth", "peer", "nsh-tq-b"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	_, stderr, code := nsh(t, "", "-x", "-c", `a = link("nsh-tq-a", ns="nsh-tq-red")
a.netem(rate="16mbit")
a.netem(rate=2000000000)`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	matchLines(t, stderr, []string{
		`\+ -c:2: tc -n nsh-tq-red qdisc replace dev nsh-tq-a root handle 1: tbf rate 16mbit burst 20000 limit 120000`,
		`\+ -c:3: tc -n nsh-tq-red qdisc replace dev nsh-tq-a root handle 1: tbf rate 2gbit burst 2500000 limit 15000000`,
		`- tc -n nsh-tq-red qdisc del dev nsh-tq-a root`,
	})
	if out, err := exec.Command("ip", "netns", "del", "nsh-tq-red").CombinedOutput(); err != nil {
		t.Fatalf("ip netns del nsh-tq-red: %v %s", err, out)
	}

	_, stderr, code = nsh(t, "", "-x", "-c", `r = netns("nsh-tq-red")
a, b = veth("nsh-tq-a", "nsh-tq-b", ns=r, peer_ns=r)
a.netem(rate="16mbit")`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	matchLines(t, stderr, []string{
		`\+ -c:1: ip netns add nsh-tq-red`,
		`\+ -c:1: ip -n nsh-tq-red link set dev lo up`,
		`\+ -c:2: ip -n nsh-tq-red link add name nsh-tq-a up type veth peer name nsh-tq-b`,
		`\+ -c:2: ip -n nsh-tq-red link set dev nsh-tq-b up`,
		`\+ -c:3: tc -n nsh-tq-red qdisc replace dev nsh-tq-a root handle 1: tbf rate 16mbit burst 20000 limit 120000`,
		`- ip -n nsh-tq-red link del dev nsh-tq-a`,
	})
}

// nsh -x prints mounts and the directories mkdir=True makes for them, in a
// mount namespace of the run (entered with nsenter; the mount goes with
// the namespace, only its directories are removed) and in nsh's own (
// unmounted at teardown); an unmounted mount's teardown is only rmdir.
func TestTraceMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	leakcheck.Check(t)
	d := t.TempDir()
	script := fmt.Sprintf(`mount("tmpfs", %[1]q, "tmpfs", options="size=1m", mkdir=True)
mount("tmpfs", %[2]q, "tmpfs", mkdir=True)
umount(%[2]q)
unshare("mnt")
mount(target="/", propagation="slave", recursive=True)
mount("tmpfs", %[3]q, "tmpfs", mkdir=True)
mount("/usr", %[3]q + "/usr", bind=True, readonly=True, mkdir=True)`, d+"/host/m", d+"/gone/m", d+"/box")
	_, stderr, code := nsh(t, "", "-x", "-c", script)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	q := regexp.QuoteMeta(d)
	ns := `nsenter --mount=/proc/\d+/fd/\d+ `
	mnt := `  # mnt:\[\d+\]`
	matchLines(t, stderr, []string{
		`\+ -c:1: mkdir -p ` + q + `/host/m`,
		`\+ -c:1: mount -t tmpfs -o size=1m tmpfs ` + q + `/host/m`,
		`\+ -c:2: mkdir -p ` + q + `/gone/m`,
		`\+ -c:2: mount -t tmpfs tmpfs ` + q + `/gone/m`,
		`\+ -c:3: umount ` + q + `/gone/m`,
		`\+ -c:4: # unshare --mount: nsh holds mnt:\[\d+\] as /proc/\d+/fd/\d+`,
		`\+ -c:5: ` + ns + `mount --make-rslave /` + mnt,
		`\+ -c:6: ` + ns + `mkdir -p ` + q + `/box` + mnt,
		`\+ -c:6: ` + ns + `mount -t tmpfs tmpfs ` + q + `/box` + mnt,
		`\+ -c:7: ` + ns + `mkdir -p ` + q + `/box/usr` + mnt,
		`\+ -c:7: ` + ns + `mount --bind -o ro /usr ` + q + `/box/usr` + mnt,
		// Teardown, newest first: in the run's namespace only what
		// mkdir=True made (box/usr was on the namespace's tmpfs, but
		// nsh does not tell).
		`- ` + ns + `rmdir ` + q + `/box/usr` + mnt,
		`- ` + ns + `rmdir ` + q + `/box` + mnt,
		`- rmdir ` + q + `/gone/m ` + q + `/gone`,
		`- umount ` + q + `/host/m`,
		`- rmdir ` + q + `/host/m ` + q + `/host`,
	})
	for _, p := range []string{"/host", "/gone", "/box"} {
		if _, err := os.Stat(d + p); !os.IsNotExist(err) {
			t.Errorf("%s%s left behind (%v)", d, p, err)
		}
	}
}
