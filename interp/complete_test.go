package interp

import (
	"slices"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
)

// widget is a value with one method, documented in the test's table.
type widget struct{}

func (widget) String() string        { return "widget" }
func (widget) Type() string          { return "nsh.widget" }
func (widget) Freeze()               {}
func (widget) Truth() starlark.Bool  { return true }
func (widget) Hash() (uint32, error) { return 0, nil }
func (w widget) Attr(name string) (starlark.Value, error) {
	if name == "expect" {
		return starlark.NewBuiltin("expect", nil).BindReceiver(w), nil
	}
	return nil, nil
}
func (widget) AttrNames() []string { return []string{"expect"} }

// complete returns what Tab offers at the end of line, as whole words.
func complete(c *completer, line string) []string {
	cands, n := c.Do([]rune(line), len([]rune(line)))
	word := string([]rune(line)[len([]rune(line))-n:])
	var out []string
	for _, s := range cands {
		out = append(out, word+string(s))
	}
	return out
}

func testCompleter(t *testing.T) *completer {
	t.Helper()
	in := New(Config{Builtins: doc.Table{
		Funcs: []doc.Func{
			{Name: "ping", Sig: "ping(addr, ns=None, count=1, timeout=1.0)", Doc: "Pings.", Impl: func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
				return starlark.None, nil
			}},
			{Name: "clone", Sig: "clone(argv, *kinds, hostname=None, cwd=None)", Doc: "Clones.", Impl: func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
				return starlark.None, nil
			}},
		},
		Types: []doc.Type{{Name: "nsh.widget", Doc: "A widget.", Methods: []doc.Func{{Name: "expect", Sig: "expect(pattern, timeout=10.0)", Doc: "Waits."}}}},
	}})
	r := in.NewRun(".", nil)
	t.Cleanup(func() { r.Close() })
	g, err := r.ExecFile("c.star", "def f(a, b=1, *rest, key=2, **kw):\n    pass\ncnt = 0\n")
	if err != nil {
		t.Fatal(err)
	}
	env := starlark.StringDict{}
	for k, v := range in.predeclared {
		env[k] = v
	}
	for k, v := range g {
		env[k] = v
	}
	env["p"] = widget{}
	return &completer{env: env, table: in.table}
}

// Tab inside a call offers the callee's keyword arguments not yet given,
// then names; outside a call, names and keywords.
func TestCompleteKeywordArguments(t *testing.T) {
	c := testCompleter(t)
	for _, tc := range []struct {
		line string
		want []string
		more bool // names follow
	}{
		{`ping("10.2.0.2", co`, []string{"count="}, false},                          // not "continue": a statement keyword
		{`ping("10.2.0.2", `, []string{"ns=", "count=", "timeout=", "False"}, true}, // addr is given
		{`ping("10.2.0.2", count=3, `, []string{"ns=", "timeout=", "False"}, true},
		{`ping(addr="x", `, []string{"ns=", "count=", "timeout=", "False"}, true},
		{`x = ping("a", ns=n, t`, []string{"timeout=", "time", "tuple", "type"}, false},
		{`ping("a", count=c`, []string{"chr", "clone", "cnt"}, false}, // a value, not a keyword
		{`ping("a", 1 + c`, []string{"chr", "clone", "cnt"}, false},
		{`ping("a,(", co`, []string{"count="}, false}, // brackets in strings do not count
		{`ping(f(1, co`, nil, false},                  // the innermost call is f's: no "count="
		{`f(1, `, []string{"b=", "key=", "False"}, true},
		{`f(k`, []string{"key="}, false},
		{`clone(["sh"], "net", ho`, []string{"hostname="}, false},
		{`clone(["sh"], "net", cw`, []string{"cwd="}, false},
		{`p.expect("x", ti`, []string{"timeout=", "time"}, false},
		{`p.expect(pat`, []string{"pattern="}, false},
		{`[1, co`, nil, false},
		{`co`, []string{"continue"}, false},
		{`"".join(cn`, []string{"cnt"}, false},
		{`ping("co`, nil, false},     // inside a string
		{`ping(1) # co`, nil, false}, // inside a comment
		{`p.ex`, []string{"expect"}, false},
	} {
		got := complete(c, tc.line)
		if tc.more && len(got) > len(tc.want) {
			got = got[:len(tc.want)]
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Tab after %s: %q, want %q", tc.line, got, tc.want)
		}
	}
	// A call opened on an earlier line of the chunk.
	c.before = "ping(\"10.2.0.2\",\n"
	if got := complete(c, "    co"); !slices.Equal(got, []string{"count="}) {
		t.Errorf("Tab in a call from the line before: %q", got)
	}
}

func TestIndentAfter(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"def f(a):\n", "    "},
		{"def f(a):  # comment\n", "    "},
		{"for i in x:\n    if i:\n", "        "},
		{"for i in x:\n    y = i\n", "    "},
		{"def f():\n    return 1\n", ""},
		{"def f():\n    for i in x:\n        if i:\n            break\n", "        "},
		{"if x:\n    pass\n", ""},
		{"if x: pass\n", ""},
		{"x = {\n", ""},
		{"def f():\n    x = {'a':\n", "    "}, // a colon inside brackets
		{"def f():\n    s = '#:'\n", "    "},
		{"def f():\n    s = 'a:'  # b\n", "    "},
		{"def f():\n    s = \"x\" # y:\n", "    "}, // the colon is in the comment
		{"\tif x:\n", "\t    "},
		{"def f():\n    s = \"\"\"a:\n", ""}, // inside a string
		{"def f():\n    s = \"\"\"a\"\"\"\n", "    "},
	} {
		if got := indentAfter(tc.src); got != tc.want {
			t.Errorf("indentAfter(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
}

// excerpt keeps the word in view.
func TestExcerpt(t *testing.T) {
	line := strings.Repeat("a", 50) + " persist " + strings.Repeat("b", 50)
	for room := 20; room < 120; room++ {
		got := excerpt(line, "Persist", room)
		if len(got) > room || !strings.Contains(got, "persist") {
			t.Errorf("excerpt(room %d) = %q", room, got)
		}
	}
	if got := excerpt("short", "x", 10); got != "short" {
		t.Errorf("excerpt of a short line: %q", got)
	}
}
