package interp_test

import (
	"bytes"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/interp"
)

// A word that names nothing is searched for in the docs, by nsh doc and by
// help("word"); an exact name still gives its doc.
func TestDocSearch(t *testing.T) {
	none := func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return starlark.None, nil
	}
	table := doc.Table{
		Funcs: []doc.Func{
			{Name: "frob", Sig: "frob(x, persist=False)", Doc: "Frobs x.", Impl: none},
			{Name: "knob", Sig: "knob()", Doc: "Turns.\nWhat it turned persists after the run, a long line that goes on and on past the width of a terminal.", Impl: none},
		},
		Types: []doc.Type{{Name: "nsh.widget", Doc: "A widget.", Methods: []doc.Func{{Name: "persist", Sig: "persist()", Doc: "Keeps it."}}}},
	}
	var out bytes.Buffer
	in := interp.New(interp.Config{Builtins: table, Stdout: &out})
	text, err := in.Doc("persist")
	if err != nil {
		t.Fatal(err)
	}
	want := `Nothing is named "persist"; these mention it (help(NAME) or nsh doc NAME for one):
  widget.persist  persist()
  frob            frob(x, persist=False)
  exit            end of the script; what was persisted stays.
  knob            What it turned persists after the run, a long line that goe...
`
	if text != want {
		t.Errorf("Doc(persist) =\n%s\nwant\n%s", text, want)
	}
	if text, err := in.Doc("frob"); err != nil || !strings.HasPrefix(text, "frob(x, persist=False)\n\n    Frobs x.") {
		t.Errorf("Doc(frob) = %q, %v", text, err)
	}
	if _, err := in.Doc("zzz"); err == nil || !strings.Contains(err.Error(), `no help for "zzz", and no doc mentions it`) {
		t.Errorf("Doc(zzz): %v", err)
	}
	r := in.NewRun(".", nil)
	defer r.Close()
	if _, err := r.ExecFile("h.star", `help("persist")`); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "frob            frob(x, persist=False)") {
		t.Errorf("help(\"persist\") printed %q", out.String())
	}
}
