package builtins_test

import (
	"errors"
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
	var pi *builtins.PingInterrupted
	if !errors.As(err, &pi) {
		t.Fatalf("err = %v, want a *builtins.PingInterrupted", err)
	}
	if took > 2*time.Second {
		t.Errorf("ping took %s to stop after the interruption", took)
	}
	if pi.Count != 50 || pi.Sent < 1 || pi.Sent >= 50 {
		t.Errorf("sent %d of %d", pi.Sent, pi.Count)
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
	if got := attr("sent").String(); got != starlark.MakeInt(pi.Sent).String() {
		t.Errorf("sent attr %s, want %d", got, pi.Sent)
	}
	// The replies so far are kept: all but maybe the last were answered.
	if n, _ := starlark.AsInt32(attr("received")); n < pi.Sent-1 || n < 1 {
		t.Errorf("received %d of %d sent", n, pi.Sent)
	}
	msg := err.Error()
	for _, want := range []string{"ping 10.94.0.2 interrupted after ", " of 50 requests: 10.94.0.2: ", "replies, rtt min/avg/max", "(interrupted)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}
