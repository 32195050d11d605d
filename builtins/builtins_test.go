package builtins_test

import (
	"testing"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/startest"
)

// TestScripts runs builtins/testdata/*.star against the real kernel, each
// with the leak checker around it.
func TestScripts(t *testing.T) {
	startest.RunDir(t, "testdata", builtins.Table())
}
