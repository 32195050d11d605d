// Package startest runs Starlark test scripts against the real kernel, the
// way go.starlark.net runs its testdata: each testdata/*.star file is a
// subtest, executed by nsh's interpreter with an extra `assert` module, with
// the leak checker around it.
package startest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/rootless"
	"nsh.dev/nsh/interp"
)

// RunDir runs every *.star file in dir as a subtest with the given builtins.
// In a script's first lines, "# needs: CMD..." skips it (saying so) when a
// command is not installed, and "# rootless: no" marks scripts that need
// the host's namespaces, skipped when the run is rootless.
func RunDir(t *testing.T, dir string, table doc.Table) {
	files, err := filepath.Glob(filepath.Join(dir, "*.star"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no .star files in %s", dir)
	}
	for _, f := range files {
		f := f
		t.Run(strings.TrimSuffix(filepath.Base(f), ".star"), func(t *testing.T) {
			RunFile(t, f, table)
		})
	}
}

// RunFile runs one script as a test: assertion failures and an uncaught
// error fail the test; the leak checker verifies the teardown.
func RunFile(t *testing.T, path string, table doc.Table) {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(firstLines(string(src)), "# rootless: no") && (os.Geteuid() != 0 || rootless.Active()) {
		t.Skip("needs real root (the host's namespaces); this run is rootless")
	}
	for _, line := range strings.Split(firstLines(string(src)), "\n") {
		if cmds, ok := strings.CutPrefix(line, "# needs:"); ok {
			for _, c := range strings.Fields(cmds) {
				if _, err := exec.LookPath(c); err != nil {
					t.Skipf("%s is not installed", c)
				}
			}
		}
	}
	leakcheck.Check(t)
	in := interp.New(interp.Config{
		Builtins: table,
		Extra:    starlark.StringDict{"assert": Assert(t)},
		Stdout:   testWriter{t},
	})
	r := in.NewRun(filepath.Dir(path), []string{path})
	_, err = r.ExecFile(path, src)
	if err != nil && !interp.IsExit(err) {
		t.Errorf("%s", interp.FormatError(err))
	}
	if err := r.Close(); err != nil {
		t.Errorf("teardown: %v", err)
	}
}

func firstLines(s string) string {
	lines := strings.SplitN(s, "\n", 6)
	return strings.Join(lines[:min(5, len(lines))], "\n")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Assert returns the assert module: assert.eq(a, b), assert.ne(a, b),
// assert.true(cond, msg=), assert.lt(a, b), assert.contains(x, y) and
// assert.fails(fn, "regexp"). A failed assertion reports the script line
// and lets the script go on, as in go.starlark.net's starlarktest.
func Assert(t testing.TB) *starlarkstruct.Module {
	report := func(th *starlark.Thread, format string, args ...any) {
		t.Helper()
		pos := th.CallFrame(1).Pos
		t.Errorf("%s: %s", pos, fmt.Sprintf(format, args...))
	}
	fn := func(name string, impl func(th *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) error) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return starlark.None, impl(th, args, kwargs)
		})
	}
	return &starlarkstruct.Module{
		Name: "assert",
		Members: starlark.StringDict{
			"eq": fn("eq", func(th *starlark.Thread, args starlark.Tuple, kw []starlark.Tuple) error {
				var a, b starlark.Value
				if err := starlark.UnpackPositionalArgs("assert.eq", args, kw, 2, &a, &b); err != nil {
					return err
				}
				if eq, err := starlark.Equal(a, b); err != nil || !eq {
					report(th, "%s != %s", a.String(), b.String())
				}
				return nil
			}),
			"ne": fn("ne", func(th *starlark.Thread, args starlark.Tuple, kw []starlark.Tuple) error {
				var a, b starlark.Value
				if err := starlark.UnpackPositionalArgs("assert.ne", args, kw, 2, &a, &b); err != nil {
					return err
				}
				if eq, err := starlark.Equal(a, b); err != nil || eq {
					report(th, "%s == %s", a.String(), b.String())
				}
				return nil
			}),
			"true": fn("true", func(th *starlark.Thread, args starlark.Tuple, kw []starlark.Tuple) error {
				var c starlark.Value
				msg := "assertion failed"
				if err := starlark.UnpackArgs("assert.true", args, kw, "cond", &c, "msg?", &msg); err != nil {
					return err
				}
				if !c.Truth() {
					report(th, "%s", msg)
				}
				return nil
			}),
			"lt": fn("lt", func(th *starlark.Thread, args starlark.Tuple, kw []starlark.Tuple) error {
				var a, b starlark.Value
				if err := starlark.UnpackPositionalArgs("assert.lt", args, kw, 2, &a, &b); err != nil {
					return err
				}
				if lt, err := starlark.Compare(syntax.LT, a, b); err != nil || !lt {
					report(th, "%s is not less than %s", a.String(), b.String())
				}
				return nil
			}),
			"contains": fn("contains", func(th *starlark.Thread, args starlark.Tuple, kw []starlark.Tuple) error {
				var x, y starlark.Value
				if err := starlark.UnpackPositionalArgs("assert.contains", args, kw, 2, &x, &y); err != nil {
					return err
				}
				var ok bool
				if s, isStr := x.(starlark.String); isStr {
					sub, _ := starlark.AsString(y)
					ok = strings.Contains(string(s), sub)
				} else if c, isC := x.(starlark.Container); isC {
					ok, _ = c.Has(y)
				}
				if !ok {
					report(th, "%s does not contain %s", x.String(), y.String())
				}
				return nil
			}),
			"fails": fn("fails", func(th *starlark.Thread, args starlark.Tuple, kw []starlark.Tuple) error {
				var f starlark.Callable
				var pattern string
				if err := starlark.UnpackPositionalArgs("assert.fails", args, kw, 2, &f, &pattern); err != nil {
					return err
				}
				re, err := regexp.Compile(pattern)
				if err != nil {
					return err
				}
				_, err = starlark.Call(th, f, nil, nil)
				if err == nil {
					report(th, "evaluation succeeded unexpectedly (want error matching %q)", pattern)
				} else if msg := errMsg(err); !re.MatchString(msg) {
					report(th, "error %q does not match %q", msg, pattern)
				}
				return nil
			}),
		},
	}
}

func errMsg(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Msg
	}
	return err.Error()
}

// NeedsRealRoot skips t unless the process is root in the initial user
// namespace (not rootless).
func NeedsRealRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 || rootless.Active() {
		t.Skip("needs real root (the host's namespaces); this run is rootless")
	}
}

// Main is a TestMain that runs the tests rootless (in a new user namespace)
// when started by a user other than root, as the nsh binary does.
// Descriptors the test binary inherited above 2 (from go test's own
// parent: a CI runner's or a terminal's) are made close-on-exec first: nsh
// passes what it inherited on to its children, as a shell does, and a test
// that a child sees no descriptor of nsh's own must not count those.
func Main(m *testing.M) {
	closeInherited()
	if outer, code := rootless.Enter(rootless.Auto); outer {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// closeInherited marks every descriptor above 2 close-on-exec (those of
// the Go runtime and the test are already).
func closeInherited() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
