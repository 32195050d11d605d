package main_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nsh.dev/nsh/internal/leakcheck"
)

// faultBin is nsh built with the test-only fault injector (tag nshfault,
// internal/fault), built once by the first test that needs it.
var faultBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "nsh-fault")
	if err != nil {
		return "", err
	}
	faultDir = dir
	bin := filepath.Join(dir, "nsh")
	if out, err := exec.Command("go", "build", "-tags", "nshfault", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building nsh -tags nshfault: %v\n%s", err, out)
	}
	return bin, nil
})

// faultDir holds faultBin's build, removed when the tests end.
var faultDir string

// needFaultBin skips where the fault build cannot be made or used: not
// root (the host's links, mounts and sysctls), or a prebuilt nsh (the
// rootless run, which cannot build).
func needFaultBin(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv("NSH_BIN") != "" {
		t.Skip("needs root and a Go toolchain (nsh built with -tags nshfault)")
	}
	bin, err := faultBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// faultRun runs script with NSH_FAULT=fault and returns nsh's stderr and
// how it ended. It returns once nsh and its reaper are gone: the reaper
// writes to nsh's stderr, so the pipe ends only when both have exited
// (and every other process that kept it).
func faultRun(t *testing.T, bin, script, fault string) (string, syscall.WaitStatus) {
	t.Helper()
	stderr, ws, _ := faultRunPid(t, bin, script, fault)
	return stderr, ws
}

// faultRunPid is faultRun that also returns nsh's pid, and checks that
// the run left no cgroup.
func faultRunPid(t *testing.T, bin, script, fault string) (string, syscall.WaitStatus, int) {
	t.Helper()
	return faultRunArgs(t, bin, fault, "-c", script)
}

// killed fails the test unless nsh died of the injected SIGKILL (else the
// fault point was never reached and the case proves nothing).
func killed(t *testing.T, fault, stderr string, ws syscall.WaitStatus) {
	t.Helper()
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("NSH_FAULT=%s: nsh ended with %v, not by the injected SIGKILL: the point was not reached\n%s", fault, ws, stderr)
	}
}

// hostState is what the leak checker does not see and a run may change,
// one "what=value" per line: the sysctls of the host's network namespace
// (/proc/sys/net, but those of each link) and the global ones of
// /proc/sys/vm, the hostname and domainname, and the files under each of
// dirs ("absent" if it is not there). diffState shows two of them side
// by side.
func hostState(t *testing.T, dirs ...string) string {
	t.Helper()
	var lines []string
	for _, root := range []string{"/proc/sys/net", "/proc/sys/vm"} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				// A link's own (conf/IF, neigh/IF) come and go with
				// it, which the leak checker watches, waiting for the
				// kernel's asynchronous cleanup.
				if parent := filepath.Base(filepath.Dir(p)); (parent == "conf" || parent == "neigh") && d.Name() != "all" && d.Name() != "default" {
					return filepath.SkipDir
				}
				return nil
			}
			if b, err := os.ReadFile(p); err == nil {
				lines = append(lines, "sysctl "+strings.TrimPrefix(p, "/proc/sys/")+"="+strings.TrimSpace(string(b)))
			}
			return nil
		})
	}
	for _, f := range []string{"hostname", "domainname"} {
		b, _ := os.ReadFile("/proc/sys/kernel/" + f)
		lines = append(lines, f+"="+strings.TrimSpace(string(b)))
	}
	for _, dir := range dirs {
		if _, err := os.Lstat(dir); err != nil {
			lines = append(lines, "absent "+dir)
			continue
		}
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil && p != dir {
				lines = append(lines, "file "+p)
			}
			return nil
		})
	}
	return strings.Join(lines, "\n")
}

// diffState lists the lines of the host states before and after that
// differ ("- was", "+ is").
func diffState(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	inB, inA := map[string]bool{}, map[string]bool{}
	for _, l := range b {
		inB[l] = true
	}
	for _, l := range a {
		inA[l] = true
	}
	var out []string
	for _, l := range b {
		if !inA[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range a {
		if !inB[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// keepaliveIntvl returns the host's net.ipv4.tcp_keepalive_intvl, the
// sysctl these tests change, and puts it back when the test ends.
func keepaliveIntvl(t *testing.T) int {
	t.Helper()
	const path = "/proc/sys/net/ipv4/tcp_keepalive_intvl"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(path, b, 0) })
	return n
}

// counted returns how many changes a run with NSH_FAULT=count=FILE made.
func counted(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the fault build wrote no count: %v", err)
	}
	return strings.Count(string(b), "\n")
}

// noCgroups fails the test if the nsh run with pid left a cgroup (named
// nsh-PID-*, see builtins' tracker).
func noCgroups(t *testing.T, pid int) {
	t.Helper()
	for _, pat := range []string{"/sys/fs/cgroup/*/nsh-%d-*", "/sys/fs/cgroup/nsh-%d-*"} {
		if m, _ := filepath.Glob(fmt.Sprintf(pat, pid)); len(m) > 0 {
			t.Errorf("the run left its cgroup %s", m[0])
		}
	}
}

// A SIGKILL at any instant of a change leaves nothing: the reaper learns
// of each change before it is made (write ahead) and undoes it if it
// exists and is the one nsh made. Each case kills nsh between two system
// calls of one kind of change, or right after the change returns and
// before nsh records anything else (kill-after).
func TestKillDuringEveryChange(t *testing.T) {
	bin := needFaultBin(t)
	n := keepaliveIntvl(t)
	moveBoth := `
host = namespaces()
inner = unshare("net").net
setns(host)
m0, m1 = veth("wa-m0", "wa-m1", ns = inner, peer_ns = inner)
m0.move(host.net)
m1.move(host.net)
`
	cases := []struct{ name, script, fault string }{
		{"netns name linked, not mounted", `netns("wa-ns", persist = False)`, "kill-at=netns.linked"},
		{"netns name made", `netns("wa-ns", persist = False)`, "kill-after=1"},
		{"kept netns half made", `netns("wa-kept")`, "kill-at=netns.linked"},
		{"host veth added", `veth("wa-a", "wa-b")`, "kill-at=link.added"},
		{"host veth made", `veth("wa-a", "wa-b")`, "kill-after=1"},
		{"veth with addresses", `veth("wa-a", "wa-b", addr = "10.231.0.1/24", peer_addr = "10.231.0.2/24")`, "kill-after=2"},
		{"host bridge added", `bridge("wa-br")`, "kill-at=link.added"},
		{"host vxlan added", `vxlan("wa-vx", 42, remote = "192.0.2.1")`, "kill-at=link.added"},
		{"vxlan added into the host from an inner underlay", `host = namespaces()
inner = unshare("net").net
vxlan("wa-vx", 42, remote = "192.0.2.1", ns = host.net)`, "kill-at=link.added"},
		{"host vxlan with an address", `vxlan("wa-vx", 42, remote = "192.0.2.1", addr = "10.233.0.1/24")`, "kill-after=2"},
		{"link moved into the host, first end", moveBoth, "kill-at=link.moved#1"},
		{"link moved into the host, second end", moveBoth, "kill-at=link.moved#2"},
		{"host link renamed", `a, b = veth("wa-r0", "wa-r1")
a.rename("wa-r2")`, "kill-at=link.renamed"},
		{"host sysctl written", fmt.Sprintf(`sysctl("net.ipv4.tcp_keepalive_intvl", %d)`, n+1), "kill-at=sysctl.written"},
		{"host sysctl made", fmt.Sprintf(`sysctl("net.ipv4.tcp_keepalive_intvl", %d)`, n+1), "kill-after=1"},
		{"mount: directory made", `mount("tmpfs", DIR + "/a/b", "tmpfs", mkdir = True)`, "kill-at=inroot.created#2"},
		{"mount: mounted", `mount("tmpfs", DIR + "/a/b", "tmpfs", mkdir = True)`, "kill-at=mount.mounted"},
		{"mount: made", `mount("tmpfs", DIR + "/a/b", "tmpfs", mkdir = True)`, "kill-after=1"},
		{"file bind: file made", `mount("/etc/hostname", DIR + "/f/hostname", bind = True, mkdir = True)`, "kill-at=inroot.created#2"},
		{"file bind: mounted", `mount("/etc/hostname", DIR + "/f/hostname", bind = True, mkdir = True)`, "kill-at=mount.mounted"},
		{"mount in the run's mount namespace: directory made", `unshare("mnt")
mount("tmpfs", DIR + "/a/b", "tmpfs", mkdir = True)`, "kill-at=inroot.created#1"},
		{"mount in the run's mount namespace: mounted", `unshare("mnt")
mount("tmpfs", DIR + "/a/b", "tmpfs", mkdir = True)`, "kill-at=mount.mounted"},
		{"mount in the run's mount namespace: made", `unshare("mnt")
mount("tmpfs", DIR + "/a/b", "tmpfs", mkdir = True)`, "kill-after=2"},
		{"the run's cgroup made", `spawn(["sleep", "100"])`, "kill-at=cgroup.made"},
		{"a process started", `spawn(["sleep", "100"])`, "kill-after=2"},
		{"host hostname set", `hostname("wa-" + hostname())`, "kill-at=uts.set"},
		{"host hostname changed", `hostname("wa-" + hostname())`, "kill-after=1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leakcheck.Check(t)
			dir := t.TempDir()
			before := hostState(t, dir)
			t.Cleanup(func() { exec.Command("ip", "netns", "del", "wa-kept").Run() })
			script := fmt.Sprintf("DIR = %q\n%s", dir, c.script)
			stderr, ws := faultRun(t, bin, script, c.fault)
			killed(t, c.fault, stderr, ws)
			if after := hostState(t, dir); after != before {
				t.Errorf("NSH_FAULT=%s left:\n%s\nnsh's stderr:\n%s", c.fault, diffState(before, after), stderr)
			}
			if _, err := os.Lstat("/run/netns/wa-kept"); err == nil {
				t.Errorf("NSH_FAULT=%s: the half-made name /run/netns/wa-kept is left", c.fault)
			}
		})
	}
}

// scriptPos is the script position an error of `nsh -c` names.
var scriptPos = regexp.MustCompile(`(?m)^-c:\d+:\d+: `)

// Killed right after each of its changes in turn, for every change a
// script makes, nsh leaves nothing; and the k-th change failing leaves
// nothing either, with an error naming the script's line.
func TestKillAfterEveryChange(t *testing.T) {
	bin := needFaultBin(t)
	n := keepaliveIntvl(t)
	dir := t.TempDir()
	script := fmt.Sprintf(`
netns("wk-red", persist = False)
a, b = veth("wk-a", "wk-b", addr = "10.232.0.1/24", peer_ns = netns("wk-red"), peer_addr = "10.232.0.2/24")
br = bridge("wk-br")
a.set_master(br)
sysctl("net.ipv4.tcp_keepalive_intvl", %d)
mount("tmpfs", %q, "tmpfs", mkdir = True)
host = namespaces()
inner = unshare("net").net
setns(host)
m0, m1 = veth("wk-m0", "wk-m1", ns = inner, peer_ns = inner)
m0.move(host.net)
m1.move(host.net)
m0.rename("wk-m2")
vxlan("wk-vx", 5, remote = "192.0.2.1", dev = "wk-m2", addr = "10.233.0.1/24")
`, n+1, filepath.Join(dir, "x", "mnt"))
	count := filepath.Join(t.TempDir(), "count")
	if stderr, ws := faultRun(t, bin, script, "count="+count); ws.ExitStatus() != 0 {
		t.Fatalf("the script fails without faults: %v\n%s", ws, stderr)
	}
	changes := counted(t, count)
	if changes < 10 {
		t.Fatalf("the script made %d changes, want at least 10", changes)
	}
	for k := 1; k <= changes; k++ {
		for _, mode := range []string{"kill-after", "fail-at"} {
			fault := fmt.Sprintf("%s=%d", mode, k)
			t.Run(fault, func(t *testing.T) {
				leakcheck.Check(t)
				before := hostState(t, dir)
				stderr, ws := faultRun(t, bin, script, fault)
				if mode == "kill-after" {
					killed(t, fault, stderr, ws)
				} else if ws.ExitStatus() != 1 || !strings.Contains(stderr, "injected fault") || !scriptPos.MatchString(stderr) {
					t.Errorf("NSH_FAULT=%s: exit %v, stderr:\n%s", fault, ws, stderr)
				}
				if after := hostState(t, dir); after != before {
					t.Errorf("NSH_FAULT=%s left:\n%s\nnsh's stderr:\n%s", fault, diffState(before, after), stderr)
				}
			})
		}
	}
	t.Logf("%d changes, each killed after and failed: %d faults injected", changes, 2*changes)
}

// SIGKILL at random instants of a run's first 30 ms, where a probe once
// found a leak in about 5 runs of 100 (a netns, a stale /run/netns file, a
// host veth pair, a tmpfs mount and its directory): none of 200 leaves
// anything, nor a process the run started or its child (make soak: 2,000).
// It would have caught "fourteen defects" items 10 (a stale /run/netns
// file after a SIGKILL in the first milliseconds of netns()) and 8 (a
// grandchild of spawn() surviving kill -9 of nsh).
func TestKillAtRandomTimes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the host's links, mounts, sysctls)")
	}
	n := keepaliveIntvl(t)
	dir := t.TempDir()
	script := fmt.Sprintf(`
netns("wr-p1", persist = False)
veth("wr-a", "wr-b")
bridge("wr-br")
sysctl("net.ipv4.tcp_keepalive_intvl", %d)
mount("tmpfs", %q, "tmpfs", mkdir = True)
spawn(["sh", "-c", "sleep 3011 & sleep 3012"])
netns("wr-p2", persist = False)
veth("wr-c", "wr-d", peer_ns = netns("wr-p2"))
`, n+1, filepath.Join(dir, "x", "mnt"))
	adoptOrphans(t)
	leakcheck.Check(t)
	before := hostState(t, dir)
	initial, err := leakcheck.Take()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	runs := 200
	if soak() {
		runs = 2000
	}
	landed := 0
	for i := 0; i < runs; i++ {
		after := time.Duration(rng.IntN(30_000)) * time.Microsecond
		cmd := exec.Command(nshBin, "-c", script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		cmd.Process.Kill()
		if err := cmd.Wait(); err == exec.ErrWaitDelay {
			t.Fatalf("run %d, killed after %v: the reaper still ran 10 s later", i, after)
		}
		if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			landed++
		}
		noCgroups(t, cmd.Process.Pid)
		// The leak checker's own view, run by run, so a leak names the
		// instant that made it.
		if left := leftBehind(t, initial, before, dir); len(left) > 0 {
			t.Fatalf("run %d, killed after %v, left:\n%s\nnsh's stderr:\n%s", i, after, strings.Join(left, "\n"), stderr.String())
		}
		if m, _ := filepath.Glob(fmt.Sprintf("/run/nsh/runs/%d-*", cmd.Process.Pid)); len(m) > 0 {
			t.Fatalf("run %d, killed after %v, left its journal %s", i, after, m[0])
		}
	}
	t.Logf("%d SIGKILLs at random in a run's first 30 ms (%d landed before nsh ended): nothing left", runs, landed)
}

// A plain run that makes what no descriptor holds keeps a journal beside
// its reaper: gone at the end of the run, removed by the reaper after a
// SIGKILL of nsh, and undone by nsh gc when nsh and its reaper are both
// killed (as the OOM killer may), after each change in turn.
func TestRunJournalGC(t *testing.T) {
	bin := needFaultBin(t)
	n := keepaliveIntvl(t)
	dir := t.TempDir()
	script := fmt.Sprintf(`
netns("wg-red", persist = False)
veth("wg-a", "wg-b", peer_ns = netns("wg-red"))
bridge("wg-br")
sysctl("net.ipv4.tcp_keepalive_intvl", %d)
mount("tmpfs", %q, "tmpfs", mkdir = True)
`, n+1, filepath.Join(dir, "x", "mnt"))
	runDirs := func() []string { m, _ := filepath.Glob("/run/nsh/runs/*"); return m }
	before := runDirs()
	count := filepath.Join(t.TempDir(), "count")
	if stderr, ws := faultRun(t, bin, script, "count="+count); ws.ExitStatus() != 0 {
		t.Fatalf("without faults: %v\n%s", ws, stderr)
	}
	if got := runDirs(); len(got) != len(before) {
		t.Fatalf("a run that ended left its journal: %q", got)
	}
	changes := counted(t, count)
	for k := 1; k <= changes; k++ {
		for _, with := range []string{"", ",with-reaper"} {
			fault := fmt.Sprintf("kill-after=%d%s", k, with)
			t.Run(fault, func(t *testing.T) {
				leakcheck.Check(t)
				hs := hostState(t, dir)
				stderr, ws := faultRun(t, bin, script, fault)
				killed(t, fault, stderr, ws)
				if with == "" && len(runDirs()) != len(before) {
					t.Errorf("the reaper left the run's journal: %q", runDirs())
				}
				if _, stderr, code := nsh(t, "", "gc"); code != 0 {
					t.Errorf("gc: %d %q", code, stderr)
				}
				if got := runDirs(); len(got) != len(before) {
					t.Errorf("gc left the run's journal: %q", got)
				}
				if now := hostState(t, dir); now != hs {
					t.Errorf("NSH_FAULT=%s then gc left:\n%s", fault, diffState(hs, now))
				}
			})
		}
	}
}

// nsh gc undoes a link in a named network namespace only while the name
// still holds the namespace the link was made in: a namespace made again
// under the name, with a link of the same name and index, is left alone.
func TestGCMatchesTheNamespace(t *testing.T) {
	bin := needFaultBin(t)
	leakcheck.Check(t)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", "wn-k").Run() })
	script := `
k = netns("wn-k")
veth("wn-a", "wn-b", ns = k, peer_ns = k)
`
	stderr, ws := faultRun(t, bin, script, "kill-after=2,with-reaper")
	killed(t, "kill-after=2,with-reaper", stderr, ws)
	journals, _ := filepath.Glob("/run/nsh/runs/*/journal")
	var index string
	for _, j := range journals {
		b, _ := os.ReadFile(j)
		if m := regexp.MustCompile(`"kind":"dellink","arg":(\d+),"path":"wn-a"`).FindSubmatch(b); m != nil {
			index = string(m[1])
		}
	}
	if index == "" {
		t.Fatalf("no run journal holds the link: %q", journals)
	}
	for _, c := range [][]string{
		{"netns", "del", "wn-k"}, {"netns", "add", "wn-k"},
		{"-n", "wn-k", "link", "add", "name", "wn-a", "index", index, "type", "veth", "peer", "name", "wn-b"},
	} {
		if b, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", c, err, b)
		}
	}
	if _, stderr, code := nsh(t, "", "gc"); code != 0 {
		t.Errorf("gc: %d %s", code, stderr)
	}
	if err := exec.Command("ip", "-n", "wn-k", "link", "show", "wn-a").Run(); err != nil {
		t.Error("gc deleted a link of the same name and index in another namespace of the same name")
	}
}
