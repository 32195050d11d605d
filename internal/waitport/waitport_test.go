package waitport

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"nsh.dev/nsh/internal/sockdiag"
)

func TestMatch(t *testing.T) {
	lo := net.IPv4(127, 0, 0, 1).To4()
	any4 := net.IPv4zero.To4()
	other := net.IPv4(10, 0, 0, 1).To4()
	socks := []sockdiag.Socket{
		{Proto: "tcp", State: sockdiag.Listen, Local: lo, LPort: 8080},                                  // listening on 127.0.0.1:8080
		{Proto: "tcp", State: sockdiag.Listen, Local: any4, LPort: 9090},                                // listening on *:9090
		{Proto: "tcp", State: sockdiag.Established, Local: lo, LPort: 7070, Remote: lo, RPort: 40000},   // a connection, not a listener
		{Proto: "udp", State: sockdiag.Close, Local: other, LPort: 5353},                                // an unconnected udp socket
		{Proto: "udp", State: sockdiag.Established, Local: other, LPort: 5454, Remote: other, RPort: 1}, // a connected one
		{Proto: "tcp", V6: true, State: sockdiag.Listen, Local: net.IPv6loopback, LPort: 6060},
	}
	for _, c := range []struct {
		w    Want
		want bool
	}{
		{Want{"tcp", 8080, nil}, true},
		{Want{"tcp", 8080, lo}, true},
		{Want{"tcp", 8080, other}, false},
		{Want{"tcp", 9090, other}, true}, // the wildcard takes every address
		{Want{"tcp", 7070, nil}, false},
		{Want{"tcp", 5353, nil}, false},
		{Want{"udp", 5353, other}, true},
		{Want{"udp", 5454, nil}, false},
		{Want{"udp", 8080, nil}, false},
		{Want{"tcp", 6060, net.IPv6loopback}, true},
		{Want{"tcp", 6060, lo}, false},
	} {
		if got := Match(socks, c.w); got != c.want {
			t.Errorf("Match(%s) = %v; want %v", c.w, got, c.want)
		}
	}
	if got := Listening(socks, "tcp"); got != "127.0.0.1:8080, *:9090, [::1]:6060" {
		t.Errorf("Listening tcp = %q", got)
	}
	if got := Listening(nil, "udp"); got != "none" {
		t.Errorf("Listening of nothing = %q", got)
	}
}

func TestCheckNamesTheValue(t *testing.T) {
	for _, c := range []struct {
		w   Want
		msg string
	}{
		{Want{Proto: "sctp", Port: 1}, `not "sctp"`},
		{Want{Proto: "tcp", Port: 0}, "port 0 is out of range"},
		{Want{Proto: "udp", Port: 1 << 16}, "port 65536"},
	} {
		if err := c.w.Check(); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Check(%+v) = %v, want %q", c.w, err, c.msg)
		}
	}
}

// A real listener of this process is found in its network namespace's
// sockets; a port nobody holds is not.
func TestListReadsTheKernel(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback:", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	d, err := sockdiag.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	socks, err := d.List("tcp")
	if err != nil || !Match(socks, Want{"tcp", port, net.IPv4(127, 0, 0, 1)}) {
		t.Fatalf("listening on %d: not found in %v, %v", port, socks, err)
	}
	l.Close()
	socks, err = d.List("tcp")
	if err != nil || Match(socks, Want{"tcp", port, nil}) {
		t.Errorf("after close: %v, %v", socks, err)
	}
}

func TestPoll(t *testing.T) {
	bg := context.Background()
	n := 0
	err := Poll(bg, time.Millisecond, func() (bool, error) { n++; return n == 3, nil })
	if err != nil || n != 3 {
		t.Errorf("Poll = %v after %d checks", err, n)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(bg, 30*time.Millisecond)
	defer cancel()
	err = Poll(ctx, 5*time.Millisecond, func() (bool, error) { return false, nil })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("Poll timeout = %v after %s", err, time.Since(start))
	}
	// A passed deadline still gets one check.
	n = 0
	if err := Poll(ctx, time.Millisecond, func() (bool, error) { n++; return true, nil }); err != nil || n != 1 {
		t.Errorf("Poll on a done ctx = %v after %d checks", err, n)
	}
	ctx, cancel = context.WithCancel(bg)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := Poll(ctx, 5*time.Millisecond, func() (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Poll cancelled = %v", err)
	}
	boom := errors.New("boom")
	if err := Poll(bg, time.Millisecond, func() (bool, error) { return false, boom }); err != boom {
		t.Errorf("Poll error = %v", err)
	}
}
