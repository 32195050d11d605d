package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/leakcheck"
)

// A script whose assertion fails exits 1 after printing the assert's
// file:line and both values, and what it made is torn down first.
func TestAssertFailureExits1(t *testing.T) {
	leakcheck.Check(t)
	script := filepath.Join(t.TempDir(), "check.star")
	src := `ns = unshare("net")
def count():
    return len([ns])

print("checking")
assert.eq(count() + 2, 4, msg="links in ns")
print("not reached")
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := nsh(t, "", script)
	if code != 1 {
		t.Errorf("exit %d, want 1 (stderr %q)", code, stderr)
	}
	if out != "checking\n" {
		t.Errorf("stdout %q", out)
	}
	want := script + ":6:10: assert.eq failed: links in ns: got 3, want 4"
	if strings.TrimSpace(stderr) != want {
		t.Errorf("stderr %q\nwant   %q", stderr, want)
	}
	// A long value is cut, not printed whole.
	_, stderr, code = nsh(t, "", "-c", `assert.contains(["x" * 10000], "y")`)
	if code != 1 || !strings.Contains(stderr, "-c:1:16: assert.contains failed: ") || !strings.Contains(stderr, ` ... `) || len(stderr) > 600 {
		t.Errorf("exit %d, %d bytes of stderr: %q", code, len(stderr), stderr)
	}
}

// nsh doc lists the assert functions and prints the doc of one.
func TestAssertDoc(t *testing.T) {
	out, _, code := nsh(t, "", "doc", "assert.ge")
	if code != 0 || !strings.HasPrefix(out, "assert.ge(a, b, msg=None)\n\n    Fails unless a >= b.") {
		t.Errorf("exit %d: %q", code, out)
	}
	out, _, _ = nsh(t, "", "doc")
	if !strings.Contains(out, "assert.fails(fn, regex, msg=None)") {
		t.Errorf("nsh doc does not list assert.fails:\n%s", out)
	}
}
