package testrun

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FindFiles searches directories recursively for *_test.star (not in
// dot directories), takes named files as they are, refuses a missing path;
// ListTests lists the top-level test_ defs in file order; Filter matches
// NAME or FILE:NAME.
func TestFindListFilter(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, src string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a_test.star", "def test_z():\n    pass\ndef helper():\n    pass\ndef test_a(x):\n    def test_inner():\n        pass\n")
	b := write("sub/b_test.star", "def test_b():\n    pass\n")
	write("sub/notes.star", "def test_no():\n    pass\n")
	write(".hidden/c_test.star", "def test_c():\n    pass\n")
	other := write("other.star", "def test_o():\n    pass\n")

	files, err := FindFiles([]string{dir, other})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(files, ","), strings.Join([]string{a, b, other}, ","); got != want {
		t.Errorf("FindFiles = %s, want %s", got, want)
	}
	if _, err := FindFiles([]string{filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing path: %v", err)
	}

	tests, err := ListTests(a)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range tests {
		names = append(names, x.Name)
	}
	if got := strings.Join(names, ","); got != "test_z,test_a" {
		t.Errorf("ListTests = %s, want test_z,test_a (file order, top level only)", got)
	}
	bad := write("bad_test.star", "def test_x(:\n")
	if _, err := ListTests(bad); err == nil || !strings.Contains(err.Error(), "bad_test.star:1:") {
		t.Errorf("a syntax error: %v, want its file:line", err)
	}

	for re, want := range map[string]string{
		"^test_a$":           "test_a",
		"a_test.star:test_z": "test_z",
		"test_":              "test_z,test_a",
		"nothing":            "",
	} {
		var got []string
		for _, x := range Filter(tests, regexp.MustCompile(re)) {
			got = append(got, x.Name)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("Filter(%q) = %q, want %q", re, got, want)
		}
	}
}

func TestLoadRoot(t *testing.T) {
	top := t.TempDir()
	for _, d := range []string{".git", "tests/net", "plain"} {
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := LoadRoot(filepath.Join(top, "tests/net/a_test.star")); got != top {
		t.Errorf("LoadRoot in a checkout = %q, want its top %q", got, top)
	}
	// A worktree's .git is a file.
	wt := filepath.Join(top, "plain")
	if err := os.WriteFile(filepath.Join(wt, ".git"), []byte("gitdir: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := LoadRoot(filepath.Join(wt, "b_test.star")); got != wt {
		t.Errorf("LoadRoot in a worktree = %q, want %q", got, wt)
	}
	lone := t.TempDir()
	if got := LoadRoot(filepath.Join(lone, "c_test.star")); got != lone {
		t.Errorf("LoadRoot outside a checkout = %q, want %q", got, lone)
	}
}
