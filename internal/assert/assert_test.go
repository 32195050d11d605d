package assert_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/assert"
)

// exec runs src with the module m predeclared as assert.
func exec(t *testing.T, m starlark.Value, src string) error {
	t.Helper()
	th := &starlark.Thread{Name: "t"}
	_, err := starlark.ExecFile(th, "t.star", src, starlark.StringDict{"assert": m})
	return err
}

// A failure is the call's error: it stops the script, and the message
// names the assert call's line (not the caller's) and both values.
func TestFailureStops(t *testing.T) {
	src := "x = 1\ndef f(n):\n    assert.eq(n, 4, msg=\"n\")\nf(3)\ny = 2\n"
	err := exec(t, assert.Module(), src)
	var fail *assert.Failure
	if !errors.As(err, &fail) {
		t.Fatalf("err %v is not a *Failure", err)
	}
	if fail.Func != "assert.eq" || fail.Pos.Line != 3 || fail.Pos.Filename() != "t.star" || fail.Msg != "n" || fail.Detail != "got 3, want 4" {
		t.Errorf("failure %+v", fail)
	}
	if want := "assert.eq failed at t.star:3: n: got 3, want 4"; fail.Error() != want {
		t.Errorf("Error() = %q, want %q", fail.Error(), want)
	}
	var ee *starlark.EvalError
	if !errors.As(err, &ee) || ee.Msg != fail.Error() {
		t.Errorf("EvalError %v", err)
	}
}

// With a report function, a failure is reported and the script goes on;
// inside assert.fails it is still an error for fails to catch.
func TestReportGoesOn(t *testing.T) {
	var got []string
	m := assert.New(func(_ *starlark.Thread, f *assert.Failure) { got = append(got, f.Error()) })
	src := `assert.eq(1, 2)
assert.true(False, msg="second")
assert.fails(lambda: assert.eq(5, 6), "got 5, want 6")
assert.fails(lambda: 1, "x")
done = True
`
	if err := exec(t, m, src); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"assert.eq failed at t.star:1: got 1, want 2",
		"assert.true failed at t.star:2: second: got False, want a true value",
		"assert.fails failed at t.star:4: fn did not fail (it returned 1)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("reported\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFailureWithoutPosition(t *testing.T) {
	f := &assert.Failure{Func: "assert.true", Detail: "got False, want a true value"}
	if f.Error() != "assert.true failed: got False, want a true value" {
		t.Errorf("%q", f.Error())
	}
}

func TestRepr(t *testing.T) {
	if s := assert.Repr(starlark.String("ab")); s != `"ab"` {
		t.Errorf("short: %q", s)
	}
	long := starlark.String(strings.Repeat("é", 300)) // 600 bytes, 2 per rune
	s := assert.Repr(long)
	if !utf8.ValidString(s) || len(s) > assert.MaxRepr+40 || !strings.Contains(s, " ... ") || !strings.HasSuffix(s, "(602 bytes)") {
		t.Errorf("long: %d bytes %q", len(s), s)
	}
}

func TestReprsWindow(t *testing.T) {
	a := starlark.String(strings.Repeat("ü", 500) + "A" + strings.Repeat("z", 500))
	b := starlark.String(strings.Repeat("ü", 500) + "B" + strings.Repeat("z", 500))
	sa, sb := assert.Reprs(a, b)
	for _, s := range []string{sa, sb} {
		if !utf8.ValidString(s) || len(s) > assert.MaxRepr+60 {
			t.Errorf("%d bytes, valid %v: %q", len(s), utf8.ValidString(s), s)
		}
		if !strings.HasPrefix(s, "...ü") || !strings.Contains(s, "z...") || !strings.HasSuffix(s, "(1503 bytes, differing from byte 1001)") {
			t.Errorf("window %q", s)
		}
	}
	if !strings.Contains(sa, "üAz") || !strings.Contains(sb, "üBz") {
		t.Errorf("the difference is not shown: %q %q", sa, sb)
	}
	// A short value beside a long one stays whole.
	sa, sb = assert.Reprs(starlark.MakeInt(3), a)
	if sa != "3" || !strings.HasPrefix(sb, `"üü`) || !strings.HasSuffix(sb, "(1503 bytes)") {
		t.Errorf("short vs long: %q %q", sa, sb)
	}
}

// Every function has a doc row named assert.NAME, with a signature and an
// example, and the module has exactly those members.
func TestTable(t *testing.T) {
	tab := assert.Table()
	m := assert.Module()
	if len(tab.Funcs) != len(m.Members) {
		t.Errorf("%d doc rows, %d members", len(tab.Funcs), len(m.Members))
	}
	for _, f := range tab.Funcs {
		name := strings.TrimPrefix(f.Name, "assert.")
		b, ok := m.Members[name].(*starlark.Builtin)
		if !ok || b.Name() != f.Name {
			t.Errorf("%s: member %v", f.Name, m.Members[name])
		}
		if !strings.HasPrefix(f.Sig, f.Name+"(") || !strings.Contains(f.Doc, f.Name+"(") || f.Impl != nil {
			t.Errorf("%s: sig %q, doc without an example or Impl set", f.Name, f.Sig)
		}
	}
	if tab.Topic["assert"] == "" {
		t.Error("no assert topic")
	}
}
