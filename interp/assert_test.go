package interp_test

import (
	"strings"
	"testing"

	"nsh.dev/nsh/interp"
)

// nsh's own assert module is predeclared: a failed assertion stops the
// script (exit status 1) at the assert's line, whose position and both
// values the rendered error shows (the position once: the prefix).
func TestAssertPredeclared(t *testing.T) {
	src := "print(\"before\")\nassert.true(1)\nassert.eq(1 + 2, 4, msg=\"sum\")\nprint(\"after\")\n"
	out, msg, code := run(t, ".", "a.star", src)
	if code != 1 || out != "before\n" {
		t.Errorf("exit %d, stdout %q: want 1 and only what came before", code, out)
	}
	if want := "a.star:3:10: assert.eq failed: sum: got 3, want 4"; msg != want {
		t.Errorf("error %q, want %q", msg, want)
	}
}

// A script may define its own assert: its global hides the module.
func TestAssertShadowed(t *testing.T) {
	src := "def f():\n    return assert\nassert = struct(eq = 1)\nprint(f().eq)\n"
	out, msg, code := run(t, ".", "s.star", src)
	if code != 0 || out != "1\n" {
		t.Errorf("exit %d, %q %q", code, out, msg)
	}
	src = "def assert(x):\n    return x\nprint(assert(5))\n"
	if out, msg, code := run(t, ".", "s.star", src); code != 0 || out != "5\n" {
		t.Errorf("exit %d, %q %q", code, out, msg)
	}
}

// help(assert) prints the module's topic, help(assert.eq) the function's
// doc row, and the index lists every assert function.
func TestAssertHelp(t *testing.T) {
	out, msg, _ := run(t, ".", "h.star", "help(assert)\nhelp(assert.fails)\n")
	if msg != "" || !strings.Contains(out, "assert: checks for scripts and tests") ||
		!strings.Contains(out, "assert.fails(fn, regex, msg=None)\n\n    Calls fn(), which must fail") {
		t.Errorf("help: %q %q", out, msg)
	}
	index := interp.New(interp.Config{}).Index()
	for _, name := range []string{"eq", "ne", "true", "false", "contains", "fails", "lt", "le", "gt", "ge"} {
		if !strings.Contains(index, "  assert."+name+"(") {
			t.Errorf("index lacks assert.%s", name)
		}
	}
}
