package builtins_test

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/startest"
	"nsh.dev/nsh/interp"
)

// An interruption (Ctrl-C) during ping(count=50) stops it at once; the
// error carries the partial result, marked interrupted, and shows its
// summary (issue 21, item 4).
func TestPingInterruptedKeepsPartialResult(t *testing.T) {
	startest.NeedsRealRoot(t)
	leakcheck.Check(t)
	in := interp.New(interp.Config{Builtins: builtins.Table(), Extra: starlark.StringDict{"assert": startest.Assert(t)}})
	r := in.NewRun(".", []string{"ping-int.star"})
	src := `
start = namespaces()
a = unshare("net").net
b = unshare("net").net
setns(start)
veth("pi-a", "pi-b", ns = a, peer_ns = b, addr = "10.94.0.1/24", peer_addr = "10.94.0.2/24")
assert.true(ping("10.94.0.2", ns = a).ok)
READY = True
p = ping("10.94.0.2", ns = a, count = 50, interval = 0.05)
`
	go func() {
		time.Sleep(600 * time.Millisecond)
		r.Interrupt(syscall.SIGINT)
	}()
	began := time.Now()
	_, err := r.ExecFile("ping-int.star", []byte(src))
	took := time.Since(began)
	if cerr := r.Close(); cerr != nil {
		t.Errorf("teardown: %v", cerr)
	}
	var pi *builtins.Interrupted
	if !errors.As(err, &pi) {
		t.Fatalf("err = %v, want a *builtins.Interrupted", err)
	}
	if took > 2*time.Second {
		t.Errorf("ping took %s to stop after the interruption", took)
	}
	res := pi.Result.(starlark.HasAttrs)
	attr := func(name string) starlark.Value {
		v, err := res.Attr(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if attr("interrupted") != starlark.True || attr("ok") != starlark.False {
		t.Errorf("interrupted=%v ok=%v, want True, False", attr("interrupted"), attr("ok"))
	}
	sent, _ := starlark.AsInt32(attr("sent"))
	if sent < 1 || sent >= 50 {
		t.Errorf("sent %d of 50", sent)
	}
	if !strings.Contains(pi.What, fmt.Sprintf("after %d of 50 requests", sent)) {
		t.Errorf("What = %q, sent %d", pi.What, sent)
	}
	// The replies so far are kept: all but maybe the last were answered.
	if n, _ := starlark.AsInt32(attr("received")); n < sent-1 || n < 1 {
		t.Errorf("received %d of %d sent", n, sent)
	}
	msg := err.Error()
	for _, want := range []string{"ping 10.94.0.2 interrupted after ", " of 50 requests: 10.94.0.2: ", "replies, rtt min/avg/max", "(interrupted)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}
