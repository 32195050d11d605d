package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Under nsh up, netns_new(LABEL) and host(LABEL) are the lab's nodes
// lab.prefix + LABEL: nsh exec runs in them (in host()'s UTS namespace
// too), and nsh down removes them.
func TestLabLabelledNodes(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "labelled.star", `
h1 = netns_new("ll-h1")
h2 = host("ll-h2", kinds = ["net", "uts"], hostname = "ll-box")
veth("eth0", "eth0", ns = h1, peer_ns = h2, addr = "10.232.0.1/24", peer_addr = "10.232.0.2/24")
print(h1, h1.name, h2)
`)
	for _, prefix := range []string{"", "p-"} {
		out, stderr, code := nsh(t, "", "up", "--name", "labelled", "--prefix", prefix, r)
		if code != 0 {
			t.Fatalf("up --prefix %q: %d %s", prefix, code, stderr)
		}
		want := "net:ll-h1 " + prefix + "ll-h1 namespaces(net:ll-h2, uts:ll-h2)"
		if !strings.Contains(out, want) {
			t.Errorf("the recipe printed %q, want %q", out, want)
		}
		out, stderr, code = nsh(t, "", "exec", "labelled", prefix+"ll-h1", "--", "ip", "-br", "addr", "show", "eth0")
		if code != 0 || !strings.Contains(out, "10.232.0.1/24") {
			t.Errorf("exec in node %s: %d %q %q", prefix+"ll-h1", code, out, stderr)
		}
		out, stderr, code = nsh(t, "", "exec", "labelled", prefix+"ll-h2", "--", "hostname")
		if code != 0 || strings.TrimSpace(out) != "ll-box" {
			t.Errorf("hostname in node %s: %d %q %q", prefix+"ll-h2", code, out, stderr)
		}
		if out, stderr, code := nsh(t, "", "status", "labelled"); code != 0 || !strings.Contains(out, "lab labelled: up") {
			t.Errorf("status: %d\n%s%s", code, out, stderr)
		}
		if _, stderr, code := nsh(t, "", "down", "labelled"); code != 0 {
			t.Fatalf("down: %d %s", code, stderr)
		}
		if _, err := os.Stat("/run/netns/" + prefix + "ll-h1"); err == nil {
			t.Errorf("/run/netns/%sll-h1 outlived nsh down", prefix)
		}
	}
}

// A lab's labels are its node names: a second netns_new() of one label
// fails the recipe, which leaves no lab.
func TestLabLabelTwice(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "twice.star", `
netns_new("lt-x")
netns_new("lt-x")
`)
	_, stderr, code := nsh(t, "", "up", r)
	if code == 0 || !strings.Contains(stderr, `label "lt-x": the lab's network namespace "lt-x" exists already`) {
		t.Errorf("up: %d %s", code, stderr)
	}
	if _, err := os.Stat("/run/netns/lt-x"); err == nil {
		t.Errorf("/run/netns/lt-x outlived the failed nsh up")
	}
}

// A script that builds in the host's network namespace without ns= is told
// so once on stderr; --no-host-note, NSH_NO_HOST_NOTE=1 and the REPL print
// nothing.
func TestHostNote(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: veth in nsh's own network namespace")
	}
	const note = "veth: creating in the host's network namespace; pass ns= to build elsewhere"
	src := `veth("hn-a0", "hn-a1")
veth("hn-b0", "hn-b1")
`
	_, stderr, code := nsh(t, "", "-c", src)
	if code != 0 || strings.Count(stderr, note) != 1 {
		t.Errorf("nsh -c: %d, stderr %q; want the note once", code, stderr)
	}
	_, stderr, code = nsh(t, "", "--no-host-note", "-c", src)
	if code != 0 || stderr != "" {
		t.Errorf("nsh --no-host-note -c: %d, stderr %q; want nothing", code, stderr)
	}
	cmd := exec.Command(nshBin, "-c", src)
	cmd.Env = append(os.Environ(), "NSH_NO_HOST_NOTE=1")
	_, stderr, code = runCmd(t, cmd)
	if code != 0 || stderr != "" {
		t.Errorf("NSH_NO_HOST_NOTE=1 nsh -c: %d, stderr %q; want nothing", code, stderr)
	}
	// nsh -i: the REPL that follows the script says nothing.
	_, stderr, code = nsh(t, src, "-i", "-c", "pass")
	if code != 0 || strings.Contains(stderr, note) {
		t.Errorf("nsh -i: %d, stderr %q; want no note in the REPL", code, stderr)
	}
	if out, _, _ := nsh(t, "", "--help"); !strings.Contains(out, "--no-host-note") || !strings.Contains(out, "NSH_NO_HOST_NOTE=1") {
		t.Errorf("nsh --help does not document --no-host-note:\n%s", out)
	}
}
