package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/topo"
)

// labNames are the namespaces of the round-trip lab.
var labNames = []string{"xh1", "xr", "xh2"}

// buildLab makes, with ip(8), three namespaces: xh1 and xh2 on a bridge
// of xr (ports p1, p2), xh2 also on a routed link p3 of xr (MTU 1400 at
// both ends), a pair between xh1 and xh2 that is down, IPv4 and IPv6
// addresses, static routes (through xr, by device only, via an IPv6
// link-local gateway), tbf rate limits, and forwarding on in xr.
func buildLab(t *testing.T) {
	t.Helper()
	script := `
for n in xh1 xr xh2; do ip netns add $n; ip -n $n link set lo up; done
ip link add eth0 netns xh1 type veth peer p1 netns xr
ip link add eth0 netns xh2 type veth peer p2 netns xr
ip link add eth1 netns xh2 mtu 1400 type veth peer p3 netns xr mtu 1400
ip link add spare netns xh1 type veth peer spare netns xh2
ip -n xr link add br0 type bridge
ip -n xr link set p1 master br0
ip -n xr link set p2 master br0
for l in br0 p1 p2 p3; do ip -n xr link set $l up; done
ip -n xh1 link set eth0 up
for l in eth0 eth1; do ip -n xh2 link set $l up; done
ip -n xr addr add 10.0.0.254/24 dev br0
ip -n xr addr add fd00::fe/64 dev br0 nodad
ip -n xr addr add 10.0.2.254/24 dev p3
ip -n xr addr add fd00:2::fe/64 dev p3 nodad
ip -n xh1 addr add 10.0.0.1/24 dev eth0
ip -n xh1 addr add fd00::1/64 dev eth0 nodad
ip -n xh2 addr add 10.0.0.2/24 dev eth0
ip -n xh2 addr add 10.0.2.1/24 dev eth1
ip -n xh2 addr add fd00:2::1/64 dev eth1 nodad
ip -n xh1 route add 10.0.2.0/24 via 10.0.0.254
ip -n xh1 route add fd00:2::/64 via fd00::fe dev eth0
ip -n xh2 route add 10.0.3.0/24 dev eth1
ip -n xh2 -6 route add default dev eth1
ip -n xh2 -6 route add fd00:5::/64 via fe80::1 dev eth1
tc -n xh1 qdisc add dev eth0 root tbf rate 8mbit burst 32kb latency 50ms
tc -n xr qdisc add dev p3 root tbf rate 100mbit burst 64kb latency 20ms
ip netns exec xr sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'
`
	if out, err := exec.Command("sh", "-ec", script).CombinedOutput(); err != nil {
		t.Fatalf("building the lab with ip: %v\n%s", err, out)
	}
}

// deleteLab deletes the lab's namespaces and waits until they are gone.
func deleteLab(t *testing.T) {
	t.Helper()
	for _, n := range labNames {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			if out, err := exec.Command("ip", "netns", "del", n).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v\n%s", n, err, out)
			}
		}
	}
}

func readLab(t *testing.T) *topo.Topology {
	t.Helper()
	tp, err := topo.Read(labNames)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestExportRoundTrip builds a lab with ip(8), exports it, deletes it,
// rebuilds it from the recipe, and compares the two live states: with
// --persist under plain nsh, and without, as "nsh up" will run it (here a
// plain run that holds still while the state is read).
func TestExportRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("nsh export reads other network namespaces, which needs root")
	}
	for _, cmd := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("the test builds its lab with %s(8), which is not installed", cmd)
		}
	}
	leakcheck.Check(t)
	t.Cleanup(func() { deleteLab(t) })
	buildLab(t)
	before := readLab(t)
	recipe, stderr, code := nsh(t, "", append([]string{"export"}, labNames...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("nsh export: exit %d\n%s", code, stderr)
	}
	persistent, stderr, code := nsh(t, "", append([]string{"export", "--persist"}, labNames...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("nsh export --persist: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		`xr_br0 = bridge("br0", ns=xr)`,
		`xh1_eth0, xr_p1 = veth("eth0", "p1", ns=xh1, peer_ns=xr,`,
		`xr_p1.set_master(xr_br0)`,
		`mtu=1400`,
		`xh1_eth0.netem(rate=8000000)`,
		`route("10.0.2.0/24", via="10.0.0.254", dev="eth0", ns=xh1)`,
		`sysctl("net.ipv4.ip_forward", "1", ns=xr)  # default 0`,
	} {
		if !strings.Contains(recipe, want) {
			t.Errorf("the recipe lacks %q:\n%s", want, recipe)
		}
	}
	if strings.Contains(recipe, "Not rebuilt") {
		t.Errorf("the recipe leaves something out:\n%s", recipe)
	}
	for flag, want := range map[string]string{"--dot": before.DOT(), "--mermaid": before.Mermaid()} {
		out, stderr, code := nsh(t, "", append([]string{"graph", "--netns", flag}, labNames...)...)
		if code != 0 || out != want || !strings.Contains(out, "xr_br0") && !strings.Contains(out, "xr/br0") {
			t.Errorf("nsh graph --netns %s: exit %d\n%s\n%s\nwant:\n%s", flag, code, stderr, out, want)
		}
	}
	dir := t.TempDir()

	t.Run("persist", func(t *testing.T) {
		deleteLab(t)
		file := filepath.Join(dir, "persist.star")
		os.WriteFile(file, []byte(persistent), 0o644)
		if _, stderr, code := nsh(t, "", file); code != 0 {
			t.Fatalf("nsh %s: exit %d\n%s\n%s", file, code, stderr, persistent)
		}
		if after := readLab(t); !reflect.DeepEqual(before, after) {
			t.Errorf("rebuilt lab differs:\n%s\nwas:\n%s", topoText(after), topoText(before))
		}
		again, _, _ := nsh(t, "", append([]string{"export"}, labNames...)...)
		if again != recipe {
			t.Errorf("export of the rebuilt lab:\n%s\nexport of the original:\n%s", again, recipe)
		}
	})

	t.Run("nsh up", func(t *testing.T) {
		deleteLab(t)
		file := filepath.Join(dir, "xlab.star")
		os.WriteFile(file, []byte(recipe), 0o644)
		if _, stderr, code := nsh(t, "", "up", file); code != 0 {
			t.Fatalf("nsh up %s: exit %d\n%s\n%s", file, code, stderr, recipe)
		}
		if after := readLab(t); !reflect.DeepEqual(before, after) {
			t.Errorf("the lab nsh up built differs:\n%s\nwas:\n%s", topoText(after), topoText(before))
		}
		if out, stderr, code := nsh(t, "", "exec", "xlab", "xh1", "--", "ping", "-c1", "-W3", "10.0.2.1"); code != 0 {
			t.Errorf("xh1 cannot reach xh2 through xr in the lab: %d\n%s%s", code, out, stderr)
		}
		if _, stderr, code := nsh(t, "", "down", "xlab"); code != 0 {
			t.Fatalf("nsh down xlab: %d %s", code, stderr)
		}
		for _, n := range labNames {
			if _, err := os.Stat("/run/netns/" + n); err == nil {
				t.Errorf("nsh down left %s", n)
			}
		}
	})

	t.Run("up", func(t *testing.T) {
		deleteLab(t)
		ready, done := filepath.Join(dir, "ready"), filepath.Join(dir, "done")
		// The run checks the rebuilt lab forwards, then holds still
		// until the test has read it.
		src := recipe + `
p = ping("10.0.2.1", ns=xh1, count=1, timeout=3)
p.ok or fail("xh1 cannot reach xh2 through xr: %s" % p)
run(["sh", "-c", "touch ` + ready + `; while [ ! -e ` + done + ` ]; do sleep 0.01; done"])
`
		file := filepath.Join(dir, "up.star")
		os.WriteFile(file, []byte(src), 0o644)
		cmd := exec.Command(nshBin, file)
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		for _, err := os.Stat(ready); err != nil; _, err = os.Stat(ready) {
			select {
			case err := <-exited:
				t.Fatalf("nsh %s ended early: %v\n%s", file, err, errb.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		after := readLab(t)
		os.WriteFile(done, nil, 0o644)
		if err := <-exited; err != nil {
			t.Errorf("nsh %s: %v\n%s", file, err, errb.String())
		}
		if !reflect.DeepEqual(before, after) {
			t.Errorf("rebuilt lab differs:\n%s\nwas:\n%s", topoText(after), topoText(before))
		}
		// A plain run keeps the namespaces and removes the rest: what
		// --persist is for.
		left := readLab(t)
		for _, n := range left.Netns {
			if len(n.Links) != 1 || len(n.Routes) != 0 {
				t.Errorf("after the plain run, %s still has %s", n.Name, topoText(&topo.Topology{Netns: []*topo.Netns{n}}))
			}
		}
	})
}

// topoText renders a topology for failure messages.
func topoText(tp *topo.Topology) string {
	var b strings.Builder
	for _, n := range tp.Netns {
		b.WriteString("netns " + n.Name + "\n")
		for _, l := range n.Links {
			b.WriteString("  " + toString(l) + "\n")
		}
		for _, r := range n.Routes {
			b.WriteString("  route " + toString(r) + "\n")
		}
		for _, s := range n.Sysctls {
			b.WriteString("  sysctl " + toString(s) + "\n")
		}
	}
	return b.String()
}

func toString(v any) string {
	if l, ok := v.(*topo.Link); ok {
		s := fmt.Sprintf("%+v", *l)
		if l.Peer != nil {
			s += fmt.Sprintf(" peer %+v", *l.Peer)
		}
		return s
	}
	return fmt.Sprintf("%+v", v)
}

// TestExportUsage: the verbs' refusals, and a script named like a verb.
func TestExportUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"export", "--bogus"}, 2, `nsh export: unknown flag "--bogus"`},
		{[]string{"graph", "--bogus"}, 2, `nsh graph: unknown flag "--bogus"`},
		{[]string{"graph", "nosuchlab"}, 1, `nsh graph: lab "nosuchlab": no such lab`},
		{[]string{"graph", "a", "b"}, 2, "nsh graph: which lab?"},
		{[]string{"export", "nosuchns"}, 1, `nsh export: no network namespace called "nosuchns"`},
		{[]string{"graph", "--netns", "a/b"}, 1, `nsh graph: invalid network namespace name "a/b"`},
	} {
		_, stderr, code := nsh(t, "", c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("nsh %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.msg)
		}
	}
	for _, verb := range []string{"export", "graph"} {
		out, _, code := nsh(t, "", verb, "--help")
		if code != 0 || !strings.HasPrefix(out, "usage: nsh "+verb) {
			t.Errorf("nsh %s --help: exit %d\n%s", verb, code, out)
		}
	}
	// A script called export runs as ./export.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "export"), []byte("print('the script')\n"), 0o644)
	cmd := exec.Command(nshBin, "./export")
	cmd.Dir = dir
	if out, stderr, code := runCmd(t, cmd); code != 0 || out != "the script\n" {
		t.Errorf("nsh ./export: exit %d, %q %q", code, out, stderr)
	}
}
