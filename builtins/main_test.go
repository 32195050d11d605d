package builtins_test

import (
	"testing"

	"nsh.dev/nsh/internal/startest"
)

func TestMain(m *testing.M) { startest.Main(m) }
