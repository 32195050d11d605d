package builtins

import (
	"net"
	"strings"
	"testing"
	"time"
)

// icmpError finds our request (id and seq) quoted in ICMP and ICMPv6
// errors, and refuses errors about other requests or other destinations.
func TestICMPErrorParsing(t *testing.T) {
	dst4 := net.ParseIP("10.9.9.9").To4()
	req := echoRequest(false, 0x4242, 5)
	ip4 := make([]byte, 20)
	ip4[0], ip4[9] = 0x45, 1
	copy(ip4[12:], net.ParseIP("10.0.0.2").To4())
	copy(ip4[16:], dst4)
	msg := append([]byte{3, 1, 0, 0, 0, 0, 0, 0}, append(ip4, req[:8]...)...)
	e, ok := icmpError(msg, false, 0x4242, dst4)
	if !ok || e.seq != 5 || e.kind != "host-unreachable" || e.message != "Destination Host Unreachable" {
		t.Errorf("host unreachable: %+v, %v", e, ok)
	}
	if _, ok := icmpError(msg, false, 0x4243, dst4); ok {
		t.Error("an error about another pinger's request was taken")
	}
	if _, ok := icmpError(msg, false, 0x4242, net.ParseIP("10.9.9.8")); ok {
		t.Error("an error about another destination was taken")
	}
	msg[0], msg[1] = 11, 0
	if e, _ := icmpError(msg, false, 0x4242, dst4); e.kind != "ttl-exceeded" || e.message != "Time to live exceeded" {
		t.Errorf("time exceeded: %+v", e)
	}
	msg[0] = 0 // an echo reply is no error
	if _, ok := icmpError(msg, false, 0x4242, dst4); ok {
		t.Error("an echo reply was taken for an error")
	}

	dst6 := net.ParseIP("fd00::9")
	req6 := echoRequest(true, 0x4242, 2)
	ip6 := make([]byte, 40)
	ip6[0], ip6[6] = 0x60, 58
	copy(ip6[8:], net.ParseIP("fd00::1"))
	copy(ip6[24:], dst6)
	msg6 := append([]byte{1, 3, 0, 0, 0, 0, 0, 0}, append(ip6, req6[:8]...)...)
	e, ok = icmpError(msg6, true, 0x4242, dst6)
	if !ok || e.seq != 2 || e.kind != "host-unreachable" || e.message != "Destination unreachable: Address unreachable" {
		t.Errorf("address unreachable: %+v, %v", e, ok)
	}
	msg6[0], msg6[1] = 3, 0
	if e, _ := icmpError(msg6, true, 0x4242, dst6); e.kind != "ttl-exceeded" {
		t.Errorf("hop limit: %+v", e)
	}
}

// str() of a result with errors groups equal errors.
func TestPingResultString(t *testing.T) {
	from := net.ParseIP("10.0.0.1")
	hu := pingErr{seq: 1, from: from, typ: 3, code: 1, kind: "host-unreachable", message: "Destination Host Unreachable"}
	out := pingOutcome{sent: 3, errs: []pingErr{hu, hu, hu}}
	out.errs[1].seq, out.errs[2].seq = 2, 3
	if got, want := pingResult(net.ParseIP("10.0.9.9"), out).String(), "10.0.9.9: 0/3 replies, 3 errors: Destination Host Unreachable from 10.0.0.1"; got != want {
		t.Errorf("str = %q, want %q", got, want)
	}
	ttl := pingErr{seq: 3, from: net.ParseIP("10.0.0.254"), typ: 11, kind: "ttl-exceeded", message: "Time to live exceeded"}
	out = pingOutcome{sent: 3, rtts: []time.Duration{time.Millisecond}, errs: []pingErr{hu, hu, ttl}, interrupted: true}
	got := pingResult(net.ParseIP("10.0.9.9"), out).String()
	for _, want := range []string{"1/3 replies, 3 errors: 2 × Destination Host Unreachable from 10.0.0.1, 1 × Time to live exceeded from 10.0.0.254", "rtt min/avg/max 1.000/", "(interrupted)"} {
		if !strings.Contains(got, want) {
			t.Errorf("str = %q, want it to contain %q", got, want)
		}
	}
	if e := hu.value().String(); e != "seq 1: Destination Host Unreachable from 10.0.0.1" {
		t.Errorf("error str = %q", e)
	}
}

// Sequence numbers wrap at 65536 on the wire; a reply maps to the latest
// request that carried its number.
func TestFullSeq(t *testing.T) {
	for _, c := range []struct{ sent, s16, want int }{
		{3, 3, 3}, {3, 1, 1}, {3, 4, -65532}, {65536, 0, 65536}, {65537, 65535, 65535},
		{70000, 70000 - 65536, 70000}, {70000, 65000, 65000}, {70000, 4460, 69996},
	} {
		if got := fullSeq(c.sent, c.s16); got != c.want {
			t.Errorf("fullSeq(%d, %d) = %d, want %d", c.sent, c.s16, got, c.want)
		}
	}
}
