package waitport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// hexAddr prints ip as the kernel prints a socket address: 32-bit words,
// each read in the host's byte order.
func hexAddr(ip net.IP, port int) string {
	var b strings.Builder
	for i := 0; i < len(ip); i += 4 {
		fmt.Fprintf(&b, "%08X", binary.NativeEndian.Uint32(ip[i:]))
	}
	return fmt.Sprintf("%s:%04X", b.String(), port)
}

func table(rows ...string) string {
	s := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	for i, r := range rows {
		s += fmt.Sprintf("%4d: %s 0 0:0 0 0 0 0\n", i, r)
	}
	return s
}

func TestMatch(t *testing.T) {
	lo := net.IPv4(127, 0, 0, 1).To4()
	any4 := net.IPv4zero.To4()
	other := net.IPv4(10, 0, 0, 1).To4()
	peer := hexAddr(net.IPv4(127, 0, 0, 1).To4(), 40000)
	zero := hexAddr(any4, 0)
	tab := table(
		hexAddr(lo, 8080)+" "+zero+" 0A",    // listening on 127.0.0.1:8080
		hexAddr(any4, 9090)+" "+zero+" 0A",  // listening on *:9090
		hexAddr(lo, 7070)+" "+peer+" 01",    // an established connection, not a listener
		hexAddr(other, 5353)+" "+zero+" 07", // an unconnected (udp) socket
		hexAddr(net.IPv6loopback, 6060)+" "+hexAddr(net.IPv6zero, 0)+" 0A",
	)
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
		{Want{"udp", 8080, nil}, false},
		{Want{"tcp", 6060, net.IPv6loopback}, true},
		{Want{"tcp", 6060, lo}, false},
	} {
		got, err := Match(strings.NewReader(tab), c.w)
		if err != nil || got != c.want {
			t.Errorf("Match(%s) = %v, %v; want %v", c.w, got, err, c.want)
		}
	}
	if _, err := Match(strings.NewReader(table("zz:1 "+zero+" 0A")), Want{"tcp", 1, nil}); err == nil || !strings.Contains(err.Error(), `"zz:1"`) {
		t.Errorf("malformed address: %v", err)
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
// tables; a port nobody holds is not.
func TestListeningReadsTheKernel(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback:", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ok, err := Listening(Want{"tcp", port, net.IPv4(127, 0, 0, 1)})
	if err != nil || !ok {
		t.Fatalf("Listening on %d = %v, %v", port, ok, err)
	}
	l.Close()
	ok, err = Listening(Want{"tcp", port, nil})
	if err != nil || ok {
		t.Errorf("after close: %v, %v", ok, err)
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
