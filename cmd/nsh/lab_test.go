package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/leakcheck"
)

// needLabs skips unless root: labs are root-only so far.
func needLabs(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (rootless labs are tested in lab_rootless_test.go)")
	}
	leakcheck.Check(t)
	t.Cleanup(func() {
		if ls, _ := labs.List(); len(ls) > 0 {
			for _, l := range ls {
				t.Errorf("lab %s left (%s)", l.Name, l.State)
			}
			exec.Command(nshBin, "down", "--all").Run()
		}
	})
}

// labRecipe writes a recipe into a temporary directory.
func labRecipe(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// renderDOT runs Graphviz's dot on a graph as the "done means"
// does (nsh graph chain | dot -Tsvg): it must take it and draw an SVG. The
// check is a subtest that skips, naming the command, where dot is missing
// (tools/deps.sh installs graphviz for make test).
func renderDOT(t *testing.T, graph string) {
	t.Helper()
	t.Run("dot -Tsvg", func(t *testing.T) {
		if _, err := exec.LookPath("dot"); err != nil {
			t.Skip("dot not installed (Debian: apt-get install graphviz)")
		}
		cmd := exec.Command("dot", "-Tsvg")
		cmd.Stdin = strings.NewReader(graph)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		svg, err := cmd.Output()
		if err != nil || !strings.Contains(string(svg), "<svg") || stderr.Len() > 0 {
			t.Errorf("dot -Tsvg of nsh graph's output: %v\n%s\ngraph:\n%s", err, stderr.String(), graph)
		}
	})
}

// The "done means", as root: a chain of 5 up, c1 reaches c5, status
// and exec work, down leaves nothing; down again is a no-op.
func TestLabUpStatusExecDown(t *testing.T) {
	needLabs(t)
	out, stderr, code := nsh(t, "", "up", "../../scripts/chain.star", "5")
	if code != 0 || !strings.Contains(stderr, `lab "chain" is up: 5 nodes`) {
		t.Fatalf("up: %d\n%s%s", code, out, stderr)
	}
	if b, err := exec.Command("ip", "netns", "exec", "c1", "ping", "-c1", "-W2", "10.100.4.2").CombinedOutput(); err != nil {
		t.Errorf("c1 cannot reach c5 once the lab is up: %v\n%s", err, b)
	}
	out, stderr, code = nsh(t, "", "status", "chain", "--json")
	var st struct {
		State string
		Nodes []struct {
			Name    string
			Present bool
		}
		Missing []string
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v\n%s%s", code, err, out, stderr)
	}
	if st.State != "up" || len(st.Nodes) != 5 || !st.Nodes[4].Present || len(st.Missing) > 0 {
		t.Errorf("status: %+v", st)
	}
	out, stderr, code = nsh(t, "", "exec", "chain", "c3", "--", "ip", "-br", "addr", "show", "c3-eth1")
	if code != 0 || !strings.Contains(out, "10.100.3.1/24") {
		t.Errorf("exec chain c3: %d %q %q", code, out, stderr)
	}
	if _, _, code := nsh(t, "", "exec", "chain", "c3", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exec's exit status %d, want 7 (passed through)", code)
	}
	out, stderr, code = nsh(t, "", "graph", "chain")
	if code != 0 || !strings.Contains(out, `"netns c4" -- "netns c5"`) {
		t.Errorf("graph: %d\n%s%s", code, out, stderr)
	}
	renderDOT(t, out)
	out, _, _ = nsh(t, "", "ls")
	if !strings.Contains(out, "chain") || !strings.Contains(out, "up") {
		t.Errorf("ls:\n%s", out)
	}
	if _, stderr, code := nsh(t, "", "up", "../../scripts/chain.star", "5"); code == 0 || !strings.Contains(stderr, `lab "chain" exists`) {
		t.Errorf("a second up of the same lab: %d %q", code, stderr)
	}
	if _, stderr, code := nsh(t, "", "down", "chain"); code != 0 || !strings.Contains(stderr, `lab "chain" is down`) {
		t.Fatalf("down: %d %q", code, stderr)
	}
	if _, stderr, code := nsh(t, "", "down", "chain"); code != 0 || !strings.Contains(stderr, `no lab named "chain"`) {
		t.Errorf("down twice: %d %q", code, stderr)
	}
	if _, err := os.Stat("/run/netns/c1"); err == nil {
		t.Error("/run/netns/c1 after down")
	}
}

// A recipe that fails half-way leaves no lab and nothing else.
func TestLabFailingRecipeLeavesNothing(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "half.star", `
a = netns("lt-a", persist = False)
veth("lt-h0", "lt-h1", peer_ns = a)
sysctl("net.ipv4.tcp_keepalive_intvl", 76)
fail("half-way")
`)
	intvl, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_keepalive_intvl")
	_, stderr, code := nsh(t, "", "up", r)
	if code == 0 || !strings.Contains(stderr, "half-way") || !strings.Contains(stderr, `lab "half" not made`) {
		t.Errorf("up of a failing recipe: %d %q", code, stderr)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_keepalive_intvl"); string(b) != string(intvl) {
		t.Errorf("sysctl %q after the failed up, was %q", b, intvl)
	}
	if _, err := labs.Open("half"); err == nil {
		t.Error("a failed up left a lab")
	}
}

// Two labs of the same recipe side by side, with prefixes; without one,
// the second fails on the first's names and leaves nothing of its own.
func TestLabTwoSideBySide(t *testing.T) {
	needLabs(t)
	for _, p := range []string{"a", "b"} {
		if _, stderr, code := nsh(t, "", "up", "--name", p, "--prefix", p+"-", "../../scripts/chain.star", "3"); code != 0 {
			t.Fatalf("up %s: %d %q", p, code, stderr)
		}
	}
	for _, n := range []string{"a-c1", "b-c3"} {
		if _, err := os.Stat("/run/netns/" + n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	_, stderr, code := nsh(t, "", "up", "--name", "c", "--prefix", "a-", "../../scripts/chain.star", "3")
	if code == 0 || !strings.Contains(stderr, `lab "a"`) {
		t.Errorf("a lab whose names clash with lab a's: %d %q", code, stderr)
	}
	if _, err := labs.Open("c"); err == nil {
		t.Error("the clashing lab was left")
	}
	if _, err := os.Stat("/run/netns/a-c1"); err != nil {
		t.Errorf("the clash took lab a's name away: %v", err)
	}
	for _, p := range []string{"a", "b"} {
		if _, stderr, code := nsh(t, "", "down", p); code != 0 {
			t.Errorf("down %s: %d %q", p, code, stderr)
		}
	}
}

// down after a daemon died and a link was deleted by hand: reported as
// gone, not fatal; a link of the same name made by someone else since is
// left alone.
func TestLabDownAfterChangesByHand(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "hand.star", `
a = netns("lt-x", persist = False)
veth("lt-v0", "lt-v1", peer_ns = a)
veth("lt-w0", "lt-w1", peer_ns = a)
spawn(["sleep", "3600"], ns = a)
`)
	if _, stderr, code := nsh(t, "", "up", r); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	for _, c := range [][]string{{"link", "del", "lt-v0"}, {"link", "del", "lt-w0"}, {"link", "add", "lt-w0", "type", "veth", "peer", "name", "lt-w9"}} {
		if b, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", c, err, b)
		}
	}
	defer exec.Command("ip", "link", "del", "lt-w0").Run()
	exec.Command("pkill", "-f", "^sleep 3600$").Run()
	out, _, _ := nsh(t, "", "status", "hand")
	if !strings.Contains(out, "lt-v0") || !strings.Contains(out, "gone") {
		t.Errorf("status does not show the deleted link:\n%s", out)
	}
	_, stderr, code := nsh(t, "", "down", "hand")
	if code != 0 || !strings.Contains(stderr, "already gone") {
		t.Errorf("down: %d %q", code, stderr)
	}
	if err := exec.Command("ip", "link", "show", "lt-w0").Run(); err != nil {
		t.Error("down deleted a link of the lab's name that someone else made since")
	}
}

// nsh up killed after each of its changes in turn — and its reaper with
// it, as the OOM killer may — leaves a journal that nsh gc undoes:
// nothing is left (a node's mount namespace bound in the lab's ns/ too).
func TestLabKilledThenGC(t *testing.T) {
	bin := needFaultBin(t)
	needLabs(t)
	r := labRecipe(t, "gcme.star", `
a = netns("lg-a", persist = False)
b = netns("lg-b", persist = False)
veth("lg-0", "lg-1", ns = a, peer_ns = b, addr = "10.233.0.1/24", peer_addr = "10.233.0.2/24")
veth("lg-h0", "lg-h1", peer_ns = b)
bridge("lg-br")
u = unshare("net").net
setns(b)
unshare("mnt", "uts")

`)
	count := filepath.Join(t.TempDir(), "count")
	cmd := exec.Command(bin, "up", r)
	cmd.Env = append(os.Environ(), "NSH_FAULT=count="+count)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("up without faults: %v\n%s", err, b)
	}
	if _, stderr, code := nsh(t, "", "down", "gcme"); code != 0 {
		t.Fatalf("down: %q", stderr)
	}
	changes := counted(t, count)
	for k := 1; k <= changes; k++ {
		for _, with := range []string{"", ",with-reaper"} {
			fault := fmt.Sprintf("kill-after=%d%s", k, with)
			t.Run(fault, func(t *testing.T) {
				leakcheck.Check(t)
				cmd := exec.Command(bin, "up", r)
				cmd.Env = append(os.Environ(), "NSH_FAULT="+fault)
				out, _ := cmd.CombinedOutput()
				if ws := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ws.Signaled() {
					t.Fatalf("NSH_FAULT=%s: nsh was not killed:\n%s", fault, out)
				}
				if _, stderr, code := nsh(t, "", "gc"); code != 0 {
					t.Errorf("gc: %d %q", code, stderr)
				}
				if _, err := labs.Open("gcme"); err == nil {
					t.Error("gc left the lab")
				}
			})
		}
	}
	t.Logf("%d changes, nsh up killed after each, with and without its reaper", changes)
}

// A process the recipe starts and does not wait for is a daemon of the
// lab: it outlives nsh up (which returns: the daemon does not hold its
// output), writes to the lab's log, and dies with nsh down.
func TestLabDaemonLivesUntilDown(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "daemon.star", `
a = netns("ld-a", persist = False)
spawn(["sh", "-c", "echo started; exec sleep 3601"], ns = a)
`)
	if _, stderr, code := nsh(t, "", "up", r); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	l, err := labs.Open("daemon")
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(l.Dir, "logs", "*.log"))
	if len(logs) != 1 {
		t.Fatalf("logs: %q", logs)
	}
	// nsh up returns once the daemon is started, not once its shell has
	// written and exec'd sleep: give it time (a loaded machine is slow).
	var running bool
	var log []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-f", "^sleep 3601$").Output()
		log, _ = os.ReadFile(logs[0])
		if running = len(out) > 0; running && string(log) == "started\n" {
			break
		}
	}
	if !running {
		t.Error("the daemon did not outlive nsh up")
	}
	if string(log) != "started\n" {
		t.Errorf("daemon log %q", log)
	}
	if _, stderr, code := nsh(t, "", "down", "daemon"); code != 0 {
		t.Fatalf("down: %d %q", code, stderr)
	}
	if s := survivors("^sleep 3601$"); s != "" {
		t.Errorf("the daemon survived nsh down: %s", s)
	}
}

// nsh status compares what the journal notes the lab built with the
// kernel: a veth, an address and a route deleted by hand are listed,
// exactly those, and the lab is degraded.
func TestLabStatusDiff(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "diff.star", `
a = netns("ls-a", persist = False)
b = netns("ls-b", persist = False)
veth("ls-a0", "ls-b0", ns = a, peer_ns = b, addr = ["10.231.0.1/24", "10.231.1.1/24"], peer_addr = "10.231.0.2/24")
veth("ls-a1", "ls-b1", ns = a, peer_ns = b)
route("10.231.9.0/24", via = "10.231.0.2", ns = a)
route("10.231.8.0/24", via = "10.231.0.2", ns = a)
br = bridge("ls-br", ns = b)
`)
	if _, stderr, code := nsh(t, "", "up", r); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	defer nsh(t, "", "down", "diff")
	out, _, _ := nsh(t, "", "status", "diff")
	if strings.Contains(out, "differs") || !strings.Contains(out, "lab diff: up") {
		t.Fatalf("status of an intact lab:\n%s", out)
	}
	for _, c := range [][]string{
		{"-n", "ls-a", "link", "del", "ls-a1"},
		{"-n", "ls-a", "addr", "del", "10.231.1.1/24", "dev", "ls-a0"},
		{"-n", "ls-a", "route", "del", "10.231.9.0/24"},
	} {
		if b, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", c, err, b)
		}
	}
	out, stderr, code := nsh(t, "", "status", "diff", "--json")
	var st struct {
		State   string
		Missing []string
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v\n%s%s", code, err, out, stderr)
	}
	// Links in the order made, each with its addresses; then routes.
	want := []string{
		"address 10.231.1.1/24 of link ls-a0 in node ls-a is missing",
		"link ls-a1 in node ls-a (veth) is missing",
		"link ls-b1 in node ls-b (veth) is missing",
		"route 10.231.9.0/24 via 10.231.0.2 in node ls-a is missing",
	}
	if st.State != "degraded" || strings.Join(st.Missing, "\n") != strings.Join(want, "\n") {
		t.Errorf("status after deleting a veth, an address and a route by hand: %s\n%s\nwant:\n%s", st.State, strings.Join(st.Missing, "\n"), strings.Join(want, "\n"))
	}
	out, _, _ = nsh(t, "", "status", "diff")
	if !strings.Contains(out, "lab diff: degraded") || !strings.Contains(out, "differs from the journal: route 10.231.9.0/24") {
		t.Errorf("status:\n%s", out)
	}
}

// nsh attach binds the lab's nodes and links in the REPL (read from a
// pipe here); leaving it undoes what the session made and keeps the lab.
func TestLabAttach(t *testing.T) {
	needLabs(t)
	if _, stderr, code := nsh(t, "", "up", "../../scripts/chain.star", "3"); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	defer nsh(t, "", "down", "chain")
	in := `print(c1 == netns("c1"), c3)
print(c1_eth1, c2_eth1)
veth("at-0", "at-1", ns = c1, peer_ns = c2)
print(len(c2_eth0.addrs))
`
	out, stderr, code := nsh(t, in, "attach", "chain")
	if code != 0 || !strings.Contains(stderr, "nodes c1 c2 c3; links c1_eth1 c2_eth0 c2_eth1 c3_eth0") {
		t.Fatalf("attach: %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"True net:[", "link(c1-eth1, netns c1) link(c2-eth1, netns c2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("attach printed no %q:\n%s%s", want, out, stderr)
		}
	}
	if b, err := exec.Command("ip", "-n", "c1", "link", "show", "at-0").CombinedOutput(); err == nil {
		t.Errorf("the veth the session made outlived it: %s", b)
	}
	out, _, _ = nsh(t, "", "status", "chain")
	if !strings.Contains(out, "lab chain: up") || strings.Contains(out, "differs") {
		t.Errorf("the lab after attach:\n%s", out)
	}
	if _, stderr, code := nsh(t, "", "attach", "nolab"); code == 0 || !strings.Contains(stderr, `lab "nolab"`) {
		t.Errorf("attach of a missing lab: %d %q", code, stderr)
	}
}

// nsh up --dry-run builds the lab in a throwaway sandbox and prints the
// plan as commands: nothing is left, not even a daemon of the recipe, and
// the host's sysctls cannot be written.
func TestLabDryRun(t *testing.T) {
	needLabs(t)
	out, stderr, code := nsh(t, "", "up", "--dry-run", "../../scripts/chain.star", "3")
	if code != 0 {
		t.Fatalf("up --dry-run: %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"#!/bin/sh\n# nsh up --dry-run", "\nip netns add c1\n", "\nip -n c1 link add name c1-eth1 up type veth peer name c2-eth0 netns c2\n",
		"\nip -n c2 addr add 10.100.1.2/24 dev c2-eth0\n", "\nip -n c3 route add default via 10.100.2.1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan has no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "chain: c1") || !strings.Contains(stderr, "chain: c1 --- c2 --- c3") {
		t.Errorf("the recipe's output belongs on stderr (stdout is the plan):\n%s\n%s", out, stderr)
	}
	if _, err := os.Stat("/run/netns/c1"); err == nil {
		t.Error("/run/netns/c1 after a dry run")
	}
	if _, err := labs.Open("chain"); err == nil {
		t.Error("a dry run left a lab")
	}
	// What the sandbox hides of the host is checked: a lab of that name,
	// names taken in /run/netns.
	if _, stderr, code := nsh(t, "", "up", "--name", "dry1", "../../scripts/chain.star", "2"); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	_, stderr, code = nsh(t, "", "up", "--dry-run", "--name", "dry1", "../../scripts/chain.star", "2")
	if code != 0 || !strings.Contains(stderr, `on this host, lab "dry1" exists`) || !strings.Contains(stderr, "on this host, c1, c2 exist in /run/netns") {
		t.Errorf("dry run of a lab whose names the host has: %d %q", code, stderr)
	}
	if _, stderr, code := nsh(t, "", "down", "dry1"); code != 0 {
		t.Errorf("down: %d %q", code, stderr)
	}
	r := labRecipe(t, "dryd.star", `
a = netns("ldr-a", persist = False)
spawn(["sleep", "3602"], ns = a)
sysctl("net.ipv4.ip_forward", 1, ns = a)
`)
	out, stderr, code = nsh(t, "", "up", "--dry-run", r)
	if code != 0 || !strings.Contains(out, "ip netns add ldr-a") || !strings.Contains(out, "sleep 3602") {
		t.Errorf("dry run with a daemon: %d\n%s%s", code, out, stderr)
	}
	if s := survivors("^sleep 3602$"); s != "" {
		t.Errorf("the recipe's daemon survived the dry run: %s", s)
	}
	r = labRecipe(t, "dryk.star", `sysctl("vm.swappiness", 59)`)
	if _, stderr, code = nsh(t, "", "up", "--dry-run", r); code == 0 || !strings.Contains(stderr, "read-only") {
		t.Errorf("a dry run wrote a host sysctl (vm.swappiness): %d %q", code, stderr)
	}
}

// The recipes of scripts/ run as labs too (they run as plain scripts in
// examples' TestScripts): each comes up, shows its nodes, and goes down
// leaving nothing.
func TestRecipesAsLabs(t *testing.T) {
	needLabs(t)
	recipes, _ := filepath.Glob("../../scripts/*.star")
	if len(recipes) == 0 {
		t.Fatal("no recipes in scripts/")
	}
	for _, r := range recipes {
		name := strings.TrimSuffix(filepath.Base(r), ".star")
		t.Run(name, func(t *testing.T) {
			leakcheck.Check(t)
			src, _ := os.ReadFile(r)
			for _, line := range strings.SplitN(string(src), "\n", 15) {
				if cmds, ok := strings.CutPrefix(line, "# needs:"); ok {
					for _, c := range strings.Fields(cmds) {
						if _, err := exec.LookPath(c); err != nil {
							t.Skipf("needs %s", c)
						}
					}
				}
			}
			args := []string{"up", r}
			if name == "chain" || name == "star" {
				args = append(args, "3")
			}
			if _, stderr, code := nsh(t, "", args...); code != 0 {
				t.Fatalf("nsh up %s: %d\n%s", r, code, stderr)
			}
			if out, stderr, code := nsh(t, "", "status", name); code != 0 || !strings.Contains(out, "lab "+name+": up") {
				t.Errorf("status: %d\n%s%s", code, out, stderr)
			}
			if _, stderr, code := nsh(t, "", "down", name); code != 0 {
				t.Errorf("down: %d %s", code, stderr)
			}
		})
	}
}

// A UTS, an IPC and a mount namespace the recipe makes in a node's
// context are the node's: nsh exec runs there too (with no pid namespace
// to enter, the command replaces nsh), and nsh down removes them.
func TestLabNodeUTSAndIPC(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "node.star", `
h = netns("ln-u1", persist = False)
setns(h)
unshare("uts", "ipc", "mnt")
hostname("ln-u1-host")
`)
	host, _ := os.Hostname()
	if _, stderr, code := nsh(t, "", "up", r); code != 0 {
		t.Fatalf("up: %d %s", code, stderr)
	}
	out, stderr, code := nsh(t, "", "exec", "node", "ln-u1", "--", "hostname")
	if code != 0 || strings.TrimSpace(out) != "ln-u1-host" {
		t.Errorf("hostname in the node: %d %q %q", code, out, stderr)
	}
	for _, kind := range []string{"ipc", "mnt"} {
		self, _ := os.Readlink("/proc/self/ns/" + kind)
		out, _, _ = nsh(t, "", "exec", "node", "ln-u1", "--", "readlink", "/proc/self/ns/"+kind)
		if strings.TrimSpace(out) == self || !strings.HasPrefix(out, kind+":[") {
			t.Errorf("the node's %s namespace is %q, nsh's own %q", kind, out, self)
		}
	}
	if h, _ := os.Hostname(); h != host {
		t.Errorf("the host's name changed to %q", h)
	}
	l, err := labs.Open("node")
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := filepath.Glob(filepath.Join(l.Dir, "ns", "*"))
	if len(kept) != 3 {
		t.Errorf("kept namespaces %q, want the node's uts, ipc and mnt", kept)
	}
	if _, stderr, code := nsh(t, "", "down", "node"); code != 0 {
		t.Fatalf("down: %d %s", code, stderr)
	}
}

// nsh status sums up a lab of over 100 nodes (reading every node's links
// would cost the kernel more than the whole summary); NODE names or
// --links read them.
func TestLabStatusLargeLab(t *testing.T) {
	needLabs(t)
	if _, stderr, code := nsh(t, "", "up", "--name", "big", "../../scripts/star.star", "101"); code != 0 {
		t.Fatalf("up: %d %s", code, stderr)
	}
	defer nsh(t, "", "down", "big")
	out, _, code := nsh(t, "", "status", "big")
	if code != 0 || !strings.Contains(out, "102 nodes, 102 present (a large lab") || strings.Contains(out, "h1-eth0") {
		t.Errorf("status of a large lab:\n%s", out)
	}
	out, _, _ = nsh(t, "", "status", "big", "h7")
	if !strings.Contains(out, "h7-eth0") || strings.Contains(out, "h8-eth0") {
		t.Errorf("status big h7:\n%s", out)
	}
	out, _, _ = nsh(t, "", "status", "big", "--links")
	if !strings.Contains(out, "h101-eth0") {
		t.Errorf("status big --links lacks h101:\n%.2000s", out)
	}
	exec.Command("ip", "netns", "exec", "h7", "ip", "link", "del", "h7-eth0").Run()
	out, _, _ = nsh(t, "", "status", "big", "h7")
	if !strings.Contains(out, "link h7-eth0 in node h7 (veth) is missing") {
		t.Errorf("status big h7 after deleting its link:\n%s", out)
	}
	if _, _, code := nsh(t, "", "status", "big", "nosuch"); code == 0 {
		t.Error("status of a node the lab lacks succeeded")
	}
}

// A node with every kind nsh exec joins: the UTS, IPC and mount namespaces
// unshared in its context, and the pid namespace (with its own /proc) of
// a daemon cloned there. nsh exec runs in all of them, passes the exit
// status through, gives the command the terminal, refuses to run once the
// daemon holding the pid namespace is gone, and nsh down leaves nothing.
func TestLabExecEveryNamespace(t *testing.T) {
	needLabs(t)
	dir := t.TempDir()
	r := labRecipe(t, "every.star", `
setns(netns(lab.prefix + "ln-e1", persist = False))
unshare("uts", "ipc", "mnt")
hostname("ln-e1-host")
mount("tmpfs", argv[1], "tmpfs", "size=1m")
clone("sleep infinity", "pid", mount_proc = True, wait = False)
`)
	if _, stderr, code := nsh(t, "", "up", r, dir); code != 0 {
		t.Fatalf("up: %d %s", code, stderr)
	}
	defer nsh(t, "", "down", "every")
	l, err := labs.Open("every")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Nodes) != 1 || len(l.Daemons) != 1 || l.Nodes[0].Init == nil || l.Nodes[0].Init.Pid != l.Daemons[0].Pid {
		t.Fatalf("lab.json: nodes %+v, daemons %+v: want the daemon as the node's init", l.Nodes, l.Daemons)
	}
	daemon := l.Daemons[0].Pid
	if got := strings.Join(l.Nodes[0].Kinds(), ","); got != "net,uts,ipc,mnt,pid" {
		t.Errorf("the node's kinds are %s", got)
	}
	out, stderr, code := nsh(t, "", "exec", "every", "ln-e1", "--", "hostname")
	if code != 0 || strings.TrimSpace(out) != "ln-e1-host" {
		t.Errorf("hostname in the node: %d %q %q", code, out, stderr)
	}
	mounted := func(mountinfo string) bool {
		for _, line := range strings.Split(mountinfo, "\n") {
			if f := strings.Fields(line); len(f) > 8 && f[4] == dir && strings.Contains(line, " - tmpfs ") {
				return true
			}
		}
		return false
	}
	out, stderr, code = nsh(t, "", "exec", "every", "ln-e1", "--", "cat", "/proc/self/mountinfo")
	if code != 0 || !mounted(out) {
		t.Errorf("the node's tmpfs on %s is not in its mount namespace: %d %q\n%s", dir, code, stderr, out)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); mounted(string(b)) {
		t.Errorf("the node's tmpfs on %s is in the host's mount namespace", dir)
	}
	for _, kind := range []string{"ipc", "uts", "mnt", "pid"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", daemon, kind))
		self, _ := os.Readlink("/proc/self/ns/" + kind)
		out, _, _ = nsh(t, "", "exec", "every", "ln-e1", "--", "readlink", "/proc/self/ns/"+kind)
		if got := strings.TrimSpace(out); got != want || got == self {
			t.Errorf("exec's %s namespace is %q, want the daemon's %q (the host's is %q)", kind, got, want, self)
		}
	}
	// In the daemon's pid namespace, with its /proc: the command's pid is
	// small and pid 1 is the daemon.
	out, stderr, _ = nsh(t, "", "exec", "every", "ln-e1", "--", "sh", "-c", `echo $$; tr '\0' ' ' </proc/1/cmdline`)
	if f := strings.Fields(out); len(f) != 3 || len(f[0]) > 2 || f[1] != "sleep" || f[2] != "infinity" {
		t.Errorf("pid and /proc/1 in the node: %q %q, want a small pid and the daemon", out, stderr)
	}
	if _, _, code := nsh(t, "", "exec", "every", "ln-e1", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exec's exit status %d, want 7 (passed through)", code)
	}
	if _, _, code := nsh(t, "", "exec", "every", "ln-e1", "--", "sh", "-c", "kill -TERM $$"); code != 128+15 {
		t.Errorf("exec of a command killed by SIGTERM: %d, want 143", code)
	}
	// A SIGTERM sent to nsh is passed on to the command.
	term := exec.Command(nshBin, "exec", "every", "ln-e1", "--", "sh", "-c", "echo ready; exec sleep 60")
	stdout, err := term.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := term.Start(); err != nil {
		t.Fatal(err)
	}
	if b := make([]byte, 6); func() bool { n, _ := io.ReadFull(stdout, b); return n < 6 }() {
		t.Error("exec of sh printed nothing")
	}
	term.Process.Signal(unix.SIGTERM)
	if term.Wait(); term.ProcessState.ExitCode() != 128+15 {
		t.Errorf("nsh exec sent SIGTERM: %v, want exit status 143 (the command's, passed on)", term.ProcessState)
	}
	// On a terminal the command leads the foreground process group (in
	// nsh's, the group's id would be 0 in the node's pid namespace):
	// Ctrl-C reaches it.
	cmd, s := startOnPTY(t, nil, "exec", "every", "ln-e1", "--", "sh", "-c",
		`[ "$(ps -o tpgid= -p $$)" -eq $$ ] && [ "$(ps -o pgid= -p $$)" -eq $$ ] && echo FORE$(echo GROUND); exec sleep 60`)
	s.waitFor(t, "FOREGROUND")
	s.typeIn("\x03")
	if err := cmd.Wait(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 130 {
		t.Errorf("exec on a terminal after Ctrl-C: %v, want exit status 130", err)
	}
	// Ctrl-Z stops the command, and nsh with it, which takes the
	// terminal back (so the shell that ran it sees the job stopped);
	// continued, nsh hands the terminal back and the command goes on.
	// (The command forks nothing meanwhile: a vfork child stopped before
	// its exec leaves its parent unstoppable, in any shell's job.)
	cmd, s = startOnPTY(t, nil, "exec", "every", "ln-e1", "--", "sh", "-c", `echo READY; read x; echo "RESU$x"`)
	s.waitFor(t, "READY")
	s.typeIn("\x1a")
	stopped := func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(f) > 0 && f[0] == "T"
	}
	for i := 0; i < 250 && !stopped(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !stopped() {
		t.Error("nsh exec did not stop with its command after Ctrl-Z")
	} else if fg, err := unix.IoctlGetInt(int(s.ptmx.Fd()), unix.TIOCGPGRP); err != nil || fg != cmd.Process.Pid {
		t.Errorf("the terminal's foreground while nsh is stopped: %d %v, want nsh's group %d", fg, err, cmd.Process.Pid)
	}
	unix.Kill(cmd.Process.Pid, unix.SIGCONT)
	s.typeIn("MED\r")
	s.waitFor(t, "RESUMED")
	if err := cmd.Wait(); err != nil {
		t.Errorf("exec continued after Ctrl-Z: %v, want exit status 0", err)
	}
	// The daemon holding the pid namespace dies: exec refuses, naming it.
	if err := unix.Kill(daemon, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && labs.Alive(daemon, l.Daemons[0].Start); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	out, stderr, code = nsh(t, "", "exec", "every", "ln-e1", "--", "hostname")
	if want := fmt.Sprintf("held by daemon %d (sleep infinity), which has exited", daemon); code == 0 || out != "" || !strings.Contains(stderr, want) {
		t.Errorf("exec after the daemon died: %d %q %q, want a refusal saying %q", code, out, stderr, want)
	}
	out, _, _ = nsh(t, "", "status", "every")
	if !strings.Contains(out, "ln-e1 (net,uts,ipc,mnt,pid)") || !strings.Contains(out, "pid namespace is gone") {
		t.Errorf("status after the daemon died:\n%s", out)
	}
	if _, stderr, code := nsh(t, "", "down", "every"); code != 0 {
		t.Fatalf("down: %d %s", code, stderr)
	}
	if ents, _ := os.ReadDir(l.Dir); len(ents) > 0 {
		t.Errorf("%s left after down", l.Dir)
	}
}

// mntnsIDOn returns the id of a mount namespace made on cpu (the nsfs
// ioctl NS_GET_MNTNS_ID); false where the kernel has no such ids or the
// CPU cannot be used.
func mntnsIDOn(cpu int) (uint64, bool) {
	type result struct {
		id uint64
		ok bool
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var one unix.CPUSet
		one.Set(cpu)
		if unix.SchedSetaffinity(0, &one) != nil || unix.Unshare(unix.CLONE_FS|unix.CLONE_NEWNS) != nil {
			c <- result{}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			c <- result{}
			return
		}
		defer unix.Close(fd)
		var id uint64
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), 0x8008b705, uintptr(unsafe.Pointer(&id)))
		c <- result{id, e == 0}
	}()
	r := <-c
	return r.id, r.ok
}

// Namespace ids come from per-CPU batches (Linux 6.18), and the kernel
// binds a mount namespace file only from a namespace of a lower id: nsh
// up, confined to a CPU whose ids are below those of its own mount
// namespace (made on another CPU), still keeps a node's mount namespace
// (it is made again on a CPU that gives it a higher id).
func TestLabNodeMountNSFromLowerCPU(t *testing.T) {
	needLabs(t)
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	id0, ok0 := mntnsIDOn(0)
	id1, ok1 := mntnsIDOn(1)
	if !ok0 || !ok1 {
		t.Skip("no mount namespace ids (NS_GET_MNTNS_ID, Linux 6.8+) or CPUs 0 and 1 unusable")
	}
	high, low := "0", "1"
	if id1 > id0 {
		high, low = "1", "0"
	}
	r := labRecipe(t, "lowcpu.star", `
setns(netns("ln-c1", persist = False))
unshare("mnt", "uts")
hostname("ln-c1-host")
`)
	// nsh runs in a mount namespace made on the high CPU, itself on the
	// low one; the lab lives and goes within that namespace.
	cmd := exec.Command("taskset", "-c", high, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`taskset -c `+low+` "$0" up "$1" && taskset -c `+low+` "$0" exec lowcpu ln-c1 -- hostname; "$0" down lowcpu`, nshBin, r)
	out, stderr, code := runCmd(t, cmd)
	if code != 0 || strings.TrimSpace(out) != "ln-c1-host" || !strings.Contains(stderr, `lab "lowcpu" is up`) || !strings.Contains(stderr, `lab "lowcpu" is down`) {
		t.Errorf("nsh up on CPU %s in a mount namespace made on CPU %s: %d %q\n%s", low, high, code, out, stderr)
	}
}

// A pid namespace made by unshare("pid") has nsh up's process as its init
// and ends with nsh up: nsh up warns, and nsh exec then refuses to run
// outside it rather than run in the host's.
func TestLabUnsharedPidNamespaceWarns(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "pidns.star", `
setns(netns("ln-q1", persist = False))
unshare("pid")
spawn("sleep infinity")
`)
	_, stderr, code := nsh(t, "", "up", r)
	if code != 0 || !strings.Contains(stderr, `node ln-q1's pid namespace has nsh up's process as its init (unshare("pid")): it ends with nsh up`) {
		t.Errorf("up: %d %q, want a warning", code, stderr)
	}
	defer nsh(t, "", "down", "pidns")
	var out string
	for i := 0; i < 100; i++ {
		if out, stderr, code = nsh(t, "", "exec", "pidns", "ln-q1", "--", "true"); code != 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// (Refused as its init's pid namespace is gone, or, if exec came
	// before the daemon was killed with it, as fork(2) fails there.)
	if code == 0 || out != "" || !regexp.MustCompile(`daemon \d+ \(sleep infinity\), which has exited|pid namespace has lost its init \(daemon \d+ \(sleep infinity\)`).MatchString(stderr) {
		t.Errorf("exec once the pid namespace ended: %d %q %q, want a refusal", code, out, stderr)
	}
}
