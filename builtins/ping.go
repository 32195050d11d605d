package builtins

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
)

func pingTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "ping", Sig: "ping(addr, ns=None, count=1, timeout=1.0, interval=0.2)", Impl: pingBuiltin, Doc: `Pings addr (ICMP echo, IPv4 or IPv6) from inside a network namespace.
Returns nsh.ping with sent, received, rtts and ok. The socket is opened
inside ns (a target as for setns(); default the current context), so no
external ping binary is involved. count requests are sent
interval seconds apart; each waits up to timeout seconds for its reply. A
lost reply is not an error: check .ok (True when every request was
answered). Needs CAP_NET_RAW in the namespace.
Example: r = ping("10.0.0.2", ns=red, count=3); print(r)`},
		},
		Types: []doc.Type{pingType.Type()},
	}
}

var pingType = recordType("nsh.ping", `The result of ping().
str() reads like ping's summary: "10.0.0.2: 3/3 replies, rtt min/avg/max
0.031/0.045/0.067 ms".`, []doc.Attr{
	{Name: "addr", Doc: "the address pinged"},
	{Name: "sent", Doc: "requests sent"},
	{Name: "received", Doc: "replies received"},
	{Name: "rtts", Doc: "round-trip times of the replies, in milliseconds (floats)"},
	{Name: "ok", Doc: "True when every request got its reply"},
	{Name: "min", Doc: "shortest rtt in ms (None without replies)"},
	{Name: "avg", Doc: "mean rtt in ms (None without replies)"},
	{Name: "max", Doc: "longest rtt in ms (None without replies)"},
})

func pingBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var addr string
	var nsv starlark.Value = starlark.None
	count := 1
	timeout, interval := number(1.0), number(0.2)
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "addr", &addr, "ns?", &nsv, "count?", &count,
		"timeout?", &timeout, "interval?", &interval); err != nil {
		return nil, err
	}
	ip := net.ParseIP(strings.TrimSpace(addr))
	if ip == nil {
		return nil, fmt.Errorf("malformed address %q (want an IPv4 or IPv6 address, no name lookup)", addr)
	}
	if count < 1 || count > 100000 {
		return nil, fmt.Errorf("count %d is out of range (1..100000)", count)
	}
	if !(timeout > 0 && timeout <= 3600) {
		return nil, fmt.Errorf("timeout %v is out of range (0..3600 seconds)", timeout)
	}
	if !(interval >= 0 && interval <= 3600) {
		return nil, fmt.Errorf("interval %v is out of range (0..3600 seconds)", interval)
	}
	st, ns, err := netArg(th, nsv)
	if err != nil {
		return nil, err
	}
	if err := st.makeReady(); err != nil {
		return nil, err
	}
	p := pinger{ip: ip, count: count, timeout: secs(float64(timeout)), interval: secs(float64(interval))}
	rtts, err := p.run(st.reg.Context(), netlinkOf(st), ns)
	if err != nil {
		return nil, err
	}
	return pingResult(ip, count, rtts), nil
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// pinger sends ICMP echo requests from a raw socket born in a namespace.
type pinger struct {
	ip                net.IP
	count             int
	timeout, interval time.Duration
}

// icmpSocket opens a raw ICMP (or ICMPv6) socket inside ns and returns it
// as a net.PacketConn usable from any goroutine.
func icmpSocket(nl *nlhandle.Cache, ns *nsctx.NS, v6 bool) (net.PacketConn, error) {
	af, proto, what := unix.AF_INET, unix.IPPROTO_ICMP, "icmp"
	if v6 {
		af, proto, what = unix.AF_INET6, unix.IPPROTO_ICMPV6, "icmpv6"
	}
	var fd int
	err := nl.In(ns, func() error {
		var err error
		fd, err = unix.Socket(af, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if errors.Is(err, unix.EPERM) {
			return nserr.Errorf("socket", "raw "+what+" in "+ns.String(), err, "ping needs CAP_NET_RAW in the namespace: run as root")
		}
		return nserr.New("socket", "raw "+what+" in "+ns.String(), err)
	})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), what)
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("raw %s socket: %w", what, err)
	}
	return c, nil
}

func (p pinger) run(ctx context.Context, nl *nlhandle.Cache, ns *nsctx.NS) ([]time.Duration, error) {
	v6 := p.ip.To4() == nil
	c, err := icmpSocket(nl, ns, v6)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	id := uint16(rand.Uint32())
	dst := &net.IPAddr{IP: p.ip}
	var rtts []time.Duration
	buf := make([]byte, 1500)
	start := time.Now()
	for seq := 1; seq <= p.count; seq++ {
		if seq > 1 {
			next := start.Add(time.Duration(seq-1) * p.interval)
			if err := sleepCtx(ctx, time.Until(next)); err != nil {
				return nil, err
			}
		}
		sent := time.Now()
		if _, err := c.WriteTo(echoRequest(v6, id, uint16(seq)), dst); err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) {
				err = oe.Err // nserr.New takes off the *os.SyscallError inside
			}
			if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
				continue // no route: a lost request, as ping reports it
			}
			return nil, nserr.New("sendto", p.ip.String(), err)
		}
		deadline := sent.Add(p.timeout)
		for {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("ping interrupted")
			}
			// Wake up at least every 100 ms to notice an interruption.
			if err := c.SetReadDeadline(minTime(deadline, time.Now().Add(100*time.Millisecond))); err != nil {
				return nil, fmt.Errorf("ping %s: %w", p.ip, err)
			}
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					if time.Now().Before(deadline) {
						continue
					}
					break
				}
				return nil, fmt.Errorf("ping %s: %w", p.ip, err)
			}
			if isEchoReply(buf[:n], v6, id, uint16(seq)) {
				rtts = append(rtts, time.Since(sent))
				break
			}
		}
	}
	return rtts, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ping interrupted")
	}
}

// echoRequest builds an ICMP echo request with a 56-byte payload, as ping
// sends. The kernel fills in the ICMPv6 checksum itself.
func echoRequest(v6 bool, id, seq uint16) []byte {
	b := make([]byte, 8+56)
	b[0] = 8
	if v6 {
		b[0] = 128
	}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], "nsh ping")
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	return b
}

// isEchoReply reports whether an ICMP message (the IPv4 header already
// stripped by the net package) is the reply to our request.
func isEchoReply(b []byte, v6 bool, id, seq uint16) bool {
	want := byte(0)
	if v6 {
		want = 129
	}
	return len(b) >= 8 && b[0] == want && b[1] == 0 &&
		binary.BigEndian.Uint16(b[4:]) == id && binary.BigEndian.Uint16(b[6:]) == seq
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func pingResult(ip net.IP, sent int, rtts []time.Duration) *record {
	ms := make([]starlark.Value, len(rtts))
	lo, hi, sum := math.Inf(1), 0.0, 0.0
	for i, d := range rtts {
		f := float64(d) / float64(time.Millisecond)
		ms[i] = starlark.Float(f)
		lo, hi, sum = math.Min(lo, f), math.Max(hi, f), sum+f
	}
	r := &record{t: &pingType, fields: map[string]starlark.Value{
		"addr":     starlark.String(ip.String()),
		"sent":     starlark.MakeInt(sent),
		"received": starlark.MakeInt(len(rtts)),
		"rtts":     starlark.NewList(ms),
		"ok":       starlark.Bool(len(rtts) == sent),
		"min":      starlark.None, "avg": starlark.None, "max": starlark.None,
	}}
	r.str = fmt.Sprintf("%s: %d/%d replies", ip, len(rtts), sent)
	if len(rtts) > 0 {
		avg := sum / float64(len(rtts))
		r.fields["min"], r.fields["avg"], r.fields["max"] = starlark.Float(lo), starlark.Float(avg), starlark.Float(hi)
		r.str += fmt.Sprintf(", rtt min/avg/max %.3f/%.3f/%.3f ms", lo, avg, hi)
	}
	return r
}
