// Package startest runs Starlark test scripts against the real kernel, the
// way go.starlark.net runs its testdata: each testdata/*.star file is a
// subtest, executed by nsh's interpreter with an extra `assert` module, with
// the leak checker around it.
package startest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/assert"
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

// Assert returns nsh's assert module (internal/assert: assert.eq,
// assert.fails, ...) made for a Go test: a failed assertion is reported to
// t with its script line and both values, and the script goes on, as in
// go.starlark.net's starlarktest; inside assert.fails a failure is still
// an error, for assert.fails to check.
func Assert(t testing.TB) *starlarkstruct.Module {
	return assert.New(func(_ *starlark.Thread, f *assert.Failure) {
		t.Helper()
		t.Errorf("%s", f)
	})
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
