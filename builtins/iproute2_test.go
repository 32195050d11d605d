package builtins_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/startest"
	"nsh.dev/nsh/interp"
)

// needIP skips tests that need root and the ip command.
func needIP(t *testing.T) string {
	t.Helper()
	startest.NeedsRealRoot(t) // named network namespaces, host links
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command (iproute2) on this machine")
	}
	return ip
}

// ipOut runs ip with args and returns its output, failing the test on error.
func ipOut(t *testing.T, ip string, args ...string) string {
	t.Helper()
	out, err := exec.Command(ip, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newRun starts an nsh run with the assert module, as the .star tests get.
func newRun(t *testing.T) *interp.Run {
	in := interp.New(interp.Config{
		Builtins: builtins.Table(),
		Extra:    starlark.StringDict{"assert": startest.Assert(t)},
	})
	return in.NewRun(".", []string{"iproute2_test"})
}

func exec1(t *testing.T, r *interp.Run, src string) {
	t.Helper()
	if _, err := r.ExecFile(t.Name()+".star", src); err != nil {
		t.Fatalf("%s", interp.FormatError(err))
	}
}

// What nsh builds in a named namespace, iproute2 sees: ip -n NAME and
// ip netns exec NAME; and it is all gone after the run.
func TestIproute2SeesNsh(t *testing.T) {
	ip := needIP(t)
	leakcheck.Check(t)
	r := newRun(t)
	defer r.Close()
	exec1(t, r, `
n = netns("nt-ipr-a", persist = False)
a, b = veth("nt-ipa0", "nt-ipa1", ns = n, peer_ns = n, addr = ["10.90.0.1/24", "fd90::1/64"], mtu = 1280)
bridge("nt-ipabr", ns = n)
b.set_master("nt-ipabr")
route("10.91.0.0/24", via = "10.90.0.2", ns = n)
sysctl("net.ipv4.ip_forward", 1, ns = "nt-ipr-a")
`)
	links := ipOut(t, ip, "-n", "nt-ipr-a", "-o", "link", "show")
	for _, want := range []string{"nt-ipa0@nt-ipa1", "nt-ipa1@nt-ipa0", "mtu 1280", "master nt-ipabr", "lo: <LOOPBACK,UP,LOWER_UP>"} {
		if !strings.Contains(links, want) {
			t.Errorf("ip -n nt-ipr-a link lacks %q:\n%s", want, links)
		}
	}
	addrs := ipOut(t, ip, "-n", "nt-ipr-a", "-o", "addr", "show", "dev", "nt-ipa0")
	for _, want := range []string{"inet 10.90.0.1/24", "inet6 fd90::1/64"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("ip -n nt-ipr-a addr lacks %q:\n%s", want, addrs)
		}
	}
	if routes := ipOut(t, ip, "-n", "nt-ipr-a", "route"); !strings.Contains(routes, "10.91.0.0/24 via 10.90.0.2 dev nt-ipa0") {
		t.Errorf("ip -n nt-ipr-a route lacks the route:\n%s", routes)
	}
	if fwd := ipOut(t, ip, "netns", "exec", "nt-ipr-a", "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(fwd) != "1" {
		t.Errorf("ip netns exec nt-ipr-a: ip_forward is %q, want 1", fwd)
	}
	if l := ipOut(t, ip, "netns", "exec", "nt-ipr-a", "ip", "-o", "link", "show", "nt-ipa0"); !strings.Contains(l, "nt-ipa0") {
		t.Errorf("ip netns exec nt-ipr-a does not see nt-ipa0:\n%s", l)
	}
	if err := r.Close(); err != nil {
		t.Errorf("teardown: %v", err)
	}
	if list := ipOut(t, ip, "netns", "list"); strings.Contains(list, "nt-ipr-a") {
		t.Errorf("nt-ipr-a is still listed after the run:\n%s", list)
	}
}

// What iproute2 built, nsh's link() finds and uses, and leaves in place.
func TestNshSeesIproute2(t *testing.T) {
	ip := needIP(t)
	leakcheck.Check(t)
	ipOut(t, ip, "netns", "add", "nt-ipr-b")
	defer exec.Command(ip, "netns", "del", "nt-ipr-b").Run()
	ipOut(t, ip, "-n", "nt-ipr-b", "link", "add", "nt-ipb0", "type", "veth", "peer", "name", "nt-ipb1")
	ipOut(t, ip, "-n", "nt-ipr-b", "addr", "add", "10.92.0.1/24", "dev", "nt-ipb0")
	ipOut(t, ip, "-n", "nt-ipr-b", "link", "set", "nt-ipb0", "up")
	ipOut(t, ip, "-n", "nt-ipr-b", "link", "set", "nt-ipb1", "up")
	ipOut(t, ip, "link", "add", "nt-ipbbr", "type", "bridge")
	defer exec.Command(ip, "link", "del", "nt-ipbbr").Run()

	r := newRun(t)
	exec1(t, r, `
l = link("nt-ipb0", ns = "nt-ipr-b")
assert.eq(l.kind, "veth")
assert.true(l.is_up)
assert.contains(l.addrs, "10.92.0.1/24")
assert.eq(l.ns.name, "nt-ipr-b")
link("nt-ipb1", ns = "nt-ipr-b").add_addr("10.92.0.2/24")
br = link("nt-ipbbr")
assert.eq(br.kind, "bridge")
assert.eq(br.ns, namespaces().net)
# The loopback of a namespace nsh did not create is left as it was...
lo = link("lo", ns = "nt-ipr-b")
assert.true(not lo.is_up)
# ...until asked (both addresses are local, so the ping goes through lo).
lo.up()
assert.true(ping("10.92.0.2", ns = "nt-ipr-b").ok)
`)
	if err := r.Close(); err != nil {
		t.Errorf("teardown: %v", err)
	}
	// nsh did not create them, so it did not delete them.
	if l := ipOut(t, ip, "-n", "nt-ipr-b", "-o", "addr", "show", "dev", "nt-ipb1"); !strings.Contains(l, "10.92.0.2/24") {
		t.Errorf("nt-ipb1 lost the address nsh added (addresses are not undone):\n%s", l)
	}
	ipOut(t, ip, "link", "show", "nt-ipbbr")
}

// A sysctl written in a namespace nsh did not create is written back at the
// end of the run; persist=True keeps it.
func TestSysctlRestored(t *testing.T) {
	ip := needIP(t)
	leakcheck.Check(t)
	ipOut(t, ip, "link", "add", "nt-sx0", "type", "veth", "peer", "name", "nt-sx1")
	defer exec.Command(ip, "link", "del", "nt-sx0").Run()
	read := func(dev string) string {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + dev + "/forwarding")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if read("nt-sx0") != "0" || read("nt-sx1") != "0" {
		t.Fatalf("forwarding already on for a fresh veth")
	}
	r := newRun(t)
	exec1(t, r, `
assert.eq(sysctl("net.ipv4.conf.nt-sx0.forwarding", 1), "1")
assert.eq(sysctl("net/ipv4/conf/nt-sx1/forwarding", True, persist = True), "1")
`)
	if read("nt-sx0") != "1" {
		t.Errorf("the write did not happen")
	}
	if err := r.Close(); err != nil {
		t.Errorf("teardown: %v", err)
	}
	if got := read("nt-sx0"); got != "0" {
		t.Errorf("nt-sx0 forwarding is %s after the run, want 0 (restored)", got)
	}
	if got := read("nt-sx1"); got != "1" {
		t.Errorf("nt-sx1 forwarding is %s after the run, want 1 (persisted)", got)
	}
}

// persist() keeps a pair past the end of the run; without it the pair goes.
func TestLinkPersist(t *testing.T) {
	ip := needIP(t)
	leakcheck.Check(t)
	defer exec.Command(ip, "link", "del", "nt-kp0").Run()
	r := newRun(t)
	exec1(t, r, `
a, b = veth("nt-kp0", "nt-kp1", addr = "10.93.0.1/24")
b.persist()
veth("nt-kq0", "nt-kq1")
br = bridge("nt-kqbr")
`)
	if err := r.Close(); err != nil {
		t.Errorf("teardown: %v", err)
	}
	if out := ipOut(t, ip, "-o", "addr", "show", "dev", "nt-kp0"); !strings.Contains(out, "10.93.0.1/24") {
		t.Errorf("the persisted pair lost its address:\n%s", out)
	}
	ipOut(t, ip, "link", "show", "nt-kp1")
	for _, gone := range []string{"nt-kq0", "nt-kq1", "nt-kqbr"} {
		if err := exec.Command(ip, "link", "show", gone).Run(); err == nil {
			t.Errorf("%s outlived the run without persist()", gone)
		}
	}
	ipOut(t, ip, "link", "del", "nt-kp0")
}

// A namespace nsh created and then persisted outlives the run, emptied of
// the links nsh built in it (as a named one would be).
func TestPersistedNamespaceEmptied(t *testing.T) {
	ip := needIP(t)
	leakcheck.Check(t)
	path := "/run/netns/nt-kept"
	defer func() {
		unix.Unmount(path, unix.MNT_DETACH)
		os.Remove(path)
	}()
	r := newRun(t)
	exec1(t, r, `
netns("nt-kept-prep", persist = False)   # makes /run/netns a mount of its own
start = namespaces()
kept = unshare("net").net
setns(start)
kept.persist("/run/netns/nt-kept")
veth("nt-k0", "nt-k1", ns = kept, peer_ns = kept)
`)
	if err := r.Close(); err != nil {
		t.Errorf("teardown: %v", err)
	}
	out := ipOut(t, ip, "-n", "nt-kept", "-o", "link")
	if strings.Contains(out, "nt-k0") || !strings.Contains(out, "lo:") {
		t.Errorf("persisted namespace after the run:\n%s", out)
	}
}
