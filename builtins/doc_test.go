package builtins_test

import (
	"slices"
	"testing"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/startest"
	"nsh.dev/nsh/interp"
)

// liveValues makes one value of every type nsh documents, in a network
// namespace of the run's own: values[i] is of type types[i].
const liveValues = `
ns = unshare("net")
a, b = veth("doc-a", "doc-b", addr="10.79.0.1/24", peer_addr="10.79.0.2/24")
values = [
    ns.net,
    ns,
    mounts()[0],
    a,
    spawn("sleep 60"),

    uidmap(0, 0),
    route("10.78.0.0/24", dev=a),
    ping("127.0.0.1"),
    transfer("127.0.0.1", ns, size=4096),
    ping("192.0.2.1", timeout=0.01).errors[0],
    transfer("127.0.0.1", ns, size=4096).streams[0],
    spawn("echo hi", stdout=True).expect("hi"),
]
ping("10.79.0.3", timeout=0.01)  # nobody: an incomplete neighbour entry
values += [a.stats(), a.qdiscs()[0], neighbors()[0], sockets()[0]]  # transfer() left sockets in time-wait
`

// TestTypesDocumented checks, on a live value of every type in the doc
// table, that the type and each of its attributes and methods has a doc
// (methods a signature too), that the value's AttrNames are exactly the
// documented names, that each of them gives a value, and that help() of the
// value and of each bound method is the table's text.
func TestTypesDocumented(t *testing.T) {
	leakcheck.Check(t)
	tab := builtins.Table()
	in := interp.New(interp.Config{Builtins: tab, Extra: starlark.StringDict{"assert": startest.Assert(t)}})
	r := in.NewRun(".", []string{"doc_test"})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}()
	g, err := r.ExecFile("doc_test.star", liveValues)
	if err != nil {
		t.Fatal(interp.FormatError(err))
	}
	list := g["values"].(*starlark.List)
	seen := map[string]bool{}
	for i := 0; i < list.Len(); i++ {
		v := list.Index(i)
		seen[v.Type()] = true
		ty, ok := tab.Type(v.Type())
		if !ok || ty.Name != v.Type() {
			t.Errorf("%s has no doc row", v.Type())
			continue
		}
		checkType(t, in, ty, v)
	}
	for _, ty := range tab.Types {
		if !seen[ty.Name] {
			t.Errorf("%s: no live value of it is checked (add one to liveValues)", ty.Name)
		}
	}
}

func checkType(t *testing.T, in *interp.Interp, ty doc.Type, v starlark.Value) {
	t.Helper()
	if ty.Doc == "" {
		t.Errorf("%s has no doc", ty.Name)
	}
	var documented []string
	for _, a := range ty.Attrs {
		documented = append(documented, a.Name)
		if a.Doc == "" {
			t.Errorf("%s.%s has no doc", ty.Name, a.Name)
		}
	}
	for _, m := range ty.Methods {
		documented = append(documented, m.Name)
		if m.Doc == "" || m.Sig == "" {
			t.Errorf("%s.%s has no doc or no signature", ty.Name, m.Name)
		}
	}
	slices.Sort(documented)
	ha, ok := v.(starlark.HasAttrs)
	if !ok {
		t.Errorf("%s has no attributes", ty.Name)
		return
	}
	if have := ha.AttrNames(); !slices.Equal(have, documented) {
		t.Errorf("%s: AttrNames %v, documented %v", ty.Name, have, documented)
	}
	for _, name := range documented {
		x, err := ha.Attr(name)
		if err != nil || x == nil {
			t.Errorf("%s.%s: %v, %v", ty.Name, name, x, err)
		}
	}
	if text, err := in.HelpOf(v); err != nil || text != doc.FormatType(ty) {
		t.Errorf("help(%s) = %q, %v", ty.Name, text, err)
	}
	for _, m := range ty.Methods {
		x, _ := ha.Attr(m.Name)
		b, ok := x.(*starlark.Builtin)
		if !ok || b.Receiver() != v || b.Name() != m.Name {
			t.Errorf("%s.%s is %v, not a method bound to the value", ty.Name, m.Name, x)
			continue
		}
		if text, err := in.HelpOf(b); err != nil || text != doc.FormatFunc(m) {
			t.Errorf("help(%s.%s) = %q, %v", ty.Name, m.Name, text, err)
		}
	}
}
