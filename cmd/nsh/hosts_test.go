package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hostsLab is the one-machine stand-in for several hosts (issue 20
// item 3): network namespaces nshhost-a, nshhost-b, ... each with an
// address on a bridge in a namespace of the test's own (the underlay),
// reached through the transport nsenter --net=/run/netns/{target} --.
type hostsLab struct {
	t     *testing.T
	names []string
	tmp   string // TMPDIR of every nsh run: where the hosts unpack recipes
}

// newHostsLab makes n hosts (a, b, c...) on an underlay 192.168.240.0/24
// with MTU mtu, and removes them at the end of the test.
func newHostsLab(t *testing.T, n, mtu int) *hostsLab {
	t.Helper()
	needLabs(t)
	h := &hostsLab{t: t, tmp: t.TempDir()}
	run := func(args ...string) {
		t.Helper()
		if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	t.Cleanup(func() {
		for _, name := range h.names {
			exec.Command("ip", "netns", "del", "nshhost-"+name).Run()
		}
		exec.Command("ip", "netns", "del", "nshunderlay").Run()
	})
	run("ip", "netns", "add", "nshunderlay")
	run("ip", "-n", "nshunderlay", "link", "add", "ul", "mtu", fmt.Sprint(mtu), "type", "bridge")
	run("ip", "-n", "nshunderlay", "link", "set", "ul", "up")
	for i := 0; i < n; i++ {
		name := string(rune('a' + i))
		ns := "nshhost-" + name
		h.names = append(h.names, name)
		run("ip", "netns", "add", ns)
		run("ip", "-n", "nshunderlay", "link", "add", "u"+name, "mtu", fmt.Sprint(mtu), "type", "veth", "peer", "name", "eth0", "netns", ns)
		run("ip", "-n", "nshunderlay", "link", "set", "u"+name, "master", "ul", "up")
		run("ip", "-n", ns, "link", "set", "lo", "up")
		run("ip", "-n", ns, "link", "set", "eth0", "mtu", fmt.Sprint(mtu), "up")
		run("ip", "-n", ns, "addr", "add", fmt.Sprintf("192.168.240.%d/24", i+1), "dev", "eth0")
	}
	return h
}

// flags are the --host flags of the hosts, with their addresses when
// withAddr (else nsh asks the hosts), and the transport.
func (h *hostsLab) flags(withAddr bool) []string {
	var out []string
	for i, name := range h.names {
		spec := name + "=nshhost-" + name
		if withAddr {
			spec += fmt.Sprintf(",192.168.240.%d", i+1)
		}
		out = append(out, "--host", spec)
	}
	return append(out, "--transport", "nsenter --net=/run/netns/{target} --", "--remote-nsh", nshBin)
}

// nsh runs nsh with TMPDIR set to the lab's.
func (h *hostsLab) nsh(args ...string) (string, string, int) {
	h.t.Helper()
	cmd := exec.Command(nshBin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+h.tmp)
	return runCmd(h.t, cmd)
}

// left says what of a lab of the hosts is left on the machine: lab
// directories, named namespaces other than the hosts', links in the
// hosts' namespaces other than lo and eth0, unpacked recipes.
func (h *hostsLab) left() []string {
	var out []string
	if ents, _ := os.ReadDir("/run/nsh/labs"); len(ents) > 0 {
		for _, e := range ents {
			out = append(out, "lab directory "+e.Name())
		}
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if n := e.Name(); n != "nshunderlay" && !strings.HasPrefix(n, "nshhost-") {
			out = append(out, "netns "+n)
		}
	}
	for _, name := range h.names {
		b, err := exec.Command("ip", "-n", "nshhost-"+name, "-o", "link", "show").Output()
		if err != nil {
			out = append(out, fmt.Sprintf("host %s: ip link: %v", name, err))
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[1] != "lo:" && !strings.HasPrefix(f[1], "eth0@") {
				out = append(out, "host "+name+": link "+f[1])
			}
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(h.tmp, "nsh-up-*")); len(tmps) > 0 {
		out = append(out, "unpacked recipes: "+strings.Join(tmps, " "))
	}
	return out
}

// A lab over two hosts without VXLAN: the recipe and the module it
// loads reach both, each builds its part (a veth pair in its node), the
// addresses are asked of the hosts, status and graph combine the hosts',
// down takes down both and leaves nothing.
func TestHostsUpStatusGraphDown(t *testing.T) {
	h := newHostsLab(t, 2, 1500)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "lib", "nodes.star"), []byte(`
load("names.star", "node_name")
def node(host):
    n = netns(lab.prefix + node_name(host))
    veth(host + "0", host + "1", ns=n, peer_ns=n)
    return n
`), 0o644)
	os.WriteFile(filepath.Join(dir, "lib", "names.star"), []byte(`
def node_name(host):
    return "hx" + host
`), 0o644)
	recipe := filepath.Join(dir, "parts.star")
	os.WriteFile(recipe, []byte(`
load("lib/nodes.star", "node")
print("I am", lab.host, "of", sorted(hosts.keys()), "arg", argv[1:])
n = node(lab.host)
if lab.host == "b":
    print("b sees a at", hosts["a"])
`), 0o644)
	out, stderr, code := h.nsh(append(append([]string{"up"}, h.flags(false)...), "--name", "multi", recipe, "x y")...)
	if code != 0 {
		t.Fatalf("up: %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{`a: I am a of ["a", "b"] arg ["x y"]`, `b: I am b of ["a", "b"] arg ["x y"]`, "b: b sees a at 192.168.240.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("up's output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"sending lib/names.star, lib/nodes.star, parts.star", `a: nsh: lab "multi@a" is up`, `b: nsh: lab "multi@b" is up`, `lab "multi" is up on 2 hosts`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("up's errors lack %q:\n%s", want, stderr)
		}
	}
	for _, p := range []string{"/run/netns/hxa", "/run/netns/hxb", "/run/nsh/labs/multi@a", "/run/nsh/labs/multi@b"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after up: %v", err)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(h.tmp, "nsh-up-*")); len(tmps) > 0 {
		t.Errorf("the hosts left the recipes they unpacked: %v", tmps)
	}
	if out, _, _ := h.nsh("ls"); !strings.Contains(out, "multi@a") || !strings.Contains(out, "multi@b") {
		t.Errorf("nsh ls on the machine of both hosts:\n%s", out)
	}

	out, stderr, code = h.nsh(append([]string{"status", "multi"}, h.flags(false)...)...)
	if code != 0 {
		t.Fatalf("status: %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"lab multi on host a: up", "lab multi on host b: up", "HOST  NODE", "a     hxa   a0", "b     hxb   b0"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, stderr, code = h.nsh(append([]string{"status", "--json", "multi"}, h.flags(true)...)...)
	var st struct {
		Name  string
		Hosts []struct {
			Host   string
			Status struct {
				Name  string
				State string
				Nodes []struct{ Name string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v\n%s%s", code, err, out, stderr)
	}
	if st.Name != "multi" || len(st.Hosts) != 2 || st.Hosts[1].Host != "b" || st.Hosts[1].Status.State != "up" ||
		len(st.Hosts[1].Status.Nodes) != 1 || st.Hosts[1].Status.Nodes[0].Name != "hxb" {
		t.Errorf("status --json: %+v", st)
	}

	out, stderr, code = h.nsh(append([]string{"graph", "multi"}, h.flags(false)...)...)
	if code != 0 || !strings.Contains(out, `"netns a/hxa" -- "netns a/hxa" [taillabel="a0", headlabel="a1"]`) || !strings.Contains(out, `"netns b/hxb" [label="b/hxb"]`) {
		t.Errorf("graph: %d\n%s%s", code, out, stderr)
	}
	renderDOT(t, out)
	out, _, code = h.nsh(append([]string{"graph", "--mermaid", "multi"}, h.flags(false)...)...)
	if code != 0 || !strings.Contains(out, `netns_b_hxb["b/hxb"]`) {
		t.Errorf("graph --mermaid: %d\n%s", code, out)
	}

	out, stderr, code = h.nsh(append([]string{"down", "multi"}, h.flags(false)...)...)
	if code != 0 || !strings.Contains(stderr, `a: nsh: lab "multi@a" is down`) || !strings.Contains(stderr, `lab "multi" is down on 2 hosts`) {
		t.Errorf("down: %d\n%s%s", code, out, stderr)
	}
	if left := h.left(); len(left) > 0 {
		t.Errorf("after down: %s", strings.Join(left, "; "))
	}
}

// A host that fails: the hosts where the lab came up take it down again,
// a host still building is interrupted and undoes its part, and the error
// names the host.
func TestHostsFailureUndoesTheOthers(t *testing.T) {
	h := newHostsLab(t, 3, 1500)
	recipe := labRecipe(t, "fails.star", `
netns_new("f" + lab.host)
if lab.host == "b":
    sleep(0.5)
    fail("no room on b")
`)
	out, stderr, code := h.nsh(append(append([]string{"up"}, h.flags(true)...), recipe)...)
	if code == 0 {
		t.Fatalf("up with a failing host succeeded:\n%s%s", out, stderr)
	}
	for _, want := range []string{"b: ", "no room on b", `lab "fails" failed on host b (b: nsh up exited with status 1); taken down again on a, c: nothing of it is up`,
		`a: nsh: lab "fails@a" is down`, `c: nsh: lab "fails@c" is down`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("up's errors lack %q:\n%s", want, stderr)
		}
	}
	if left := h.left(); len(left) > 0 {
		t.Errorf("after a failed up: %s", strings.Join(left, "; "))
	}

	recipe = labRecipe(t, "stops.star", `
netns_new("s" + lab.host)
if lab.host == "a":
    fail("a fails first")
if lab.host == "c":
    sleep(60)
`)
	start := time.Now()
	out, stderr, code = h.nsh(append(append([]string{"up"}, h.flags(true)...), recipe)...)
	// b's recipe is quick: it may be up (taken down again) or still
	// building (interrupted) when a fails; c is always interrupted.
	stopsDone := regexp.MustCompile(`(taken down again on b; interrupted and undone on c|interrupted and undone on b, c): nothing of it is up`)
	if code == 0 || !strings.Contains(stderr, `lab "stops" failed on host a (a: nsh up exited with status 1); `) ||
		!stopsDone.MatchString(stderr) {
		t.Errorf("up with a failing host and one still building: %d\n%s%s", code, out, stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("host c's recipe was not interrupted: up took %v", d)
	}
	if left := h.left(); len(left) > 0 {
		t.Errorf("after a failed up: %s", strings.Join(left, "; "))
	}
}

// Hosts whose nsh versions differ are refused before anything starts,
// each named with its version; so are bad --host flags and a recipe that
// loads a module by an absolute path.
func TestHostsRefusals(t *testing.T) {
	h := newHostsLab(t, 2, 1500)
	// Host b's "nsh" says another version: a transport that answers
	// --version for it and runs the real nsh otherwise.
	wrap := filepath.Join(t.TempDir(), "transport")
	os.WriteFile(wrap, []byte(`#!/bin/sh
target=$1; shift
if [ "$target" = nshhost-b ] && [ "$2" = --version ]; then echo "nsh 0.0-other"; exit 0; fi
exec nsenter --net=/run/netns/$target -- "$@"
`), 0o755)
	recipe := labRecipe(t, "v.star", `netns(lab.prefix + "v" + lab.host)`)
	args := []string{"up", "--host", "a=nshhost-a", "--host", "b=nshhost-b", "--transport", wrap + " {target}", "--remote-nsh", nshBin, recipe}
	out, stderr, code := h.nsh(args...)
	if code == 0 || !strings.Contains(stderr, "the hosts' nsh versions differ (a: nsh dev, b: nsh 0.0-other; this one: nsh dev)") {
		t.Errorf("up with versions that differ: %d\n%s%s", code, out, stderr)
	}
	abs := labRecipe(t, "abs.star", fmt.Sprintf("load(%q, \"x\")\n", filepath.Join(t.TempDir(), "m.star")))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"up", "--host", "a", recipe}, `--host "a": want NAME=TARGET`},
		{[]string{"up", "--host", "a=x,notanip", recipe}, `"notanip" is no IP address`},
		{[]string{"up", "--host", "a=x", "--host", "a=y", recipe}, "--host a given twice"},
		{[]string{"up", "--host", "a=x", "--transport", "ssh", recipe}, `no {target} in it`},
		{[]string{"up", "--host", "a=x", "--dry-run", recipe}, "cannot be combined with --host"},
		{[]string{"up", "--host", "a=x", abs}, "an absolute module path names a file of each host"},
		{[]string{"up", "--as-host", "a", recipe}, "--as-host NAME and --hosts NAME=ADDR,... come together"},
	} {
		if out, stderr, code := h.nsh(c.args...); code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("nsh %s: %d, want an error with %q\n%s%s", strings.Join(c.args, " "), code, c.want, out, stderr)
		}
	}
	if left := h.left(); len(left) > 0 {
		t.Errorf("after refusals: %s", strings.Join(left, "; "))
	}
}

// The lab across hosts, on one machine: scripts/two-hosts.star
// on hosts a and b (underlay MTU 1400), h1 on a reaches h2 on b over the
// VXLAN with a full-size packet that may not be fragmented (and one byte
// more is refused), a TCP transfer crosses the hosts, status and graph
// show the tunnel, and down on both hosts leaves nothing.
func TestHostsVXLAN(t *testing.T) {
	if _, _, code := nsh(t, "", "-c", "vxlan"); code != 0 {
		t.Skip("no vxlan() in this nsh yet")
	}
	h := newHostsLab(t, 2, 1400)
	up := append(append([]string{"up"}, h.flags(false)...), "../../scripts/two-hosts.star")
	out, stderr, code := h.nsh(up...)
	if code != 0 {
		t.Fatalf("up: %d\n%s%s", code, out, stderr)
	}
	// 1400 less 50 bytes of VXLAN over IPv4.
	for _, want := range []string{"a: host a: node h1, vx0 10.42.0.1/24 (mtu 1350) to 192.168.240.2", "b: host b: node h2, vx0 10.42.0.2/24 (mtu 1350) to 192.168.240.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("up's output lacks %q:\n%s", want, out)
		}
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Error("ping(8) is not installed: the full-size ping with DF set is not checked (Debian: apt-get install iputils-ping)")
	} else {
		// 1350 - 20 (IP) - 8 (ICMP) = 1322 bytes of payload.
		if b, err := exec.Command("ip", "netns", "exec", "h1", "ping", "-c", "2", "-W", "2", "-M", "do", "-s", "1322", "10.42.0.2").CombinedOutput(); err != nil {
			t.Errorf("h1 on host a cannot reach h2 on host b with a full-size packet, DF set: %v\n%s", err, b)
		}
		b, err := exec.Command("ip", "netns", "exec", "h1", "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1323", "10.42.0.2").CombinedOutput()
		if err == nil || !strings.Contains(string(b), "1350") {
			t.Errorf("a packet one byte over the VXLAN's MTU, DF set, was not refused with the MTU: %v\n%s", err, b)
		}
	}
	out, stderr, code = h.nsh("-c", `r = transfer("10.42.0.2", "h2", ns="h1", size=4 << 20)
print(r.complete, r.bytes)`)
	if code != 0 || strings.TrimSpace(out) != "True 4194304" {
		t.Errorf("a TCP transfer from h1 on host a to h2 on host b: %d %q\n%s", code, out, stderr)
	}
	out, stderr, code = h.nsh(append([]string{"status", "two-hosts"}, h.flags(false)...)...)
	if code != 0 || !strings.Contains(out, "a     h1    vx0   vxlan  up     10.42.0.1/24  vni 42 to 192.168.240.2 (host b)") {
		t.Errorf("status: %d\n%s%s", code, out, stderr)
	}
	out, stderr, code = h.nsh(append([]string{"graph", "two-hosts"}, h.flags(false)...)...)
	if code != 0 || !strings.Contains(out, `"netns a/h1" -- "netns b/h2" [style=bold, label="vxlan 42", taillabel="vx0", headlabel="vx0"];`) {
		t.Errorf("graph: %d\n%s%s", code, out, stderr)
	}
	renderDOT(t, out)
	out, stderr, code = h.nsh(append([]string{"down", "two-hosts"}, h.flags(false)...)...)
	if code != 0 || !strings.Contains(stderr, `lab "two-hosts" is down on 2 hosts`) {
		t.Errorf("down: %d\n%s%s", code, out, stderr)
	}
	if left := h.left(); len(left) > 0 {
		t.Errorf("after down: %s", strings.Join(left, "; "))
	}
}

// nsh up --host killed (SIGKILL) while one host is still building and
// the other's part is up: each host's stdin ends, so the part that was
// up is taken down and the run still building is interrupted and undone.
func TestHostsCoordinatorKilled(t *testing.T) {
	h := newHostsLab(t, 2, 1500)
	recipe := labRecipe(t, "slow.star", `
netns_new("k" + lab.host)
print("built", lab.host)
if lab.host == "b":
    sleep(60)
`)
	cmd := exec.Command(nshBin, append(append([]string{"up"}, h.flags(true)...), recipe)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+h.tmp)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	up := false
	for i := 0; i < 500 && !up; i++ {
		b, _ := os.ReadFile("/run/nsh/labs/slow@a/lab.json")
		_, err := os.Stat("/run/netns/kb")
		up = strings.Contains(string(b), `"state": "up"`) && err == nil
		time.Sleep(10 * time.Millisecond)
	}
	if !up {
		cmd.Process.Kill()
		t.Fatal("host a's part did not come up, or host b's node was not made")
	}
	cmd.Process.Kill()
	var left []string
	for i := 0; i < 500; i++ {
		if left = h.left(); len(left) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("after nsh up --host was killed: %s", strings.Join(left, "; "))
	}
}
