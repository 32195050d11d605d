package labs

// Fuzz target for lab names (issue 18, item 3); see builtins/fuzz_test.go
// for the others. `go test` runs it on its seed corpus (testdata/fuzz),
// `make fuzz` for FUZZTIME.

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzCheckName covers lab names as lab(), `nsh lab` and `nsh exec` take
// them (CheckName): no input panics, a refusal names the text given, and
// an accepted name is 1..64 letters, digits, '_', '.' or '-' starting with
// a letter or digit, so it is one entry directly under the labs directory
// (never "", ".", "..", a path or an option) and holds no byte that would
// cut a C string. None of issue 15's defects was in this parser (labs
// came later); it holds the rules of items 13 (no NUL to cut a name
// short) and 12 (no path leading outside its directory) for lab names.
func FuzzCheckName(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckName(name)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(name)) {
				t.Fatalf("CheckName(%q): error %q does not name it", name, err)
			}
			return
		}
		if len(name) < 1 || len(name) > 64 {
			t.Fatalf("CheckName accepts %q, %d bytes", name, len(name))
		}
		for i, c := range []byte(name) {
			alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
			if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
				t.Fatalf("CheckName accepts %q (byte %d is %q)", name, i, c)
			}
		}
		const root = "/run/nsh/labs"
		if p := filepath.Join(root, name); filepath.Dir(p) != root || filepath.Base(p) != name {
			t.Fatalf("CheckName accepts %q, which is %s, not an entry of %s", name, p, root)
		}
	})
}
