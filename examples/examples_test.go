// Package examples_test runs every script in examples/ and scripts/ against
// the real kernel, each under the leak checker. The scripts check their own
// results with fail(); an error or a leak fails the test.
package examples_test

import (
	"path/filepath"
	"testing"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/startest"
)

func TestExamples(t *testing.T) { runAll(t, ".") }

func TestScripts(t *testing.T) { runAll(t, "../scripts") }

func runAll(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.star"))
	if len(files) == 0 {
		t.Skipf("no scripts in %s yet", dir)
	}
	for _, f := range files {
		f := f
		t.Run(filepath.Base(f), func(t *testing.T) { startest.RunFile(t, f, builtins.Table()) })
	}
}
