package interp_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"nsh.dev/nsh/interp"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A bundle holds the script and every module it loads, found statically
// and resolved as load() does (relative to the loading file), each once;
// unpacked elsewhere, the script runs there with its modules.
func TestBundle(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"top.star":        "load('lib/a.star', 'a')\nload('lib/b.star', 'b')\nprint(a + b)\n",
		"lib/a.star":      "load('b.star', 'b')\nload('sub/c.star', 'c')\na = b + c\n",
		"lib/b.star":      "b = 1\n",
		"lib/sub/c.star":  "load('../b.star', 'b')\nc = b + 1\n",
		"unrelated.star":  "x = 1\n",
		"lib/other.star":  "y = 1\n",
		"lib/sub/d.star":  "z = 1\n",
		"not-loaded.txt":  "",
		"lib/sub/e.star":  "load('d.star', 'z')\n",
		"lib/sub/f.star":  "w = 1\n",
		"lib/unused.star": "load('/etc/passwd', 'x')\n",
	})
	b, err := interp.NewBundle(filepath.Join(dir, "top.star"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lib/a.star", "lib/b.star", "lib/sub/c.star", "top.star"}; !reflect.DeepEqual(b.Names(), want) || b.Script != "top.star" {
		t.Fatalf("bundle of top.star: %s %v, want %v", b.Script, b.Names(), want)
	}
	to := t.TempDir()
	script, err := b.Unpack(to)
	if err != nil || script != filepath.Join(to, "top.star") {
		t.Fatalf("unpack: %q %v", script, err)
	}
	got, err := os.ReadFile(filepath.Join(to, "lib", "sub", "c.star"))
	if err != nil || string(got) != "load('../b.star', 'b')\nc = b + 1\n" {
		t.Errorf("unpacked lib/sub/c.star: %q %v", got, err)
	}
}

// What a bundle cannot carry is refused, naming the load: an absolute
// module path, a path out of the script's directory, a module that is
// missing; unpacking refuses names that lead out of its directory.
func TestBundleRefusals(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"abs.star":     "load('/etc/nsh/lib.star', 'x')\n",
		"out.star":     "load('../x.star', 'x')\n",
		"missing.star": "load('gone.star', 'x')\n",
		"syntax.star":  "load('ok.star', 'x'\n",
		"ok.star":      "x = 1\n",
	})
	for name, want := range map[string]string{
		"abs.star":     `abs.star:1:6: load("/etc/nsh/lib.star"): an absolute module path`,
		"out.star":     `load("../x.star"): escapes the script's directory`,
		"missing.star": `load("gone.star"): `,
		"syntax.star":  "syntax.star:2:1",
	} {
		if _, err := interp.NewBundle(filepath.Join(dir, name)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bundle of %s: %v, want an error with %q", name, err, want)
		}
	}
	for _, bad := range []string{"../x.star", "/etc/x.star", "a/../../x.star"} {
		b := &interp.Bundle{Script: bad, Files: map[string][]byte{bad: []byte("x = 1")}}
		if _, err := b.Unpack(t.TempDir()); err == nil || !strings.Contains(err.Error(), "leads out of its directory") {
			t.Errorf("unpack of %q: %v", bad, err)
		}
	}
}
