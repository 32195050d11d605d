package interp

// Fuzz target for load() paths (issue 18, item 3); see
// builtins/fuzz_test.go for the others. `go test` runs it on its seed
// corpus (testdata/fuzz), `make fuzz` for FUZZTIME.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// loadTree makes a script directory with a module, a subdirectory, a FIFO,
// and symlinks that stay inside it and that lead out of it.
func loadTree(f *testing.F) (root string) {
	base := f.TempDir()
	root = filepath.Join(base, "root")
	for _, d := range []string{"root/lib", "root/dir", "outside"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for _, p := range []string{"root/main.star", "root/lib/mod.star", "outside/secret.star"} {
		if err := os.WriteFile(filepath.Join(base, p), []byte("x = 1\n"), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for link, to := range map[string]string{
		"root/lib/up": "../..", "root/out": "../outside", "root/etc": "/etc", "root/in": "lib", "root/loop": "loop",
	} {
		if err := os.Symlink(to, filepath.Join(base, link)); err != nil {
			f.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		f.Fatal(err)
	}
	return root
}

// FuzzLoadPath covers load()'s module paths (Run.resolve, then
// ReadScript for what resolves inside the script's directory): a
// relative path that is accepted names a file under the script's
// directory, with its symlinks resolved too; an absolute one is taken as
// written (cleaned, never opened here); a refusal names the module; and
// reading never blocks (a FIFO) nor takes a non-regular file. It would
// have caught issue 15's item 12 (a symlink led load() out of the
// script's directory, and a FIFO hung it).
func FuzzLoadPath(f *testing.F) {
	root := loadTree(f)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	r := &Run{root: func() string { return root }, realRoot: func() string { return realRoot }}
	froms := []string{"", "<stdin>", filepath.Join(root, "main.star"), filepath.Join(root, "lib", "mod.star"), "relative.star"}
	f.Fuzz(func(t *testing.T, module string, from uint8) {
		path, err := r.resolve(froms[int(from)%len(froms)], module)
		if err != nil {
			if msg := err.Error(); msg == "" || module != "" && !strings.Contains(msg, strconv.Quote(module)) {
				t.Fatalf("resolve(%q): error %q does not name it", module, msg)
			}
			return
		}
		if filepath.IsAbs(module) {
			if path != filepath.Clean(module) {
				t.Fatalf("resolve(%q) = %q", module, path)
			}
			return
		}
		if !within(root, path) && !within(realRoot, path) {
			t.Fatalf("resolve(%q) = %q, outside %s", module, path, root)
		}
		if real, err := filepath.EvalSymlinks(path); err == nil && !within(realRoot, real) {
			t.Fatalf("resolve(%q) = %q, which leads to %s, outside %s", module, path, real, realRoot)
		}
		if strings.IndexByte(module, 0) >= 0 {
			return // os refuses it before any syscall
		}
		if _, err := ReadScript(path, false); err == nil {
			if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("ReadScript(%q) read a non-regular file (%v)", path, err)
			}
		}
	})
}
