package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nsh.dev/nsh/internal/leakcheck"
)

// soakScript runs argv[1] cycles of creating and destroying what a
// script makes most — a named netns, a veth pair into it, a tmpfs mount,
// a spawned process, an unshared netns left with setns — after a warm-up
// of a tenth of them (at least 100, at most 1,000: the heap and the
// namespace table are settled well before). It prints "sample RSS_KB FDS" of the
// nsh process after the warm-up and at ten checkpoints.
const soakScript = `
cycles = int(argv[1])
target = argv[2]
start = namespaces()

def sample():
    out = run(["sh", "-c", "grep VmRSS /proc/$PPID/status; ls /proc/$PPID/fd | wc -l"]).stdout.split()
    print("sample", out[1], out[3])

def cycle():
    n = netns("soak-n", persist = False)
    a, _ = veth("soak-a", "soak-b", peer_ns = n)
    a.delete()
    netns_delete("soak-n")
    mount("tmpfs", target, fstype = "tmpfs")
    umount(target)
    spawn(["true"]).wait()
    unshare("net")
    setns(start)

for i in range(max(100, min(1000, cycles // 10))):
    cycle()
sample()
for i in range(cycles):
    cycle()
    if (i + 1) % (cycles // 10) == 0:
        sample()
`

// Soak bounds (a cycle costs ~20 ms on an idle machine, mostly the
// kernel's veth deletion, and 2-5 times that on a loaded one, so the
// default count catches only gross growth, over ~32 KB a cycle; make soak's
// 100,000 catch 160 bytes a cycle): nsh's descriptors after the warm-up and at every
// checkpoint differ by at most soakFds (the namespace table releases
// dropped namespaces in sweeps, once 32 are dropped: 2 descriptors each,
// a namespace file and its netlink socket), and its RSS grows by less
// than soakRSSKB from the warm-up to the end.
const (
	soakFds   = 64
	soakRSSKB = 16 << 10
)

// TestSoak runs soakScript with NSH_SOAK_CYCLES cycles (default 500;
// "make soak" runs 100,000) in one nsh process and checks that its
// descriptors and RSS stay flat within the bounds above, and that nothing
// is left after. Issue 18 item 5. It would have caught issue 15 item 7
// (namespaces never released: 2 descriptors per cycle, EMFILE at cycle
// 118 under ulimit -n 256).
func TestSoak(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (named netns, host mounts)")
	}
	cycles := 500
	if s := os.Getenv("NSH_SOAK_CYCLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			t.Fatalf("NSH_SOAK_CYCLES=%q: want a number of at least 10", s)
		}
		cycles = n
	}
	leakcheck.Check(t)
	target := t.TempDir()
	script := filepath.Join(t.TempDir(), "soak.star")
	if err := os.WriteFile(script, []byte(soakScript), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, stderr, code := runCmd(t, exec.Command(nshBin, script, strconv.Itoa(cycles), target))
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d after %v; stderr %s", code, took, stderr)
	}
	var rss, fds []int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r, f int
		if _, err := fmt.Sscanf(line, "sample %d %d", &r, &f); err != nil {
			t.Fatalf("unexpected output line %q", line)
		}
		rss, fds = append(rss, r), append(fds, f)
	}
	if len(rss) != 11 {
		t.Fatalf("%d samples, want 11: %q", len(rss), out)
	}
	most := fds[0]
	for _, f := range fds {
		if f-fds[0] > soakFds || fds[0]-f > soakFds {
			t.Errorf("descriptors went from %d (after the warm-up) to %d, beyond ±%d: %v", fds[0], f, soakFds, fds)
		}
		most = max(most, f)
	}
	if grow := rss[len(rss)-1] - rss[0]; grow >= soakRSSKB {
		t.Errorf("RSS grew by %d KB over %d cycles (%v KB), want under %d KB", grow, cycles, rss, soakRSSKB)
	}
	t.Logf("%d cycles in %v (%.1f ms each): fds %d after warm-up, %d at the end, at most %d; RSS %.1f MB after warm-up, %.1f MB at the end (samples %v KB)",
		cycles, took.Round(time.Second), float64(took.Microseconds())/1000/float64(cycles),
		fds[0], fds[len(fds)-1], most, float64(rss[0])/1024, float64(rss[len(rss)-1])/1024, rss)
}
