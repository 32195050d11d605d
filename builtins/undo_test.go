package builtins

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNoUndoOutsideExecutor holds the rule of internal/change: builtins
// build records and hand them to the run's executor, which registers
// every undo (or, for what is no kernel change, Executor.Hold); no
// builtin registers one by hand in the run's registry or gives the
// reaper ops of its own.
func TestNoUndoOutsideExecutor(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	bad := regexp.MustCompile(`\breg\.Add\(|\.watch\(`)
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			if m := bad.FindString(line); m != "" {
				t.Errorf("%s:%d: %s registers an undo by hand (go through st.ex.Do or st.ex.Hold): %s", f, i+1, m, strings.TrimSpace(line))
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d source files", checked)
	}
}
