package doc_test

import (
	"slices"
	"testing"

	"nsh.dev/nsh/internal/doc"
)

func TestParams(t *testing.T) {
	for sig, want := range map[string][]string{
		`ping(addr, ns=None, count=1, timeout=1.0)`:              {"addr", "ns", "count", "timeout"},
		`clone(argv, *kinds, hostname=None, propagation="a,b(")`: {"argv", "*kinds", "hostname", "propagation"},
		`f()`:                                  nil,
		`g(x=(1, 2), y=[3, 4], **kw)`:          {"x", "y", "**kw"},
		`netem(delay=None, rate="1mbit")`:      {"delay", "rate"},
		`not a signature`:                      nil,
		`set_idmaps(target, uidmap=None, gid)`: {"target", "uidmap", "gid"},
	} {
		if got := doc.Params(sig); !slices.Equal(got, want) {
			t.Errorf("Params(%q) = %q, want %q", sig, got, want)
		}
	}
}

// Search ranks names first (the exact one first), then parameter and
// attribute names, then the text, one hit per entry.
func TestSearch(t *testing.T) {
	tab := doc.Table{
		Funcs: []doc.Func{
			{Name: "netns", Sig: "netns(name, persist=True)", Doc: "Creates a named network namespace.\nIt persists after the script."},
			{Name: "veth", Sig: "veth(name, peer)", Doc: "Creates a veth pair.\nIt is deleted unless persist() is called."},
			{Name: "persist_all", Sig: "persist_all()", Doc: "Keeps everything."},
			{Name: "ping", Sig: "ping(addr)", Doc: "Pings addr."},
		},
		Types: []doc.Type{{
			Name:    "nsh.link",
			Doc:     "A link.",
			Attrs:   []doc.Attr{{Name: "mtu", Doc: "its MTU"}, {Name: "qdisc", Doc: "set by netem()"}},
			Methods: []doc.Func{{Name: "persist", Sig: "persist()", Doc: "Keeps the link."}, {Name: "netem", Sig: "netem(delay=None)", Doc: "Shapes."}},
		}},
		Topic: map[string]string{"lab": "lab: a persisted set of namespaces"},
	}
	type hit struct {
		name string
		rank int
	}
	var got []hit
	for _, h := range tab.Search("Persist") {
		got = append(got, hit{h.Name, h.Rank})
	}
	want := []hit{{"link.persist", doc.HitName}, {"persist_all", doc.HitName}, {"netns", doc.HitParam}, {"lab", doc.HitText}, {"veth", doc.HitText}}
	if !slices.Equal(got, want) {
		t.Errorf("Search(Persist) = %v, want %v", got, want)
	}
	hits := tab.Search("persist")
	if hits[2].Line != "netns(name, persist=True)" || hits[4].Line != "It is deleted unless persist() is called." {
		t.Errorf("lines: %q, %q", hits[2].Line, hits[4].Line)
	}
	got = nil
	for _, h := range tab.Search("netem") {
		got = append(got, hit{h.Name, h.Rank})
	}
	if want := []hit{{"link.netem", doc.HitName}, {"nsh.link", doc.HitText}}; !slices.Equal(got, want) {
		t.Errorf("Search(netem) = %v, want %v", got, want)
	}
	if h := tab.Search("mtu"); len(h) != 1 || h[0].Name != "nsh.link" || h[0].Rank != doc.HitParam {
		t.Errorf("Search(mtu) = %v", h)
	}
	if h := tab.Search("nothing-mentions-this"); h != nil {
		t.Errorf("Search found %v", h)
	}
	if h := tab.Search(" "); h != nil {
		t.Errorf("Search of a blank found %v", h)
	}
}
