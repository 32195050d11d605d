package interp_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/startest"
	"nsh.dev/nsh/interp"
)

func TestScripts(t *testing.T) {
	startest.RunDir(t, "testdata", doc.Table{})
}

// run executes src as file name in a fresh run and returns stdout, the
// rendered error and the exit code.
func run(t *testing.T, root, name, src string) (string, string, int) {
	t.Helper()
	var out bytes.Buffer
	in := interp.New(interp.Config{Stdout: &out})
	r := in.NewRun(root, []string{name})
	_, err := r.ExecFile(name, src)
	msg := ""
	if err != nil {
		msg = interp.FormatError(err)
	}
	r.Close()
	return out.String(), msg, r.ExitCode(err)
}

func TestErrorPositionAndBacktrace(t *testing.T) {
	src := "def f(x):\n    return g(x)\n\ndef g(x):\n    fail(\"bad value\", x)\n\nf(42)\n"
	_, msg, code := run(t, ".", "e.star", src)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.HasPrefix(msg, "e.star:5:9: fail: bad value 42") {
		t.Errorf("error does not start with the innermost position: %q", msg)
	}
	for _, want := range []string{"Traceback", "e.star:7:2: in <toplevel>", "e.star:2:13: in f", "e.star:5:9: in g"} {
		if !strings.Contains(msg, want) {
			t.Errorf("backtrace lacks %q:\n%s", want, msg)
		}
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	_, msg, code := run(t, ".", "s.star", "x = (\n")
	if code != 1 || !strings.HasPrefix(msg, "s.star:2:1: syntax error") {
		t.Errorf("got %d %q", code, msg)
	}
	_, msg, _ = run(t, ".", "u.star", "print(undefined_name)\n")
	if !strings.Contains(msg, "u.star:1:7: undefined: undefined_name") {
		t.Errorf("got %q", msg)
	}
}

func TestExit(t *testing.T) {
	out, _, code := run(t, ".", "x.star", "print('a')\nexit(3)\nprint('b')\n")
	if code != 3 || out != "a\n" {
		t.Errorf("got code %d out %q", code, out)
	}
	_, msg, code := run(t, ".", "x.star", "exit(300)\n")
	if code != 1 || !strings.Contains(msg, "out of range") {
		t.Errorf("got %d %q", code, msg)
	}
}

func TestTeardownOrderAndFailures(t *testing.T) {
	in := interp.New(interp.Config{})
	r := in.NewRun(".", nil)
	var order []string
	r.Registry.Add("first", func() error { order = append(order, "first"); return nil })
	r.Registry.Add("second", func() error { order = append(order, "second"); return os.ErrPermission })
	kept := r.Registry.Add("kept", func() error { order = append(order, "kept"); return nil })
	kept.Persist()
	released := r.Registry.Add("released", func() error { order = append(order, "released"); return nil })
	if err := released.Release(); err != nil {
		t.Fatal(err)
	}
	err := r.Close()
	if got := strings.Join(order, ","); got != "released,second,first" {
		t.Errorf("undo order %s", got)
	}
	if err == nil || !strings.Contains(err.Error(), "cleanup of second") {
		t.Errorf("teardown error %v does not name the failed undo", err)
	}
	if r.Close() != nil {
		t.Error("second Close should be a no-op")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := "testdata/lib"
	_, msg, _ := run(t, dir, filepath.Join(dir, "main.star"), `load("cycle_a.star", "a")`)
	if !strings.Contains(msg, "load cycle") {
		t.Errorf("cycle: %q", msg)
	}
	_, msg, _ = run(t, dir, filepath.Join(dir, "main.star"), `load("missing.star", "a")`)
	if !strings.Contains(msg, `cannot load "missing.star"`) || !strings.Contains(msg, "no such file") {
		t.Errorf("missing: %q", msg)
	}
	_, msg, _ = run(t, dir, filepath.Join(dir, "main.star"), `load("../language.star", "a")`)
	if !strings.Contains(msg, "escapes the script's directory") {
		t.Errorf("escape: %q", msg)
	}
	abs, _ := filepath.Abs("testdata/lib/counter.star")
	_, msg, _ = run(t, dir, filepath.Join(dir, "main.star"), `load("`+abs+`", "count")`)
	if msg != "" {
		t.Errorf("absolute load: %q", msg)
	}
}

// A signal cancels a running script and its exit code is 128+N, after teardown.
func TestInterruptCancels(t *testing.T) {
	in := interp.New(interp.Config{})
	r := in.NewRun(".", nil)
	undone := false
	r.Registry.Add("thing", func() error { undone = true; return nil })
	go func() {
		time.Sleep(50 * time.Millisecond)
		r.Interrupt(syscall.SIGINT)
	}()
	_, err := r.ExecFile("loop.star", "while True:\n    pass\n")
	r.Close()
	if err == nil || !strings.Contains(err.Error(), "interrupted by SIGINT") {
		t.Errorf("err = %v", err)
	}
	if code := r.ExitCode(err); code != 130 {
		t.Errorf("exit code %d, want 130", code)
	}
	if !undone {
		t.Error("teardown did not run")
	}
}

func TestHelp(t *testing.T) {
	table := doc.Table{
		Funcs: []doc.Func{{Name: "frob", Sig: "frob(x)", Doc: "Frobs x.\nMore.", Impl: func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return starlark.None, nil
		}}},
		Types: []doc.Type{{Name: "nsh.widget", Doc: "A widget.", Methods: []doc.Func{{Name: "spin", Sig: "spin()", Doc: "Spins."}}}},
	}
	in := interp.New(interp.Config{Builtins: table})
	idx := in.Index()
	for _, want := range []string{"frob(x)", "Frobs x.", "help(x=None)", "exit(code=0)", "nsh.widget"} {
		if !strings.Contains(idx, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	for name, want := range map[string]string{"frob": "More.", "widget": "spin()", "nsh.widget.spin": "Spins.", "widget.spin": "Spins.", "language": "recursion"} {
		text, err := in.Doc(name)
		if err != nil || !strings.Contains(text, want) {
			t.Errorf("Doc(%q) = %q, %v; want it to contain %q", name, text, err, want)
		}
	}
	if _, err := in.Doc("nope"); err == nil {
		t.Error("Doc(nope) should fail")
	}
}
