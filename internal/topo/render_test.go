package topo

import (
	"os/exec"
	"strings"
	"testing"

	"go.starlark.net/syntax"
)

// lab is a small topology: two hosts on a bridge in a router that routes
// to a third, a veth to the host namespace, and a namespace named like a
// builtin the recipe calls.
func lab() *Topology {
	return &Topology{Netns: []*Netns{
		{Name: "h1", Links: []*Link{
			{Name: "eth0", Kind: "veth", MTU: 1500, Up: true, Addrs: []string{"10.0.1.1/24", "fd00:1::1/64"}, Peer: &Peer{Where: InRead, Netns: "r", Name: "p1"}, Rate: 10000000},
			{Name: "lo", Kind: "loopback", MTU: 65536, Up: true},
			{Name: "up", Kind: "veth", MTU: 1500, Up: true, Peer: &Peer{Where: InHost}},
		}, Routes: []Route{{Dst: "default", Via: "10.0.1.254", Dev: "eth0"}, {Dst: "default", Dev: "eth0", V6: true, Metric: 1024}}},
		{Name: "r", Links: []*Link{
			{Name: "br0", Kind: "bridge", MTU: 1500, Up: true, Addrs: []string{"10.0.1.254/24"}},
			{Name: "lo", Kind: "loopback", MTU: 65536, Up: true, Addrs: []string{"10.9.9.9/32"}},
			{Name: "p1", Kind: "veth", MTU: 1500, Up: true, Master: "br0", Peer: &Peer{Where: InRead, Netns: "h1", Name: "eth0"}},
			{Name: "p2", Kind: "veth", MTU: 9000, Up: false, Peer: &Peer{Where: InRead, Netns: "route", Name: "eth0"}},
			{Name: "vx0", Kind: "vxlan", MTU: 1450, Up: true, Addrs: []string{"10.7.0.1/24"}},
		}, Sysctls: []Sysctl{{Key: "net.ipv4.ip_forward", Value: "1", Default: "0"}},
			Routes:  []Route{{Dst: "10.7.7.0/24", Dev: "vx0"}, {Dst: "fd00:2::/64", Via: "fd00:1::2", Dev: "p2", V6: true, Metric: 1024}},
			Skipped: []Skipped{{What: "blackhole route 10.8.0.0/16", Why: "route() adds unicast routes only"}}},
		{Name: "route", Links: []*Link{
			{Name: "eth0", Kind: "veth", MTU: 9000, Up: true, Addrs: []string{"10.0.2.1/24"}, Peer: &Peer{Where: InRead, Netns: "r", Name: "p2"}},
			{Name: "lo", Kind: "loopback", MTU: 65536, Up: false},
		}, Routes: []Route{{Dst: "10.0.1.0/24", Via: "10.0.2.254", Dev: "eth0", Metric: 5}}},
	}}
}

const labDOT = `graph topology {
	node [shape=box];
	"netns h1" [label="h1\n10.0.1.1/24\nfd00:1::1/64"];
	"netns r" [label="r\n10.9.9.9/32\n10.7.0.1/24"];
	"bridge r/br0" [label="br0\n10.0.1.254/24", shape=ellipse];
	"netns route" [label="route\n10.0.2.1/24"];
	"host" [label="(nsh's netns)", style=dashed];
	"netns r" -- "bridge r/br0" [style=dashed];
	"netns h1" -- "bridge r/br0" [taillabel="eth0", headlabel="p1"];
	"netns h1" -- "host" [taillabel="up"];
	"netns r" -- "netns route" [taillabel="p2", headlabel="eth0"];
}
`

const labMermaid = `graph LR
    netns_h1["h1<br/>10.0.1.1/24<br/>fd00:1::1/64"]
    netns_r["r<br/>10.9.9.9/32<br/>10.7.0.1/24"]
    bridge_r_br0(["br0<br/>10.0.1.254/24"])
    netns_route["route<br/>10.0.2.1/24"]
    host["(nsh's netns)"]
    netns_r -.- bridge_r_br0
    netns_h1 ---|"eth0 — p1"| bridge_r_br0
    netns_h1 ---|"up"| host
    netns_r ---|"p2 — eth0"| netns_route
    classDef external stroke-dasharray: 5 5
    class host external
`

const labRecipe = `# Rebuilds the network namespaces h1, r, route as "nsh export" read them.
# Written for "nsh up", which keeps what it builds. A plain "nsh FILE" run
# removes its links and routes when it ends, leaving the namespaces empty
# ("nsh export --persist" writes a recipe that keeps them).

h1 = netns("h1")
r = netns("r")
route_2 = netns("route", lo=False)

r_br0 = bridge("br0", ns=r)
r_br0.add_addr("10.0.1.254/24")

h1_eth0, r_p1 = veth("eth0", "p1", ns=h1, peer_ns=r,
    addr=["10.0.1.1/24", "fd00:1::1/64"])
h1_eth0.netem(rate=10000000)
r_p1.set_master(r_br0)
r_p2, route_eth0 = veth("p2", "eth0", ns=r, peer_ns=route_2,
    peer_addr="10.0.2.1/24", mtu=9000, up=False)
route_eth0.up()

r_lo = link("lo", ns=r)
r_lo.add_addr("10.9.9.9/32")

# Not rebuilt:
# veth link up in h1: its peer is in the network namespace nsh export ran in
# vxlan link vx0 in r (10.7.0.1/24): nsh makes veth pairs and bridges, not vxlan links
# blackhole route 10.8.0.0/16 in r: route() adds unicast routes only

route("default", via="10.0.1.254", dev="eth0", ns=h1)
route("::/0", dev="eth0", ns=h1)
# route 10.7.7.0/24 dev vx0: not rebuilt, as its link vx0 is not
route("fd00:2::/64", via="fd00:1::2", dev="p2", ns=r)
route("10.0.1.0/24", via="10.0.2.254", dev="eth0", ns=route_2)  # metric 5 not kept: route() takes none

sysctl("net.ipv4.ip_forward", "1", ns=r)  # default 0
`

func TestDOT(t *testing.T) {
	if got := lab().DOT(); got != labDOT {
		t.Errorf("DOT:\n%s\nwant:\n%s", got, labDOT)
	}
}

func TestDOTRenders(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("graphviz's dot is not installed: DOT output not checked by it")
	}
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(labDOT)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "<svg") {
		t.Errorf("dot -Tsvg: %v\n%s", err, out)
	}
}

func TestMermaid(t *testing.T) {
	if got := lab().Mermaid(); got != labMermaid {
		t.Errorf("Mermaid:\n%s\nwant:\n%s", got, labMermaid)
	}
}

func TestRecipe(t *testing.T) {
	if got := lab().Recipe(RecipeOptions{}); got != labRecipe {
		t.Errorf("recipe:\n%s\nwant:\n%s", got, labRecipe)
	}
	for _, persist := range []bool{false, true} {
		src := lab().Recipe(RecipeOptions{Persist: persist})
		if _, err := syntax.LegacyFileOptions().Parse("lab.star", src, 0); err != nil {
			t.Errorf("recipe (persist=%v) is no Starlark: %v\n%s", persist, err, src)
		}
	}
}

func TestRecipePersist(t *testing.T) {
	got := lab().Recipe(RecipeOptions{Persist: true})
	for _, want := range []string{
		"r_br0 = bridge(\"br0\", ns=r)\nr_br0.persist()\n",
		"    addr=[\"10.0.1.1/24\", \"fd00:1::1/64\"])\nh1_eth0.persist()\n",
		`run(["ip", "-4", "route", "add", "default", "via", "10.0.1.254", "dev", "eth0"], ns=h1)`,
		`run(["ip", "-6", "route", "add", "default", "dev", "eth0"], ns=h1)`,
		`run(["ip", "-4", "route", "add", "10.0.1.0/24", "via", "10.0.2.254", "dev", "eth0", "metric", "5"], ns=route_2)`,
		`sysctl("net.ipv4.ip_forward", "1", ns=r, persist=True)  # default 0`,
		`run(["tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "10000000bit", "burst", "12500", "limit", "75000"], ns=h1)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("persistent recipe lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\nroute(") {
		t.Errorf("persistent recipe calls route(), which is undone at the end of the run:\n%s", got)
	}
}

func TestRecipeEmpty(t *testing.T) {
	got := (&Topology{}).Recipe(RecipeOptions{})
	if !strings.HasSuffix(got, "# There were none.\n") || strings.Contains(got, "netns(") {
		t.Errorf("empty recipe:\n%s", got)
	}
}
