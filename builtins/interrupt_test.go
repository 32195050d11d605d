package builtins_test

import (
	"bytes"
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
	leakcheck.Check(t)
	var out bytes.Buffer
	in := interp.New(interp.Config{Builtins: builtins.Table(), Extra: starlark.StringDict{"assert": startest.Assert(t)}, Stdout: &out})
	r := in.NewRun(".", []string{"ping-int.star"})
	src := `
start = namespaces()
a = unshare("net").net
b = unshare("net").net
setns(start)
veth("pi-a", "pi-b", ns = a, peer_ns = b, addr = "10.94.0.1/24", peer_addr = "10.94.0.2/24")
assert.true(ping("10.94.0.2", ns = a).ok)
def measure():
    return ping("10.94.0.2", ns = a, count = 50, interval = 0.05)
`
	defer func() {
		if cerr := r.Close(); cerr != nil {
			t.Errorf("teardown: %v", cerr)
		}
	}()
	g, err := r.ExecFile("ping-int.star", []byte(src))
	if err != nil {
		t.Fatal(interp.FormatError(err))
	}
	out.Reset()
	go func() {
		time.Sleep(600 * time.Millisecond)
		r.Interrupt(syscall.SIGINT)
	}()
	began := time.Now()
	_, err = starlark.Call(r.NewThread("measure"), g["measure"], nil, nil)
	took := time.Since(began)
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
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("ping: interrupted after %d of 50 requests (the partial result was printed)", sent)) {
		t.Errorf("error %q", msg)
	}
	// The summary is printed, as ping(8) prints its statistics.
	if got, want := out.String(), pi.Result.String()+"\n"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
	for _, want := range []string{"10.94.0.2: ", "replies, rtt min/avg/max", "(interrupted)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary %q lacks %q", out.String(), want)
		}
	}
}

// An interruption during transfer(seconds=10) stops it at once; the error
// carries what was measured so far, marked interrupted.
func TestTransferInterruptedKeepsPartialResult(t *testing.T) {
	leakcheck.Check(t)
	var out bytes.Buffer
	in := interp.New(interp.Config{Builtins: builtins.Table(), Stdout: &out})
	r := in.NewRun(".", []string{"transfer-int.star"})
	src := `
start = namespaces()
a = unshare("net").net
b = unshare("net").net
setns(start)
l, _ = veth("ti-a", "ti-b", ns = a, peer_ns = b, addr = "10.95.0.1/24", peer_addr = "10.95.0.2/24")
l.netem(rate = "8mbit")
def measure():
    return transfer("10.95.0.2", b, ns = a, seconds = 10)
`
	defer func() {
		if cerr := r.Close(); cerr != nil {
			t.Errorf("teardown: %v", cerr)
		}
	}()
	g, err := r.ExecFile("transfer-int.star", []byte(src))
	if err != nil {
		t.Fatal(interp.FormatError(err))
	}
	go func() {
		time.Sleep(time.Second)
		r.Interrupt(syscall.SIGINT)
	}()
	began := time.Now()
	_, err = starlark.Call(r.NewThread("measure"), g["measure"], nil, nil)
	took := time.Since(began)
	var ie *builtins.Interrupted
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want a *builtins.Interrupted", err)
	}
	if took > 3*time.Second {
		t.Errorf("transfer took %s to stop after the interruption", took)
	}
	res := ie.Result.(starlark.HasAttrs)
	get := func(name string) starlark.Value {
		v, err := res.Attr(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if get("interrupted") != starlark.True || get("complete") != starlark.False || get("timed_out") != starlark.False {
		t.Errorf("interrupted=%v complete=%v timed_out=%v", get("interrupted"), get("complete"), get("timed_out"))
	}
	n, _ := starlark.AsInt32(get("bytes"))
	secs, _ := starlark.AsFloat(get("seconds"))
	mbit, _ := starlark.AsFloat(get("mbit"))
	if n <= 0 || secs < 0.8 || secs > took.Seconds() || mbit < 4 || mbit > 12 {
		t.Errorf("partial figures: %d bytes in %.3f s, %.2f Mbit/s (want about 8)", n, secs, mbit)
	}
	if msg := err.Error(); !strings.Contains(msg, "transfer: interrupted after ") || !strings.HasSuffix(msg, "(the partial result was printed)") {
		t.Errorf("error %q", msg)
	}
	if got := out.String(); !strings.HasSuffix(got, "(interrupted: partial)\n") || got != ie.Result.String()+"\n" {
		t.Errorf("printed %q", got)
	}
}
