package topo

import (
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"nsh.dev/nsh/internal/leakcheck"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("reading other network namespaces needs root")
	}
	for _, cmd := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("the test builds its topology with %s(8), which is not installed", cmd)
		}
	}
}

// sh runs a shell script that must succeed.
func sh(t *testing.T, script string) {
	t.Helper()
	out, err := exec.Command("sh", "-ec", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, script, out)
	}
}

// build makes ta and tb with ip(8): a veth from ta to a port of tb's
// bridge, a veth from ta to the test's own namespace and one to a
// namespace with no name, routes of several kinds, a sysctl, a loopback
// address, and a second name of ta.
func build(t *testing.T) {
	t.Helper()
	unnamed := exec.Command("unshare", "-n", "sleep", "60")
	if err := unnamed.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unnamed.Process.Kill()
		unnamed.Wait()
		for _, n := range []string{"talias", "ta", "tb"} {
			exec.Command("ip", "netns", "del", n).Run()
		}
		os.Remove("/run/netns/tstale")
	})
	// The new namespace exists once unshare has exec'd sleep.
	self, _ := os.Readlink("/proc/self/ns/net")
	for i := 0; ; i++ {
		l, _ := os.Readlink("/proc/" + strconv.Itoa(unnamed.Process.Pid) + "/ns/net")
		if l != "" && l != self {
			break
		}
		if i == 500 {
			t.Fatal("unshare -n did not start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	sh(t, `
ip netns add ta; ip netns add tb
ip link add eth0 netns ta type veth peer p0 netns tb
ip -n tb link add br0 type bridge
ip -n tb link set p0 master br0
ip link add out netns ta type veth peer tout
ip link add un netns ta type veth peer un0 netns `+strconv.Itoa(unnamed.Process.Pid)+`
for l in lo eth0; do ip -n ta link set $l up; done
for l in lo p0 br0; do ip -n tb link set $l up; done
ip -n ta addr add 10.0.0.1/24 dev eth0
ip -n ta addr add fd00::1/64 dev eth0 nodad
ip -n tb addr add 10.0.0.2/24 dev br0
ip -n tb addr add 10.255.0.1/32 dev lo
ip -n ta route add 10.1.0.0/16 via 10.0.0.2
ip -n ta route add 10.2.0.0/16 via 10.0.0.2 metric 7
ip -n ta route add fd00:9::/64 via fd00::2 dev eth0
ip -n ta route add blackhole 10.9.0.0/16
ip netns exec tb sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
tc -n ta qdisc add dev eth0 root tbf rate 8mbit burst 32kb latency 50ms
tc -n tb qdisc add dev p0 root handle 1: htb
touch /run/netns/talias; mount --bind /run/netns/ta /run/netns/talias
touch /run/netns/tstale
`)
}

var wantTA = &Netns{Name: "ta", Aliases: []string{"talias"},
	Links: []*Link{
		{Name: "eth0", Kind: "veth", MTU: 1500, Up: true, Addrs: []string{"10.0.0.1/24", "fd00::1/64"}, Peer: &Peer{Where: InRead, Netns: "tb", Name: "p0"}, Rate: 8000000},
		{Name: "lo", Kind: "loopback", MTU: 65536, Up: true},
		{Name: "out", Kind: "veth", MTU: 1500, Peer: &Peer{Where: InHost}},
		{Name: "un", Kind: "veth", MTU: 1500, Peer: &Peer{Where: InUnnamed}},
	},
	Routes: []Route{
		{Dst: "10.1.0.0/16", Via: "10.0.0.2", Dev: "eth0"},
		{Dst: "10.2.0.0/16", Via: "10.0.0.2", Dev: "eth0", Metric: 7},
		{Dst: "fd00:9::/64", Via: "fd00::2", Dev: "eth0", V6: true, Metric: 1024},
	},
	Skipped: []Skipped{{What: "blackhole route 10.9.0.0/16", Why: "route() adds unicast routes only"}},
}

var wantTB = &Netns{Name: "tb",
	Links: []*Link{
		{Name: "br0", Kind: "bridge", MTU: 1500, Up: true, Addrs: []string{"10.0.0.2/24"}},
		{Name: "lo", Kind: "loopback", MTU: 65536, Up: true, Addrs: []string{"10.255.0.1/32"}},
		{Name: "p0", Kind: "veth", MTU: 1500, Up: true, Master: "br0", Peer: &Peer{Where: InRead, Netns: "ta", Name: "eth0"}},
	},
	Sysctls: []Sysctl{{Key: "net.ipv4.ip_forward", Value: "1", Default: "0"}},
	Skipped: []Skipped{{What: "qdisc htb on p0", Why: "link.netem() makes tbf and netem qdiscs only"}},
}

func TestRead(t *testing.T) {
	needRoot(t)
	leakcheck.Check(t)
	build(t)
	got, err := Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Topology{Netns: []*Netns{wantTA, wantTB}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Read(nil):\n%s\nwant:\n%s", dump(got), dump(want))
	}

	// tb alone: its veth's peer is in a named namespace not read.
	got, err = Read([]string{"tb"})
	if err != nil {
		t.Fatal(err)
	}
	tb := *wantTB
	tb.Links = append([]*Link(nil), wantTB.Links...)
	p0 := *tb.Links[2]
	p0.Peer = &Peer{Where: InNamed, Netns: "ta"}
	tb.Links[2] = &p0
	if want := (&Topology{Netns: []*Netns{&tb}}); !reflect.DeepEqual(got, want) {
		t.Errorf("Read(tb):\n%s\nwant:\n%s", dump(got), dump(want))
	}

	// Two names of one namespace: read once, under the first.
	got, err = Read([]string{"talias", "ta"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Netns) != 1 || got.Netns[0].Name != "ta" || !reflect.DeepEqual(got.Netns[0].Aliases, []string{"talias"}) {
		t.Errorf("Read(talias, ta):\n%s", dump(got))
	}

	for name, msg := range map[string]string{
		"nope":   `no network namespace called "nope"`,
		"tstale": "/run/netns/tstale is not a network namespace",
		"../x":   `invalid network namespace name "../x"`,
	} {
		if _, err := Read([]string{"ta", name}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Read(%q): got %v, want an error with %q", name, err, msg)
		}
	}
}

// TestGraphRead draws what Read read, to the letter.
func TestGraphRead(t *testing.T) {
	needRoot(t)
	leakcheck.Check(t)
	build(t)
	got, err := Read([]string{"ta", "tb"})
	if err != nil {
		t.Fatal(err)
	}
	const wantDOT = `graph topology {
	node [shape=box];
	"netns ta" [label="ta\n10.0.0.1/24\nfd00::1/64"];
	"netns tb" [label="tb\n10.255.0.1/32"];
	"bridge tb/br0" [label="br0\n10.0.0.2/24", shape=ellipse];
	"host" [label="(nsh's netns)", style=dashed];
	"unnamed ta/un" [label="(unnamed netns)", style=dashed];
	"netns tb" -- "bridge tb/br0" [style=dashed];
	"netns ta" -- "bridge tb/br0" [taillabel="eth0", headlabel="p0"];
	"netns ta" -- "host" [taillabel="out"];
	"netns ta" -- "unnamed ta/un" [taillabel="un"];
}
`
	if dot := got.DOT(); dot != wantDOT {
		t.Errorf("DOT:\n%s\nwant:\n%s", dot, wantDOT)
	}
	const wantMermaid = `graph LR
    netns_ta["ta<br/>10.0.0.1/24<br/>fd00::1/64"]
    netns_tb["tb<br/>10.255.0.1/32"]
    bridge_tb_br0(["br0<br/>10.0.0.2/24"])
    host["(nsh's netns)"]
    unnamed_ta_un["(unnamed netns)"]
    netns_tb -.- bridge_tb_br0
    netns_ta ---|"eth0 — p0"| bridge_tb_br0
    netns_ta ---|"out"| host
    netns_ta ---|"un"| unnamed_ta_un
    classDef external stroke-dasharray: 5 5
    class host,unnamed_ta_un external
`
	if m := got.Mermaid(); m != wantMermaid {
		t.Errorf("Mermaid:\n%s\nwant:\n%s", m, wantMermaid)
	}
}

// TestReadLeavesNoThread: every thread of the test process is in its own
// network namespace after a Read (the reading threads were discarded).
func TestReadLeavesNoThread(t *testing.T) {
	needRoot(t)
	leakcheck.Check(t)
	build(t)
	for i := 0; i < 20; i++ {
		if _, err := Read(nil); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	// A reading thread is ended by the Go runtime just after it has
	// handed its result over: give the last ones a moment.
	var stray []string
	for i := 0; i < 100; i++ {
		stray = nil
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			l, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
			if err == nil && l != self {
				stray = append(stray, "thread "+task.Name()+" is in "+l+", not the process's "+self)
			}
		}
		if len(stray) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error(strings.Join(stray, "\n"))
}

func dump(t *Topology) string {
	var b strings.Builder
	for _, n := range t.Netns {
		b.WriteString(fmtNetns(n))
	}
	return b.String()
}

func fmtNetns(n *Netns) string {
	var b strings.Builder
	b.WriteString("netns " + n.Name + " aliases " + strings.Join(n.Aliases, ",") + "\n")
	for _, l := range n.Links {
		b.WriteString("  link " + l.Name + " " + l.Kind + " mtu " + strconv.Itoa(l.MTU) + " up " + strconv.FormatBool(l.Up) + " master " + l.Master + " addrs " + strings.Join(l.Addrs, ",") + " rate " + strconv.FormatUint(l.Rate, 10))
		if l.Peer != nil {
			b.WriteString(" peer " + string(l.Peer.Where) + " " + l.Peer.Netns + " " + l.Peer.Name)
		}
		b.WriteByte('\n')
	}
	for _, r := range n.Routes {
		b.WriteString("  route " + r.ipArgs() + " v6 " + strconv.FormatBool(r.V6) + " metric " + strconv.Itoa(r.Metric) + "\n")
	}
	for _, s := range n.Skipped {
		b.WriteString("  skipped " + s.What + ": " + s.Why + "\n")
	}
	for _, s := range n.Sysctls {
		b.WriteString("  sysctl " + s.Key + "=" + s.Value + " (default " + s.Default + ")\n")
	}
	return b.String()
}
