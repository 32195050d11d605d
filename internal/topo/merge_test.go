package topo

import (
	"strings"
	"testing"
)

// Merge names each host's namespaces HOST/NAME, veth peers alike, and
// joins a vxlan on one host to the vxlan of the same VNI on the host its
// remote names (the one pointing back, of several), once; a remote that
// is no host's is a node of its own.
func TestMerge(t *testing.T) {
	vx := func(name string, vni int, remote string) *Link {
		return &Link{Name: name, Kind: "vxlan", MTU: 1450, Up: true, VXLAN: &VXLAN{VNI: vni, Remote: remote, Port: 4789}}
	}
	a := &Topology{Netns: []*Netns{
		{Name: "h1", Links: []*Link{vx("vx0", 42, "192.168.240.2"), vx("vx9", 9, "10.9.9.9"),
			{Name: "e0", Kind: "veth", Peer: &Peer{Where: InRead, Netns: "r1", Name: "e1"}}}},
		{Name: "r1", Links: []*Link{{Name: "e1", Kind: "veth", Peer: &Peer{Where: InRead, Netns: "h1", Name: "e0"}}}},
	}}
	b := &Topology{Netns: []*Netns{
		{Name: "h2", Links: []*Link{vx("vx0", 42, "192.168.240.1")}},
		{Name: "h3", Links: []*Link{vx("vx1", 42, "192.168.240.3")}},
	}}
	m := Merge([]Part{{Host: "a", Addr: "192.168.240.1", Topology: a}, {Host: "b", Addr: "192.168.240.2", Topology: b}})
	var names []string
	for _, n := range m.Netns {
		names = append(names, n.Name)
	}
	if strings.Join(names, " ") != "a/h1 a/r1 b/h2 b/h3" {
		t.Errorf("merged namespaces: %v", names)
	}
	if p := m.Find("a/h1").Link("e0").Peer; p.Netns != "a/r1" {
		t.Errorf("veth peer: %+v", p)
	}
	if a.Netns[0].Name != "h1" || a.Netns[0].Links[2].Peer.Netns != "r1" {
		t.Errorf("Merge changed its input: %+v", a.Netns[0])
	}
	dot := m.DOT()
	for _, want := range []string{
		`"netns a/h1" -- "netns b/h2" [style=bold, label="vxlan 42", taillabel="vx0", headlabel="vx0"];`,
		`"remote 10.9.9.9" [label="(vxlan remote)\n10.9.9.9", style=dashed];`,
		`"netns a/h1" -- "netns a/r1" [taillabel="e0", headlabel="e1"];`,
		`"netns b/h3" -- "remote 192.168.240.3" [style=bold, label="vxlan 42", taillabel="vx1"];`,
	} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %s:\n%s", want, dot)
		}
	}
	if n := strings.Count(dot, `"netns a/h1" -- "netns b/h2"`) + strings.Count(dot, `"netns b/h2" -- "netns a/h1"`); n != 1 {
		t.Errorf("the tunnel of VNI 42 drawn %d times, want once:\n%s", n, dot)
	}
	if mm := m.Mermaid(); !strings.Contains(mm, `netns_a_h1 ===|"vx0 — vx0 (vxlan 42)"| netns_b_h2`) {
		t.Errorf("Mermaid:\n%s", mm)
	}
}
