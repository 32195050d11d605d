package builtins_test

import (
	"os"
	"testing"

	"nsh.dev/nsh/internal/rootless"
)

// TestMain runs the tests rootless (in a new user namespace) when started
// by a user other than root, as the nsh binary does.
func TestMain(m *testing.M) {
	if outer, code := rootless.Enter(rootless.Auto); outer {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
