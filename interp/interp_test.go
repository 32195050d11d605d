package interp_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
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

// An undefined name gets the nearest predeclared one as a suggestion,
// which go.starlark.net's resolver (it sees the module's globals only)
// does not give.
func TestUndefinedSuggestion(t *testing.T) {
	noop := func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return starlark.None, nil
	}
	in := interp.New(interp.Config{Builtins: doc.Table{Funcs: []doc.Func{{Name: "ping", Sig: "ping()", Doc: "x", Impl: noop}}}})
	for _, c := range []struct{ src, want string }{
		{"pnig(\"10.0.0.1\")\n", "u.star:1:1: undefined: pnig (did you mean ping?)"},
		{"print(lenn([]))\n", "u.star:1:7: undefined: lenn (did you mean len?)"},
		{"print(agrv)\n", "u.star:1:7: undefined: agrv (did you mean argv?)"},
		{"myvar = 1\nprint(myvra)\n", "u.star:2:7: undefined: myvra (did you mean myvar?)"},
		{"print(xyzzy)\n", "u.star:1:7: undefined: xyzzy"},
	} {
		r := in.NewRun(".", []string{"u.star"})
		_, err := r.ExecFile("u.star", c.src)
		r.Close()
		if got := interp.FormatError(err); got != c.want {
			t.Errorf("%q: got %q, want %q", c.src, got, c.want)
		}
	}
}

// Starlark's % has no precision: its error points to fmt().
func TestPercentPrecisionHint(t *testing.T) {
	_, msg, _ := run(t, ".", "p.star", "x = 19.87\nprint(\"%.1f\" % x)\n")
	if !strings.Contains(msg, `p.star:2:14: unknown conversion %. (Starlark's % has no width, precision or flags: use fmt("{:.1f}", x); see help(fmt))`) {
		t.Errorf("got %q", msg)
	}
	_, msg, _ = run(t, ".", "q.star", "print(\"%q\" % 1)\n")
	if strings.Contains(msg, "fmt(") {
		t.Errorf("%%q is no width or precision, got %q", msg)
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

// Item 12 of issue 15 (and issue 18 item 8, which caught it too): load() treats a symlink that leads out of the
// script's directory as it treats "../", and reads only regular files of
// at most 16 MiB: a FIFO is refused without waiting for a writer.
func TestItem12LoadRefusals(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(outside, "secret.star"), "x = 1\n")
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	write(filepath.Join(dir, "sub", "in.star"), "y = 2\n")
	for link, target := range map[string]string{
		"esc.star":  filepath.Join(outside, "secret.star"),
		"escd":      outside,
		"ok.star":   "sub/in.star",
		"zero.star": "/dev/zero",
		// Issue 18 item 8: a symlink that stays inside but leads to a
		// FIFO or a device is refused as the FIFO or device is.
		"fifolink.star": "fifo.star",
		"nulllink.star": "/dev/null",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.star"), 0o644); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "big.star"), strings.Repeat("#", 16<<20+1))
	main := filepath.Join(dir, "main.star")
	for _, c := range []struct{ src, want string }{
		{`load("esc.star", "x")`, `"esc.star" leads through a symlink to ` + filepath.Join(outside, "secret.star") + `, outside the script's directory`},
		{`load("escd/secret.star", "x")`, `"escd/secret.star" leads through a symlink to ` + filepath.Join(outside, "secret.star")},
		{`load("zero.star", "x")`, `leads through a symlink to /dev/zero`},
		{`load("/dev/zero", "x")`, `/dev/zero is a character device, not a regular file`},
		{`load("fifo.star", "x")`, `fifo.star is a named pipe (FIFO), not a regular file`},
		{`load("fifolink.star", "x")`, `fifo.star is a named pipe (FIFO), not a regular file`},
		{`load("nulllink.star", "x")`, `leads through a symlink to /dev/null`},
		{`load("/dev/null", "x")`, `/dev/null is a character device, not a regular file`},
		{`load("big.star", "x")`, `big.star is longer than 16 MiB, the limit for a script`},
		{`load("sub", "x")`, `sub is a directory, not a regular file`},
	} {
		done := make(chan string, 1)
		go func() {
			_, msg, _ := run(t, dir, main, c.src)
			done <- msg
		}()
		select {
		case msg := <-done:
			if !strings.Contains(msg, c.want) {
				t.Errorf("%s: got %q, want %q", c.src, msg, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s hangs", c.src)
		}
	}
	// A symlink that stays inside is followed; an absolute path may point
	// anywhere, through symlinks too.
	for _, src := range []string{
		`load("ok.star", "y")` + "\nprint(y)",
		`load("` + filepath.Join(dir, "esc.star") + `", "x")` + "\nprint(x)",
	} {
		if out, msg, _ := run(t, dir, main, src); msg != "" || out == "" {
			t.Errorf("%s: %q %q", src, out, msg)
		}
	}
	// A script reached through a symlinked directory loads modules that
	// load others (from their real directory).
	write(filepath.Join(dir, "via.star"), `load("sub/in.star", z = "y")`+"\ny = z\n")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if out, msg, _ := run(t, link, filepath.Join(link, "main.star"), `load("via.star", "y")`+"\nprint(y)"); msg != "" || out != "2\n" {
		t.Errorf("through a symlinked directory: %q %q", out, msg)
	}
}

// Item 5 of issue 15: a Go panic in a builtin is a script error at the
// line that called it (exit status 1), not the end of nsh.
func TestItem5PanicIsScriptError(t *testing.T) {
	var out bytes.Buffer
	in := interp.New(interp.Config{Stdout: &out, Extra: starlark.StringDict{
		"boom": starlark.NewBuiltin("boom", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			var m map[string]int
			m["x"] = 1 // assignment to entry in nil map
			return starlark.None, nil
		}),
	}})
	r := in.NewRun(".", nil)
	_, err := r.ExecFile("p.star", "x = 1\nboom()\n")
	r.Close()
	msg := ""
	if err != nil {
		msg = interp.FormatError(err)
	}
	if code := r.ExitCode(err); code != 1 || !strings.HasPrefix(msg, "p.star:2:5: boom: internal error in nsh") || !strings.Contains(msg, "nil map") {
		t.Errorf("exit %d, error %q", code, msg)
	}
}

// Item 5: the memory limit cancels a run whose heap grows past it, and the
// shadowed builtins refuse what would not fit; go.starlark.net's universe
// is left as it was.
func TestItem5MemoryLimit(t *testing.T) {
	in := interp.New(interp.Config{MaxMemory: 64 << 20})
	r := in.NewRun(".", nil)
	_, err := r.ExecFile("m.star", "x = []\nfor i in range(1<<40):\n    x.append(str(i))\n")
	r.Close()
	// The position is that of the instruction at which the interpreter
	// noticed the cancellation: a line of the loop.
	if err == nil || !regexp.MustCompile(`^m\.star:[23]:`).MatchString(interp.FormatError(err)) || !strings.Contains(err.Error(), "memory limit of 64 MiB exceeded") {
		t.Errorf("err = %v", interp.FormatError(err))
	}
	if code := r.ExitCode(err); code != 1 {
		t.Errorf("exit code %d", code)
	}
	_, msg, _ := run(t, ".", "l.star", "list(range(1<<62))")
	if !strings.Contains(msg, "list: 4611686018427387904 elements would need over 16 EiB, beyond this machine's memory") {
		t.Errorf("unlimited: %q", msg)
	}
	if b, ok := starlark.Universe["list"].(*starlark.Builtin); !ok || b.Name() != "list" {
		t.Error("starlark.Universe was changed")
	}
	for s, want := range map[string]uint64{"2GiB": 2 << 30, "256MiB": 256 << 20, "1.5g": 3 << 29, "none": 0, "0": 0, "4096M": 4 << 30} {
		if got, err := interp.ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "lots", "12", "1.5x", "-1G"} {
		if _, err := interp.ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
}

// Item 6 of issue 15: the backtrace of a deep recursion is folded.
func TestItem6BacktraceFolded(t *testing.T) {
	_, msg, code := run(t, ".", "r.star", "def f(n):\n    return f(n + 1)\n\nf(0)\n")
	if code != 1 || len(msg) > 2000 || strings.Count(msg, "r.star:2:13: in f") != 3 ||
		!strings.Contains(msg, "  [Previous line repeated 99996 more times]") || !strings.HasPrefix(msg, "r.star:2:12: Starlark stack overflow") {
		t.Errorf("exit %d, %d bytes:\n%s", code, len(msg), msg)
	}
}
