package main_test

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"nsh.dev/nsh/internal/leakcheck"
)

// Ctrl-C during ping(count=50) in a script: ping prints the summary of
// what it saw, as ping(8) prints its statistics, and the run ends with
// 130 (issue 21, item 4). nsh prints no error for an interrupted script,
// so the summary is what tells the user.
func TestPingCtrlCPrintsSummary(t *testing.T) {
	leakcheck.Check(t)
	cmd := exec.Command(nshBin, "-c", `
a = netns_new("pc-a")
b = netns_new("pc-b")
veth("pc-a", "pc-b", ns = a, peer_ns = b, addr = "10.96.0.1/24", peer_addr = "10.96.0.2/24")
print("ready")
ping("10.96.0.2", ns = a, count = 50, interval = 0.05)
print("not reached")
`)
	// Its own process group, signalled as a terminal's Ctrl-C is (a
	// rootless nsh's supervisor leaves SIGINT to the inner nsh).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("did not start: %q %v; stderr %q", line, err, stderr.String())
	}
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	rest, _ := io.ReadAll(r)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130", err)
	}
	out := string(rest)
	if !strings.HasPrefix(out, "10.96.0.2: ") || !strings.Contains(out, " replies, rtt min/avg/max ") ||
		!strings.HasSuffix(out, " (interrupted)\n") {
		t.Errorf("printed %q, want the partial summary; stderr %q", out, stderr.String())
	}
}
