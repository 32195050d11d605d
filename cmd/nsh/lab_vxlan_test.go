package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A lab with VXLAN links: nsh up keeps them (the overlay works after nsh
// up returns, nsh status finds them), nsh down deletes them, the one in
// the host's namespace too.
func TestLabVxlan(t *testing.T) {
	needLabs(t)
	r := labRecipe(t, "lv.star", `
a = netns("lv-a")
b = netns("lv-b")
h1 = netns("lv-h1")
h2 = netns("lv-h2")
veth("lv-u0", "lv-u1", ns = a, peer_ns = b, addr = "192.168.78.1/24", peer_addr = "192.168.78.2/24")
start = namespaces()
setns(a)
vxlan("lv-x1", 78, remote = "192.168.78.2", dev = "lv-u0", ns = h1, addr = "10.78.0.1/24")
setns(b)
vxlan("lv-x2", 78, remote = "192.168.78.1", dev = "lv-u1", ns = h2, addr = "10.78.0.2/24")
setns(start)
vxlan("lv-hx", 79, remote = "192.0.2.9", addr = "10.79.0.1/24")
`)
	if _, stderr, code := nsh(t, "", "up", r); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	if b, err := exec.Command("ip", "netns", "exec", "lv-h1", "ping", "-c1", "-W2", "-M", "do", "-s", "1422", "10.78.0.2").CombinedOutput(); err != nil {
		t.Errorf("h1 cannot reach h2 over VXLAN with a full-size DF ping once the lab is up: %v\n%s", err, b)
	}
	if b, err := exec.Command("ip", "-d", "link", "show", "lv-hx").CombinedOutput(); err != nil || !strings.Contains(string(b), "vxlan id 79") {
		t.Errorf("the host's VXLAN link after up: %v\n%s", err, b)
	}
	out, stderr, code := nsh(t, "", "status", "lv", "--json")
	var st struct {
		State   string
		Missing []string
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v\n%s%s", code, err, out, stderr)
	}
	if st.State != "up" || len(st.Missing) > 0 {
		t.Errorf("status: %+v\n%s", st, out)
	}
	if _, stderr, code := nsh(t, "", "down", "lv"); code != 0 || !strings.Contains(stderr, `lab "lv" is down`) {
		t.Fatalf("down: %d %q", code, stderr)
	}
	if b, err := exec.Command("ip", "link", "show", "lv-hx").CombinedOutput(); err == nil {
		t.Errorf("nsh down left the host's VXLAN link:\n%s", b)
	}
	for _, n := range []string{"lv-a", "lv-b", "lv-h1", "lv-h2"} {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			t.Errorf("/run/netns/%s after down", n)
		}
	}
}
