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

	"github.com/vishvananda/netlink"
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
			{Name: "ping", Sig: "ping(addr, ns=None, count=1, timeout=1.0, interval=0.2, ttl=None)", Impl: pingBuiltin, Doc: `Pings addr (ICMP echo, IPv4 or IPv6) from inside a network namespace.
Returns nsh.ping with sent, received, rtts, errors and ok. The socket is
opened inside ns (a target as for setns(); default the current context),
so no external ping binary is involved. count requests are sent
interval seconds apart; each waits up to timeout seconds for its reply.
ttl sets the IPv4 TTL or IPv6 hop limit of the requests (default: the
namespace's). Needs CAP_NET_RAW in the namespace.
A lost reply is not an error: check .ok (True when every request was
answered). Nor is an ICMP error about a request (Destination Host
Unreachable, Time to live exceeded, a prohibited route...): it is listed
in .errors, with the address that sent it, and str() names it, as
ping(8) prints it. A request the namespace itself cannot send (no route:
ENETUNREACH) is listed with from_addr None. When the last wait is over
and the next hop is still being resolved (ARP or neighbour solicitation
unanswered so far), ping with the default timeout waits for the kernel's
verdict, as ping(8) without -W does: Destination Host Unreachable after
about 3 s (a wrong gateway). A timeout given is kept to, as ping -W is.
Interrupted (Ctrl-C) while it runs, ping stops, prints the summary of
what it saw, as ping(8) prints its statistics on Ctrl-C, and fails (a
script is interrupted; the REPL goes on):
  10.0.0.2: 12/12 replies, rtt min/avg/max ... (interrupted)
  ping: interrupted after 12 of 50 requests (the partial result was printed)
Examples:
  r = ping("10.0.0.2", ns=red, count=3); print(r)
  r = ping("10.9.9.9", ns=red, count=3)
  if r.errors: print(r.errors[0].message, "from", r.errors[0].from_addr)
  ping("10.0.2.2", ns=red, ttl=1).errors[0].kind   # "ttl-exceeded"`},
		},
		Types: []doc.Type{pingType.Type(), pingErrorType.Type()},
	}
}

var pingType = recordType("nsh.ping", `The result of ping().
str() reads like ping's summary: "10.0.0.2: 3/3 replies, rtt min/avg/max
0.031/0.045/0.067 ms", and with ICMP errors "10.0.9.9: 0/3 replies,
3 errors: Destination Host Unreachable from 10.0.0.1".`, []doc.Attr{
	{Name: "addr", Doc: "the address pinged"},
	{Name: "sent", Doc: "requests sent (fewer than count when interrupted)"},
	{Name: "received", Doc: "replies received"},
	{Name: "rtts", Doc: "round-trip times of the replies, in milliseconds (floats)"},
	{Name: "errors", Doc: "the ICMP errors about the requests, as a list of nsh.ping_error, in the order they came"},
	{Name: "ok", Doc: "True when every request got its reply"},
	{Name: "interrupted", Doc: "True when the run was interrupted (Ctrl-C) before every request was sent and waited for"},
	{Name: "min", Doc: "shortest rtt in ms (None without replies)"},
	{Name: "avg", Doc: "mean rtt in ms (None without replies)"},
	{Name: "max", Doc: "longest rtt in ms (None without replies)"},
})

var pingErrorType = recordType("nsh.ping_error", `An ICMP error about one request of ping(), or a request the namespace
could not send. str() reads "seq 1: Destination Host Unreachable from
10.0.0.1".`, []doc.Attr{
	{Name: "seq", Doc: "the sequence number (1..count) of the request it is about"},
	{Name: "from_addr", Doc: "the address that sent the ICMP error (a router on the way, or this namespace's own address when it could not resolve the next hop); None when the kernel refused to send the request (no route)"},
	{Name: "kind", Doc: `what happened, as a word: "net-unreachable", "host-unreachable", "protocol-unreachable", "port-unreachable", "prohibited", "ttl-exceeded", "reassembly-timeout", "fragmentation-needed", "packet-too-big", "parameter-problem", "source-route-failed", "unreachable" (other codes)`},
	{Name: "message", Doc: `the error as ping(8) prints it, e.g. "Destination Host Unreachable", "Time to live exceeded"`},
	{Name: "icmp_type", Doc: "the ICMP (or ICMPv6) type, an int; None for a request not sent"},
	{Name: "icmp_code", Doc: "the ICMP (or ICMPv6) code, an int; None for a request not sent"},
})

func pingBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var addr string
	var nsv, ttlv starlark.Value = starlark.None, starlark.None
	count := 1
	timeout, interval := number(1.0), number(0.2)
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "addr", &addr, "ns?", &nsv, "count?", &count,
		"timeout?", &timeout, "interval?", &interval, "ttl?", &ttlv); err != nil {
		return nil, err
	}
	p, err := parsePing(addr, count, timeout, interval, ttlv)
	if err != nil {
		return nil, err
	}
	st, ns, err := netArg(th, nsv)
	if err != nil {
		return nil, err
	}
	if err := st.makeReady(); err != nil {
		return nil, err
	}
	p.verdict = len(args) < 4 && !hasKeyword(kwargs, "timeout")
	out, err := p.run(st.reg.Context(), netlinkOf(st), ns)
	if err != nil {
		return nil, err
	}
	r := pingResult(p.ip, out)
	if out.interrupted {
		return nil, interrupted(th, fmt.Sprintf("interrupted after %d of %d requests", out.sent, count), r)
	}
	return r, nil
}

// parsePing reads ping()'s arguments other than ns=, before anything is
// made: the address, count= (1..100000), timeout= (0..3600], interval=
// [0, 3600] and ttl= (1..255, or None for the kernel's default).
func parsePing(addr string, count int, timeout, interval number, ttlv starlark.Value) (pinger, error) {
	ip := net.ParseIP(strings.TrimSpace(addr))
	if ip == nil {
		return pinger{}, fmt.Errorf("malformed address %q (want an IPv4 or IPv6 address, no name lookup)", addr)
	}
	if count < 1 || count > 100000 {
		return pinger{}, fmt.Errorf("count %d is out of range (1..100000)", count)
	}
	if !(timeout > 0 && timeout <= 3600) {
		return pinger{}, fmt.Errorf("timeout %v is out of range (0..3600 seconds)", timeout)
	}
	if !(interval >= 0 && interval <= 3600) {
		return pinger{}, fmt.Errorf("interval %v is out of range (0..3600 seconds)", interval)
	}
	ttl := 0
	if ttlv != starlark.None {
		var err error
		if ttl, err = starlark.AsInt32(ttlv); err != nil || ttl < 1 || ttl > 255 {
			return pinger{}, fmt.Errorf("ttl %s is out of range (1..255)", ttlv)
		}
	}
	return pinger{ip: ip, count: count, timeout: secs(float64(timeout)), interval: secs(float64(interval)), ttl: ttl}, nil
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// pinger sends ICMP echo requests from a raw socket born in a namespace.
type pinger struct {
	ip                net.IP
	count             int
	timeout, interval time.Duration
	ttl               int // 0: the namespace's default
	// verdict: wait for the kernel's verdict on a next hop still being
	// resolved once the last timeout is over (no timeout was given).
	verdict bool
}

// pingOutcome is what a ping run saw.
type pingOutcome struct {
	sent        int
	rtts        []time.Duration
	errs        []pingErr
	interrupted bool
}

// pingErr is an ICMP error about one of our requests, or a request the
// kernel refused to send (from nil, typ and code -1).
type pingErr struct {
	seq           int
	from          net.IP
	typ, code     int
	kind, message string
}

// icmpSocket opens a raw ICMP (or ICMPv6) socket inside ns and returns it
// as a net.PacketConn usable from any goroutine. ttl > 0 sets the TTL (hop
// limit) of what it sends.
func icmpSocket(nl *nlhandle.Cache, ns *nsctx.NS, v6 bool, ttl int) (net.PacketConn, error) {
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
	if ttl > 0 {
		var err error
		if v6 {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
		} else {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, ttl)
		}
		if err != nil {
			return nil, nserr.New("setsockopt", fmt.Sprintf("ttl %d", ttl), err)
		}
	}
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("raw %s socket: %w", what, err)
	}
	return c, nil
}

// localSendError is the pingErr for a request the kernel refused to send
// (a route of type unreachable or prohibit, or none at all), or nil for an
// errno that is a real failure.
func localSendError(seq int, err error) *pingErr {
	e := pingErr{seq: seq, typ: -1, code: -1}
	switch {
	case errors.Is(err, unix.ENETUNREACH):
		e.kind, e.message = "net-unreachable", "Network is unreachable (no route; ENETUNREACH)"
	case errors.Is(err, unix.EHOSTUNREACH):
		e.kind, e.message = "host-unreachable", "No route to host (EHOSTUNREACH)"
	case errors.Is(err, unix.EACCES):
		e.kind, e.message = "prohibited", "Sending refused (a prohibit route or a firewall rule; EACCES)"
	default:
		return nil
	}
	return &e
}

func (p pinger) run(ctx context.Context, nl *nlhandle.Cache, ns *nsctx.NS) (pingOutcome, error) {
	var out pingOutcome
	v6 := p.ip.To4() == nil
	c, err := icmpSocket(nl, ns, v6, p.ttl)
	if err != nil {
		return out, err
	}
	defer c.Close()
	// An interruption wakes a blocked read at once.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	id := uint16(rand.Uint32())
	dst := &net.IPAddr{IP: p.ip}
	buf := make([]byte, 1500)
	sentAt := make([]time.Time, p.count+1)
	answered := make([]bool, p.count+1) // a reply or an error came
	replied := make([]bool, p.count+1)
	// read takes one message off the socket until deadline and records
	// what it is; it reports whether seq is now settled (a reply or an
	// error about it came), and ok false when the wait is over.
	read := func(seq int, deadline time.Time) (settled, ok bool, err error) {
		if err := c.SetReadDeadline(deadline); err != nil {
			return false, false, fmt.Errorf("ping %s: %w", p.ip, err)
		}
		if ctx.Err() != nil { // after the deadline is set: see AfterFunc above
			return false, false, nil
		}
		n, from, err := c.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false, false, nil
			}
			var errno unix.Errno
			if errors.As(err, &errno) {
				// A raw socket also reports a hard ICMP error as a pending
				// socket error; the message itself follows in the queue.
				return false, true, nil
			}
			return false, false, fmt.Errorf("ping %s: %w", p.ip, err)
		}
		msg := buf[:n]
		full := func(s16 int) int { return fullSeq(out.sent, s16) }
		if s, ok := echoReply(msg, v6, id); ok && full(s) >= 1 && !replied[full(s)] {
			s = full(s)
			replied[s], answered[s] = true, true
			out.rtts = append(out.rtts, now.Sub(sentAt[s]))
			return s == seq, true, nil
		}
		if e, ok := icmpError(msg, v6, id, p.ip); ok && full(e.seq) >= 1 {
			e.seq = full(e.seq)
			if a, ok := from.(*net.IPAddr); ok {
				e.from = a.IP
			}
			out.errs = append(out.errs, e)
			answered[e.seq] = true
			return e.seq == seq, true, nil
		}
		return false, true, nil
	}
	start := time.Now()
	for seq := 1; seq <= p.count; seq++ {
		if seq > 1 {
			next := start.Add(time.Duration(seq-1) * p.interval)
			if err := sleepCtx(ctx, time.Until(next)); err != nil {
				out.interrupted = true
				return out, nil
			}
		}
		sentAt[seq] = time.Now()
		out.sent = seq
		if _, err := c.WriteTo(echoRequest(v6, id, uint16(seq)), dst); err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) {
				err = oe.Err // nserr.New takes off the *os.SyscallError inside
			}
			if e := localSendError(seq, err); e != nil {
				out.errs = append(out.errs, *e)
				answered[seq] = true
				continue
			}
			return out, nserr.New("sendto", p.ip.String(), err)
		}
		deadline := sentAt[seq].Add(p.timeout)
		for {
			settled, more, err := read(seq, deadline)
			if err != nil {
				return out, err
			}
			if settled || !more {
				break
			}
		}
		if ctx.Err() != nil {
			out.interrupted = true
			return out, nil
		}
	}
	// Take what is already queued: a late reply or error of an earlier request.
	for {
		_, more, err := read(0, time.Now().Add(5*time.Millisecond))
		if err != nil {
			return out, err
		}
		if !more {
			break
		}
	}
	// A request still unsettled while the kernel resolves its next hop
	// (ARP or neighbour solicitation unanswered so far) gets its verdict:
	// Destination Host Unreachable when resolution fails, or a late reply,
	// as ping(8) waits for them. The kernel gives up after about 3 s.
	unsettled := func() bool {
		for s := 1; s <= out.sent; s++ {
			if !answered[s] {
				return true
			}
		}
		return false
	}
	limit := time.Now().Add(maxResolveWait)
	for p.verdict && unsettled() && ctx.Err() == nil && time.Now().Before(limit) && p.resolving(nl, ns) {
		for {
			_, more, err := read(0, time.Now().Add(100*time.Millisecond))
			if err != nil {
				return out, err
			}
			if !more {
				break
			}
		}
	}
	if ctx.Err() != nil {
		out.interrupted = true
	}
	return out, nil
}

// maxResolveWait bounds the wait for the kernel's verdict on a next hop
// being resolved (3 s with the default neighbour settings).
const maxResolveWait = 6 * time.Second

// resolving reports whether the next hop towards p.ip (its gateway, or
// itself on a link) has a neighbour entry still being resolved.
func (p pinger) resolving(nl *nlhandle.Cache, ns *nsctx.NS) bool {
	h, err := nl.Get(ns)
	if err != nil {
		return false
	}
	routes, err := h.RouteGet(p.ip)
	if err != nil || len(routes) == 0 {
		return false
	}
	hop := routes[0].Gw
	if hop == nil {
		hop = p.ip
	}
	family := netlink.FAMILY_V4
	if p.ip.To4() == nil {
		family = netlink.FAMILY_V6
	}
	neighs, err := h.NeighList(routes[0].LinkIndex, family)
	if err != nil {
		return false
	}
	for _, n := range neighs {
		if n.IP.Equal(hop) {
			return n.State&netlink.NUD_INCOMPLETE != 0
		}
	}
	return false
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

// fullSeq maps a 16-bit sequence number from the wire to the latest of
// the sent requests that carried it (count may exceed 65535); below 1 when
// none did.
func fullSeq(sent, s16 int) int { return sent - int(uint16(sent)-uint16(s16)) }

// echoReply returns the sequence number of an ICMP echo reply with our id
// (the IPv4 header already stripped by the net package).
func echoReply(b []byte, v6 bool, id uint16) (int, bool) {
	want := byte(0)
	if v6 {
		want = 129
	}
	if len(b) >= 8 && b[0] == want && b[1] == 0 && binary.BigEndian.Uint16(b[4:]) == id {
		return int(binary.BigEndian.Uint16(b[6:])), true
	}
	return 0, false
}

// icmpError reads an ICMP error message (destination unreachable, time
// exceeded, parameter problem, packet too big) that quotes one of our echo
// requests to dst: its type, code and the request's sequence number.
func icmpError(b []byte, v6 bool, id uint16, dst net.IP) (pingErr, bool) {
	if len(b) < 8 {
		return pingErr{}, false
	}
	typ, code := int(b[0]), int(b[1])
	inner := b[8:]
	var echo []byte
	if v6 {
		if typ < 1 || typ > 4 || len(inner) < 40+8 || inner[0]>>4 != 6 || inner[6] != unix.IPPROTO_ICMPV6 ||
			!net.IP(inner[24:40]).Equal(dst) {
			return pingErr{}, false
		}
		echo = inner[40:]
		if echo[0] != 128 {
			return pingErr{}, false
		}
	} else {
		if typ != 3 && typ != 11 && typ != 12 || len(inner) < 20 || inner[0]>>4 != 4 {
			return pingErr{}, false
		}
		ihl := int(inner[0]&0xf) * 4
		if ihl < 20 || len(inner) < ihl+8 || inner[9] != unix.IPPROTO_ICMP || !net.IP(inner[16:20]).Equal(dst) {
			return pingErr{}, false
		}
		echo = inner[ihl:]
		if echo[0] != 8 {
			return pingErr{}, false
		}
	}
	if binary.BigEndian.Uint16(echo[4:]) != id {
		return pingErr{}, false
	}
	e := pingErr{seq: int(binary.BigEndian.Uint16(echo[6:])), typ: typ, code: code}
	e.kind, e.message = icmpWords(v6, typ, code, int(binary.BigEndian.Uint32(b[4:])))
	return e, true
}

// icmpWords names an ICMP error as a kind and as ping(8) (iputils) prints
// it. rest is the message's second word (the MTU of a "too big").
func icmpWords(v6 bool, typ, code, rest int) (kind, message string) {
	if v6 {
		switch typ {
		case 1:
			m := map[int][2]string{
				0: {"net-unreachable", "Destination unreachable: No route"},
				1: {"prohibited", "Destination unreachable: Administratively prohibited"},
				2: {"unreachable", "Destination unreachable: Beyond scope of source address"},
				3: {"host-unreachable", "Destination unreachable: Address unreachable"},
				4: {"port-unreachable", "Destination unreachable: Port unreachable"},
				5: {"prohibited", "Destination unreachable: Source address failed ingress/egress policy"},
				6: {"prohibited", "Destination unreachable: Reject route to destination"},
			}
			if w, ok := m[code]; ok {
				return w[0], w[1]
			}
			return "unreachable", fmt.Sprintf("Destination unreachable: Unknown code %d", code)
		case 2:
			return "packet-too-big", fmt.Sprintf("Packet too big: mtu=%d", uint32(rest))
		case 3:
			if code == 1 {
				return "reassembly-timeout", "Time exceeded: Defragmentation failure"
			}
			return "ttl-exceeded", "Time exceeded: Hop limit"
		}
		return "parameter-problem", fmt.Sprintf("Parameter problem: code %d", code)
	}
	switch typ {
	case 3:
		m := map[int][2]string{
			0:  {"net-unreachable", "Destination Net Unreachable"},
			1:  {"host-unreachable", "Destination Host Unreachable"},
			2:  {"protocol-unreachable", "Destination Protocol Unreachable"},
			3:  {"port-unreachable", "Destination Port Unreachable"},
			5:  {"source-route-failed", "Source Route Failed"},
			6:  {"net-unreachable", "Destination Net Unknown"},
			7:  {"host-unreachable", "Destination Host Unknown"},
			8:  {"unreachable", "Source Host Isolated"},
			9:  {"prohibited", "Destination Net Prohibited"},
			10: {"prohibited", "Destination Host Prohibited"},
			11: {"net-unreachable", "Destination Net Unreachable for Type of Service"},
			12: {"host-unreachable", "Destination Host Unreachable for Type of Service"},
			13: {"prohibited", "Packet filtered"},
			14: {"prohibited", "Precedence Violation"},
			15: {"prohibited", "Precedence Cutoff"},
		}
		if code == 4 {
			return "fragmentation-needed", fmt.Sprintf("Frag needed and DF set (mtu = %d)", rest&0xffff)
		}
		if w, ok := m[code]; ok {
			return w[0], w[1]
		}
		return "unreachable", fmt.Sprintf("Dest Unreachable, Bad Code: %d", code)
	case 11:
		if code == 1 {
			return "reassembly-timeout", "Frag reassembly time exceeded"
		}
		return "ttl-exceeded", "Time to live exceeded"
	}
	return "parameter-problem", "Parameter problem"
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

func pingResult(ip net.IP, out pingOutcome) *record {
	ms := make([]starlark.Value, len(out.rtts))
	lo, hi, sum := math.Inf(1), 0.0, 0.0
	for i, d := range out.rtts {
		f := float64(d) / float64(time.Millisecond)
		ms[i] = starlark.Float(f)
		lo, hi, sum = math.Min(lo, f), math.Max(hi, f), sum+f
	}
	errs := make([]starlark.Value, len(out.errs))
	for i, e := range out.errs {
		errs[i] = e.value()
	}
	r := &record{t: &pingType, fields: map[string]starlark.Value{
		"addr":        starlark.String(ip.String()),
		"sent":        starlark.MakeInt(out.sent),
		"received":    starlark.MakeInt(len(out.rtts)),
		"rtts":        starlark.NewList(ms),
		"errors":      starlark.NewList(errs),
		"ok":          starlark.Bool(len(out.rtts) == out.sent && !out.interrupted),
		"interrupted": starlark.Bool(out.interrupted),
		"min":         starlark.None, "avg": starlark.None, "max": starlark.None,
	}}
	r.str = fmt.Sprintf("%s: %d/%d replies", ip, len(out.rtts), out.sent)
	if len(out.errs) > 0 {
		r.str += ", " + summarizeErrors(out.errs)
	}
	if len(out.rtts) > 0 {
		avg := sum / float64(len(out.rtts))
		r.fields["min"], r.fields["avg"], r.fields["max"] = starlark.Float(lo), starlark.Float(avg), starlark.Float(hi)
		r.str += fmt.Sprintf(", rtt min/avg/max %.3f/%.3f/%.3f ms", lo, avg, hi)
	}
	if out.interrupted {
		r.str += " (interrupted)"
	}
	return r
}

// summarizeErrors reads "3 errors: Destination Host Unreachable from
// 10.0.0.1", or with several kinds "3 errors: 2 × Destination Host
// Unreachable from 10.0.0.1, 1 × Time to live exceeded from 10.0.0.254".
func summarizeErrors(errs []pingErr) string {
	var order []string
	n := map[string]int{}
	for _, e := range errs {
		w := e.words()
		if n[w] == 0 {
			order = append(order, w)
		}
		n[w]++
	}
	s := fmt.Sprintf("%d errors: ", len(errs))
	if len(errs) == 1 {
		s = "1 error: "
	}
	if len(order) == 1 {
		return s + order[0]
	}
	for i, w := range order {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d × %s", n[w], w)
	}
	return s
}

// words is the error without its sequence number: "Destination Host
// Unreachable from 10.0.0.1".
func (e pingErr) words() string {
	if e.from == nil {
		return e.message
	}
	return e.message + " from " + e.from.String()
}

func (e pingErr) value() *record {
	r := &record{t: &pingErrorType, str: fmt.Sprintf("seq %d: %s", e.seq, e.words()),
		fields: map[string]starlark.Value{
			"seq":       starlark.MakeInt(e.seq),
			"from_addr": starlark.None,
			"kind":      starlark.String(e.kind),
			"message":   starlark.String(e.message),
			"icmp_type": starlark.None,
			"icmp_code": starlark.None,
		}}
	if e.from != nil {
		r.fields["from_addr"] = starlark.String(e.from.String())
	}
	if e.typ >= 0 {
		r.fields["icmp_type"], r.fields["icmp_code"] = starlark.MakeInt(e.typ), starlark.MakeInt(e.code)
	}
	return r
}

// hasKeyword reports whether kwargs names the keyword argument name.
func hasKeyword(kwargs []starlark.Tuple, name string) bool {
	for _, kv := range kwargs {
		if k, ok := kv[0].(starlark.String); ok && string(k) == name {
			return true
		}
	}
	return false
}
