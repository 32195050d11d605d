package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/leakcheck"
)

// persistSetup builds two kept namespaces joined by a kept veth, with
// addresses, routes and a tbf qdisc in them, a kept host veth with a route
// and a qdisc, and what is not kept: a veth in a kept namespace and a host
// veth, each with a route out of it; and a kept veth made in a kept
// namespace with one end moved to the host, with a route out of that end
// given by name.
const persistSetup = `
a = netns("p7a")
b = netns("p7b")
x, y = veth("p7-a", "p7-b", ns = a, peer_ns = b, addr = "10.97.1.1/24", peer_addr = "10.97.1.2/24")
x.persist()
y.add_addr("10.97.2.1/24")
route("default", via = "10.97.1.2", ns = a)
route("10.97.3.0/24", dev = y)
x.netem(rate = "10mbit")
veth("p7-t", "p7-u", ns = a, peer_ns = b, addr = "10.97.9.1/24")
route("10.97.8.0/24", via = "10.97.9.2", ns = a)
h, _ = veth("p7-h0", "p7-h1", addr = "10.97.5.1/24")
h.persist()
route("10.97.6.0/24", via = "10.97.5.2")
h.netem(rate = "20mbit")
veth("p7-g0", "p7-g1", addr = "10.97.7.1/24")
route("10.97.4.0/24", via = "10.97.7.2")
m0, m1 = veth("p7-m0", "p7-m1", ns = a, peer_ns = a, addr = "10.97.11.1/24")
m0.persist()
m1.move(namespaces().net)
m1.add_addr("10.97.11.2/24")
m1.up()
route("10.97.12.0/24", via = "10.97.11.1", dev = "p7-m1")
`

// cmdOut runs a command and returns its output and whether it succeeded.
func cmdOut(name string, args ...string) (string, bool) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err == nil
}

// checkKeptWhole checks what persistSetup keeps, and that what it does
// not keep is gone.
func checkKeptWhole(t *testing.T, how string) {
	t.Helper()
	has := func(want string, name string, args ...string) {
		t.Helper()
		if out, _ := cmdOut(name, args...); !strings.Contains(out, want) {
			t.Errorf("%s: %s %s: %q lacks %q", how, name, strings.Join(args, " "), out, want)
		}
	}
	lacks := func(unwanted string, name string, args ...string) {
		t.Helper()
		if out, _ := cmdOut(name, args...); strings.Contains(out, unwanted) {
			t.Errorf("%s: %s %s: %q has %q", how, name, strings.Join(args, " "), out, unwanted)
		}
	}
	has("default via 10.97.1.2 dev p7-a", "ip", "-n", "p7a", "route")
	lacks("10.97.8.0/24", "ip", "-n", "p7a", "route")
	has("10.97.1.1/24", "ip", "-n", "p7a", "addr", "show", "dev", "p7-a")
	has("qdisc tbf 1: root", "tc", "-n", "p7a", "qdisc", "show", "dev", "p7-a")
	has("10.97.3.0/24 dev p7-b", "ip", "-n", "p7b", "route")
	has("10.97.2.1/24", "ip", "-n", "p7b", "addr", "show", "dev", "p7-b")
	lacks("p7-t", "ip", "-n", "p7a", "link")
	has("10.97.6.0/24 via 10.97.5.2 dev p7-h0", "ip", "route", "show", "10.97.6.0/24")
	has("qdisc tbf 1: root", "tc", "qdisc", "show", "dev", "p7-h0")
	lacks("p7-g0", "ip", "link")
	lacks("10.97.4.0/24", "ip", "route")
	has("10.97.12.0/24 via 10.97.11.1 dev p7-m1", "ip", "route", "show", "10.97.12.0/24")
	// The kept topology works: a second run pings across it with the
	// kept default route, and so does iputils.
	if out, stderr, code := nsh(t, "", "-c", `print(ping("10.97.2.1", ns = "p7a", count = 1, timeout = 2).received)`); code != 0 || out != "1\n" {
		t.Errorf("%s: ping from p7a through the kept route: %d %q %q", how, code, out, stderr)
	}
	if out, ok := cmdOut("ip", "netns", "exec", "p7a", "ping", "-c", "1", "-W", "2", "10.97.2.1"); !ok {
		t.Errorf("%s: ip netns exec p7a ping 10.97.2.1: %s", how, out)
	}
}

func cleanupKept(t *testing.T) {
	for _, c := range [][]string{{"ip", "link", "del", "p7-m1"}, {"ip", "netns", "del", "p7a"}, {"ip", "netns", "del", "p7b"}, {"ip", "link", "del", "p7-h0"}} {
		if out, ok := cmdOut(c[0], c[1:]...); !ok && !strings.Contains(out, "No such") && !strings.Contains(out, "Cannot find") {
			t.Errorf("%s: %s", strings.Join(c, " "), out)
		}
	}
}

// Issue 21 item 7: a kept namespace keeps its routes, addresses and
// qdiscs, and a kept link keeps the routes out of it and its qdisc, at the
// end of the run as after SIGKILL (the reaper leaves them); what is not
// kept is still undone.
func TestItem7PersistenceIsWhole(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (named namespaces, host links)")
	}
	t.Run("end of run", func(t *testing.T) {
		leakcheck.Check(t)
		defer cleanupKept(t)
		if out, stderr, code := nsh(t, "", "--no-host-note", "-c", persistSetup+`print(ping("10.97.2.1", ns = a, count = 1).received)`); code != 0 || out != "1\n" || stderr != "" {
			t.Fatalf("setup: %d %q %q", code, out, stderr)
		}
		checkKeptWhole(t, "after the run")
	})
	t.Run("SIGKILL", func(t *testing.T) {
		leakcheck.Check(t)
		defer cleanupKept(t)
		cmd := startUntilReady(t, persistSetup)
		reaper := childNamed(cmd.Process.Pid, "nsh-reaper")
		if reaper == 0 {
			t.Fatal("the run started no reaper")
		}
		cmd.Process.Kill()
		cmd.Wait()
		waitExited(t, reaper, "the reaper")
		checkKeptWhole(t, "after SIGKILL")
	})
}

// Issue 21 item 8: what mkdir() makes is removed at the end of the run
// (newest first, while empty), and by the reaper after SIGKILL; a
// directory something was put in, and persist=True, are kept.
func TestItem8MkdirUndone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the reaper of nsh's own mount namespace)")
	}
	dir := t.TempDir()
	gone := func(how, p string) {
		t.Helper()
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %s is still there (%v)", how, p, err)
		}
	}
	there := func(how, p string) {
		t.Helper()
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %s is gone: %v", how, p, err)
		}
	}
	script := fmt.Sprintf(`
mkdir(%[1]q + "/a/b/c", parents = True)
mkdir(%[1]q + "/kept", persist = True)
mkdir(%[1]q + "/full")
run(["touch", %[1]q + "/full/f"])
`, dir)
	if out, stderr, code := nsh(t, "", "-c", script); code != 0 {
		t.Fatalf("nsh: %d %q %q", code, out, stderr)
	}
	gone("end of run", dir+"/a")
	there("end of run", dir+"/kept")
	there("end of run", dir+"/full/f")

	k := filepath.Join(dir, "k")
	cmd := startUntilReady(t, fmt.Sprintf(`mkdir(%[1]q + "/x/y", parents = True)
mkdir(%[1]q + "/kept2", persist = True)
`, k))
	for _, p := range []string{k + "/x/y", k + "/kept2"} {
		there("before SIGKILL", p)
	}
	reaper := childNamed(cmd.Process.Pid, "nsh-reaper")
	if reaper == 0 {
		t.Fatal("the run started no reaper")
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitExited(t, reaper, "the reaper")
	gone("after SIGKILL", k+"/x")
	there("after SIGKILL", k+"/kept2")
}
