package interp_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/interp"
)

// Run.Call calls a script's function with arguments, and an interruption
// of the run cancels it as it cancels the script.
func TestCallArgsAndInterrupt(t *testing.T) {
	in := interp.New(interp.Config{})
	r := in.NewRun(".", nil)
	defer r.Close()
	g, err := r.ExecFile("f.star", "def double(x):\n    return 2 * x\ndef spin():\n    while True:\n        pass\n")
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Call("f.star", g["double"].(starlark.Callable), starlark.Tuple{starlark.MakeInt(21)})
	if err != nil || v.String() != "42" {
		t.Fatalf("double(21) = %v, %v", v, err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		r.Interrupt(syscall.SIGTERM)
	}()
	_, err = r.Call("f.star", g["spin"].(starlark.Callable), nil)
	if err == nil || !strings.Contains(err.Error(), "interrupted by SIGTERM") {
		t.Errorf("spin(): %v, want interrupted by SIGTERM", err)
	}
}
