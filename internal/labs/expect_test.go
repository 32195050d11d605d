package labs

import (
	"encoding/json"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/topo"
)

func note(t *testing.T, id uint64, r change.Record, ns map[string]string) Note {
	t.Helper()
	kind, _, ok := Noted(r)
	if !ok {
		t.Fatalf("%T is not noted", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return Note{ID: id, Kind: kind, NS: ns, Rec: b}
}

// Expect replays renames, moves, deletions and settings; Diff names what
// the live namespaces lack.
func TestExpectDiff(t *testing.T) {
	a, b := change.Netns{Name: "a"}, change.Netns{Name: "b"}
	u := change.Netns{Fd: 7}
	ns := map[string]string{"7": "/run/nsh/labs/x/ns/net-99"}
	notes := []Note{
		note(t, 1, &change.LinkAdd{Kind: "veth", NS: a, Name: "v0", Peer: "v1", PeerNS: b, Up: true}, nil),
		note(t, 2, &change.LinkSet{NS: b, Name: "v1", Up: true}, nil),
		note(t, 3, &change.Addr{NS: a, Dev: "v0", CIDR: "10.0.0.1/24"}, nil),
		note(t, 4, &change.LinkAdd{Kind: "veth", NS: a, Name: "w0", Peer: "w1", PeerNS: u}, ns),
		note(t, 5, &change.LinkSet{NS: a, Name: "w0", NewName: "w9"}, nil),
		note(t, 6, &change.LinkAdd{Kind: "bridge", NS: b, Name: "br"}, nil),
		note(t, 7, &change.LinkDel{NS: b, Name: "br"}, nil),
		note(t, 8, &change.Route{NS: a, Dst: "0.0.0.0/0", Via: "10.0.0.2"}, nil),
		note(t, 9, &change.Route{NS: a, Dst: "10.9.0.0/16", Via: "10.0.0.2"}, nil),
		note(t, 10, &change.Route{NS: a, Dst: "10.9.0.0/16", Del: true}, nil),
		note(t, 11, &change.Addr{NS: b, Dev: "lo", CIDR: "10.1.1.1/32"}, nil),
	}
	e := Expect(notes)
	if got := strings.Join(e.Namespaces(), " "); got != "/run/netns/a /run/netns/b /run/nsh/labs/x/ns/net-99" {
		t.Errorf("namespaces: %s", got)
	}
	live := map[string]*topo.Netns{
		"/run/netns/a": {Links: []*topo.Link{
			{Name: "v0", Kind: "veth", Up: false, Addrs: []string{"10.0.0.1/24"}},
			{Name: "w9", Kind: "veth"},
		}},
		"/run/netns/b": {Links: []*topo.Link{{Name: "lo", Kind: "loopback", Up: true}}},
	}
	got := e.Diff(live, func(ns string) string { return ns }, false)
	want := []string{
		"link v0 in /run/netns/a is down, was made up",
		"link v1 in /run/netns/b (veth) is missing",
		"address 10.1.1.1/32 of link lo in /run/netns/b is missing",
		"route default via 10.0.0.2 in /run/netns/a is missing",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
