package builtins

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
)

func transferTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "transfer", Sig: "transfer(addr, to_ns, ns=None, size=None, seconds=None, reverse=False, streams=1, udp=False, rate=None, timeout=None)", Impl: transferBuiltin, Doc: `Measures throughput from one network namespace to another, as iperf3 does.
A listener is opened on addr inside to_ns, ns connects to it, and data
flows from ns to to_ns (reverse=True: from to_ns to ns, as iperf3 -R);
returns nsh.transfer. Both sockets are opened inside their namespaces
(targets as for setns(); ns defaults to the current context), so no
external tool is involved.
What is sent: size bytes (default 4 MiB), or, with seconds=, as much as
goes in that many seconds (iperf3 -t). streams=N opens N TCP connections
at once (iperf3 -P): the result is their sum, and .streams holds each.
udp=True sends UDP datagrams of 1400 bytes paced at rate bits per second
("10mbit", "512kbit", "100kbps" in bytes, or a number; default "1mbit"),
and measures what arrives: the rate received, the datagrams lost and the
jitter (RFC 3550, as iperf3 reports it).
The time runs from the connection to the last byte read by the receiver
(with seconds=, to the end of the duration).
timeout (seconds; default 30, or seconds + 30 with seconds=) bounds the
whole run: when it expires, transfer() returns what was measured so far
with complete=False and timed_out=True; it fails only when no connection
could be made. Interrupted (Ctrl-C), it prints the summary of what it
measured so far and fails, as ping() does.
Errors say which namespace lacks what, by its label (netns_new()) or
inode: "10.0.0.9 is not an address in to_ns net:h2", "no route from ns
net:h1 to 10.0.0.2".
Examples:
  r = transfer("10.0.0.2", blue, ns=red, size=2 << 20); print(r.mbit)
  print(transfer("10.0.0.2", blue, ns=red, seconds=2, streams=4))
  print(transfer("10.0.0.2", blue, ns=red, seconds=1, reverse=True))
  u = transfer("10.0.0.2", blue, ns=red, udp=True, rate="20mbit", seconds=2)
  print(u.loss, u.jitter)   # percent lost, ms`},
		},
		Types: []doc.Type{transferType.Type(), streamType.Type()},
	}
}

var transferType = recordType("nsh.transfer", `The result of transfer().
str() reads "4194304 bytes in 3.12 ms: 10.8 Gbit/s", with the streams,
the UDP loss and jitter, and "timed out" when it is partial.`, []doc.Attr{
	{Name: "bytes", Doc: "bytes received"},
	{Name: "seconds", Doc: "elapsed time (float)"},
	{Name: "bps", Doc: "throughput received in bits per second (float)"},
	{Name: "mbit", Doc: "throughput received in Mbit/s (float)"},
	{Name: "protocol", Doc: `"tcp" or "udp"`},
	{Name: "reverse", Doc: "True when data flowed from to_ns to ns"},
	{Name: "streams", Doc: "each TCP stream's share, as a list of nsh.transfer_stream (one for UDP)"},
	{Name: "complete", Doc: "True when everything meant to be sent (size bytes, or seconds' worth) was sent and received in time"},
	{Name: "timed_out", Doc: "True when timeout expired first: the figures are what was measured until then"},
	{Name: "interrupted", Doc: "True in the partial result of an interrupted transfer (see the error of a Ctrl-C)"},
	{Name: "datagrams_sent", Doc: "UDP: datagrams sent (None for TCP)"},
	{Name: "datagrams_received", Doc: "UDP: datagrams received (None for TCP)"},
	{Name: "lost", Doc: "UDP: datagrams sent and not received (None for TCP)"},
	{Name: "loss", Doc: "UDP: lost as a percentage of sent (float; None for TCP)"},
	{Name: "jitter", Doc: "UDP: jitter of the transit times in ms, smoothed as RFC 3550 says (float; None for TCP)"},
	{Name: "sent_mbit", Doc: "UDP: the rate the datagrams were sent at, in Mbit/s: below rate when the sender's own queue was full (a link shaped at the sender blocks its writes rather than dropping; None for TCP)"},
})

var streamType = recordType("nsh.transfer_stream", `One stream of transfer(): str() reads "1048576 bytes in 1.02 ms: 8.2 Gbit/s".`, []doc.Attr{
	{Name: "bytes", Doc: "bytes received on this stream"},
	{Name: "seconds", Doc: "time from the start to this stream's last byte (float)"},
	{Name: "bps", Doc: "this stream's throughput in bits per second (float)"},
	{Name: "mbit", Doc: "this stream's throughput in Mbit/s (float)"},
})

// Interrupted is the error of a measurement (ping(), transfer()) cut
// short by an interruption (Ctrl-C). As ping(8) prints its statistics on
// Ctrl-C, the builtin prints the partial result's summary (a script that is
// interrupted ends without an error message, so this is what it shows);
// the error carries the result itself, marked interrupted=True, for a
// caller (the REPL, a Go test) that wants it.
type Interrupted struct {
	What   string         // "interrupted after 12 of 50 requests"
	Result starlark.Value // the result so far
}

func (e *Interrupted) Error() string { return e.What + " (the partial result was printed)" }

// interrupted prints the summary of a partial result, through the
// thread's print (stdout in nsh), and returns the error that carries it.
func interrupted(th *starlark.Thread, what string, r starlark.Value) error {
	if th.Print != nil {
		th.Print(th, r.String())
	} else {
		fmt.Fprintln(os.Stderr, r.String())
	}
	return &Interrupted{What: what, Result: r}
}

// udpPayload is the size of a UDP datagram's payload: it fits an IPv6
// packet in a 1500-byte MTU.
const udpPayload = 1400

type xfer struct {
	ip               net.IP
	from, to         *nsctx.NS
	fromName, toName string        // how errors name them (see xferName)
	size             int64         // bytes to send, or 0 with dur
	dur              time.Duration // how long to send, or 0 with size
	reverse          bool
	streams          int
	udp              bool
	rate             uint64 // bits/s, UDP
	timeout          time.Duration
	nl               *nlhandle.Cache
	sent             atomic.Int64 // UDP datagrams sent
	sendEnd          time.Time    // when the UDP sender was done
	sendErr          error        // what stopped the UDP sender, if not the end
}

// streamStat is what one stream's receiver counted.
type streamStat struct {
	n   atomic.Int64
	end time.Time // the last byte read (zero when the stream did not end)
}

// xferOutcome is what a transfer measured.
type xferOutcome struct {
	stats               []*streamStat
	start, end          time.Time
	timedOut, interrupt bool
	complete            bool
	sent, received      int64 // UDP datagrams
	jitter              time.Duration
	udp                 bool
}

func transferBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var addr string
	var toNsv, nsv starlark.Value = nil, starlark.None
	var sizev, secondsv, ratev, timeoutv starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
	reverse, udp := false, false
	streams := 1
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "addr", &addr, "to_ns", &toNsv, "ns?", &nsv,
		"size?", &sizev, "seconds?", &secondsv, "reverse?", &reverse, "streams?", &streams,
		"udp?", &udp, "rate?", &ratev, "timeout?", &timeoutv); err != nil {
		return nil, err
	}
	x, err := parseXfer(addr, sizev, secondsv, ratev, timeoutv, reverse, udp, streams)
	if err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	if x.to, err = netTarget(st, toNsv); err != nil {
		return nil, err
	}
	if x.from, err = netTarget(st, nsv); err != nil {
		return nil, err
	}
	if err := st.makeReady(); err != nil {
		return nil, err
	}
	x.fromName, x.toName = st.xferName(x.from), st.xferName(x.to)
	x.nl = netlinkOf(st)
	var out xferOutcome
	if udp {
		out, err = x.runUDP(st.reg.Context())
	} else {
		out, err = x.runTCP(st.reg.Context())
	}
	if err != nil {
		return nil, err
	}
	r := x.result(out)
	if out.interrupt {
		return nil, interrupted(th, fmt.Sprintf("interrupted after %s", fmtSeconds(out.end.Sub(out.start))), r)
	}
	return r, nil
}

// parseXfer reads transfer()'s arguments other than the namespaces,
// before anything is made: the address, size= (1..16 GiB) or seconds=
// [1e-9, 3600], timeout= [1e-9, 3600], streams= (1..128) and, for UDP, rate=.
func parseXfer(addr string, sizev, secondsv, ratev, timeoutv starlark.Value, reverse, udp bool, streams int) (*xfer, error) {
	x := &xfer{reverse: reverse, streams: streams, udp: udp}
	if x.ip = net.ParseIP(strings.TrimSpace(addr)); x.ip == nil {
		return nil, fmt.Errorf("malformed address %q", addr)
	}
	if sizev != starlark.None && secondsv != starlark.None {
		return nil, fmt.Errorf("give size= or seconds=, not both")
	}
	x.size = 4 << 20
	if sizev != starlark.None {
		n, isInt := sizev.(starlark.Int)
		if !isInt {
			return nil, fmt.Errorf("size must be an int, not %s", sizev.Type())
		}
		i64, exact := n.Int64()
		if !exact || i64 < 1 || i64 > 1<<34 {
			return nil, fmt.Errorf("size %s is out of range (1..16 GiB)", sizev)
		}
		x.size = i64
	}
	timeout := 30.0
	if secondsv != starlark.None {
		f, ok := starlark.AsFloat(secondsv)
		// At least a nanosecond: seconds=1e-12 made a zero duration,
		// which sent as a transfer of 0 bytes.
		if !ok || !(f >= 1e-9 && f <= 3600) {
			return nil, fmt.Errorf("seconds %s is out of range (1e-9..3600)", secondsv)
		}
		x.size, x.dur = 0, secs(f)
		timeout = f + 30
	}
	if timeoutv != starlark.None {
		f, ok := starlark.AsFloat(timeoutv)
		if !ok || !(f >= 1e-9 && f <= 3600) { // timeout=1e-12 gave up at once
			return nil, fmt.Errorf("timeout %s is out of range (1e-9..3600 seconds)", timeoutv)
		}
		timeout = f
	}
	x.timeout = secs(timeout)
	if streams < 1 || streams > 128 {
		return nil, fmt.Errorf("streams %d is out of range (1..128)", streams)
	}
	if udp {
		if streams != 1 {
			return nil, fmt.Errorf("udp=True sends one stream (streams=%d)", streams)
		}
		x.rate = 1e6
		if ratev != starlark.None {
			r, err := parseRate(ratev)
			if err != nil {
				return nil, err
			}
			if r < 10e3 {
				return nil, fmt.Errorf("rate %s is too low for UDP (10kbit at least)", ratev)
			}
			x.rate = r
		}
	} else if ratev != starlark.None {
		return nil, fmt.Errorf("rate= paces UDP: pass udp=True (TCP sends as fast as it can)")
	}
	return x, nil
}

// xferName names a namespace in transfer()'s errors: by its label (net:h1),
// its ip-netns name, or its inode; nsh's own as the host's.
func (st *state) xferName(ns *nsctx.NS) string {
	if nsctx.Same(ns, st.tab.Initial.Get("net")) {
		return "the host's network namespace"
	}
	return st.nsLabel(ns)
}

// listenErr says in words why the listener could not be opened on addr
// inside to_ns.
func (x *xfer) listenErr(err error) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("listen on %s in to_ns %s: %w", x.ip, x.toName, err)
	}
	if errno == unix.EADDRNOTAVAIL {
		return nserr.Explain(errno, "%s is not an address in to_ns %s (transfer listens on addr inside to_ns; EADDRNOTAVAIL)", x.ip, x.toName)
	}
	return nserr.New("listen", fmt.Sprintf("on %s in to_ns %s", x.ip, x.toName), errno)
}

// connectErr says in words why ns could not reach the listener.
func (x *xfer) connectErr(err error, to string) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return fmt.Errorf("could not connect from ns %s to %s within %s (no answer: is there a route back from to_ns %s?)", x.fromName, to, x.timeout, x.toName)
		}
		return fmt.Errorf("connect from ns %s to %s: %w", x.fromName, to, err)
	}
	switch errno {
	case unix.ENETUNREACH:
		return nserr.Explain(errno, "no route from ns %s to %s (ENETUNREACH: network is unreachable; add an address or a route in ns)", x.fromName, x.ip)
	case unix.EHOSTUNREACH:
		return nserr.Explain(errno, "%s is unreachable from ns %s (EHOSTUNREACH: no route to host; its next hop did not answer, or a route refuses it)", x.ip, x.fromName)
	case unix.ECONNREFUSED:
		return nserr.Explain(errno, "connection from ns %s to %s refused (ECONNREFUSED): the port is not open where the packets arrived, so %s in ns does not lead to to_ns %s", x.fromName, to, x.ip, x.toName)
	case unix.ETIMEDOUT:
		return nserr.Explain(errno, "connection from ns %s to %s timed out (ETIMEDOUT): no answer; is there a route back from to_ns %s?", x.fromName, to, x.toName)
	}
	return nserr.New("connect", fmt.Sprintf("from ns %s to %s", x.fromName, to), errno)
}

// runTCP opens the listener and the streams, moves the data and counts
// what each receiver read.
func (x *xfer) runTCP(parent context.Context) (xferOutcome, error) {
	out := xferOutcome{}
	ctx, cancel := context.WithTimeout(parent, x.timeout)
	defer cancel()
	var ln net.Listener
	err := x.nl.In(x.to, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(x.ip.String(), "0"))
		return err
	})
	if err != nil {
		return out, x.listenErr(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, x.streams)
	acceptErr := make(chan error, 1)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for i := 0; i < x.streams; i++ {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	stopLn := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopLn()
	defer func() {
		// Connections accepted but never taken (a failure half-way) are
		// closed too, once the accepting goroutine is gone.
		ln.Close()
		<-acceptDone
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	}()
	var clients, servers []net.Conn
	defer func() {
		for _, c := range append(clients, servers...) {
			c.Close()
		}
	}()
	err = x.nl.In(x.from, func() error {
		for i := 0; i < x.streams; i++ {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				return err
			}
			clients = append(clients, c)
		}
		return nil
	})
	if err != nil {
		if parent.Err() != nil {
			return out, fmt.Errorf("interrupted while connecting to %s", x.ip)
		}
		return out, x.connectErr(err, ln.Addr().String())
	}
	for len(servers) < x.streams {
		select {
		case c := <-accepted:
			servers = append(servers, c)
		case err := <-acceptErr:
			return out, fmt.Errorf("accept on %s in to_ns %s: %w", x.ip, x.toName, err)
		case <-ctx.Done():
			return out, fmt.Errorf("the connections to %s were not accepted in time", x.ip)
		}
	}
	senders, receivers := clients, servers
	if x.reverse {
		senders, receivers = servers, clients
	}
	all := append(append([]net.Conn(nil), clients...), servers...)
	stop := context.AfterFunc(ctx, func() {
		for _, c := range all {
			c.SetDeadline(time.Now())
		}
	})
	defer stop()
	out.start = time.Now()
	if x.dur > 0 {
		// A duration run ends at once when it is over: the receivers count
		// what arrived by then, and what is still in the buffers on the way
		// is not theirs (as iperf3's receiver counts).
		end, cancelEnd := context.WithDeadline(ctx, out.start.Add(x.dur))
		defer cancelEnd()
		stopEnd := context.AfterFunc(end, func() {
			for _, c := range all {
				c.SetDeadline(time.Now())
			}
		})
		defer stopEnd()
	}
	var wg sync.WaitGroup
	sendOK := make([]bool, x.streams)
	out.stats = make([]*streamStat, x.streams)
	for i := range x.streams {
		out.stats[i] = &streamStat{}
		share := x.size / int64(x.streams)
		if i == 0 {
			share += x.size % int64(x.streams)
		}
		wg.Add(2)
		go func(c net.Conn, i int, share int64) {
			defer wg.Done()
			sendOK[i] = x.sendTCP(c.(*net.TCPConn), share)
		}(senders[i], i, share)
		go func(c net.Conn, s *streamStat) {
			defer wg.Done()
			buf := make([]byte, 128<<10)
			for {
				n, err := c.Read(buf)
				s.n.Add(int64(n))
				if err != nil {
					if errors.Is(err, io.EOF) {
						s.end = time.Now()
					}
					return
				}
			}
		}(receivers[i], out.stats[i])
	}
	wg.Wait()
	out.end = time.Now()
	if x.dur > 0 {
		out.complete = !out.end.Before(out.start.Add(x.dur))
		out.end = minTime(out.end, out.start.Add(x.dur))
	} else {
		out.complete = true
		for i := range x.streams {
			out.complete = out.complete && sendOK[i] && !out.stats[i].end.IsZero()
		}
	}
	x.finish(&out, parent, ctx)
	return out, nil
}

// sendTCP writes share bytes and closes its half of the connection, or
// with a duration writes until the deadline set at its end stops it; it
// reports whether it sent all it meant to.
func (x *xfer) sendTCP(c *net.TCPConn, share int64) bool {
	buf := make([]byte, 128<<10)
	if x.dur > 0 {
		for {
			if _, err := c.Write(buf); err != nil {
				return errors.Is(err, os.ErrDeadlineExceeded)
			}
		}
	}
	for left := share; left > 0; {
		n, err := c.Write(buf[:min(int64(len(buf)), left)])
		left -= int64(n)
		if err != nil {
			c.Close() // the receiver sees the end at once
			return false
		}
	}
	return c.CloseWrite() == nil
}

// finish marks an outcome cut short by the timeout or an interruption.
func (x *xfer) finish(out *xferOutcome, parent, ctx context.Context) {
	switch {
	case parent.Err() != nil:
		out.interrupt, out.complete = true, false
	case ctx.Err() != nil && !out.complete:
		out.timedOut = true
		// The figures stand at the moment the time was up.
		if d, ok := ctx.Deadline(); ok && d.After(out.start) {
			out.end = minTime(out.end, d)
		}
	}
}

// runUDP sends datagrams paced at the rate and counts what arrives. The
// receiver's socket is opened on addr in to_ns; with reverse, that socket
// sends, to the address a hello from ns came from.
func (x *xfer) runUDP(parent context.Context) (xferOutcome, error) {
	out := xferOutcome{udp: true, stats: []*streamStat{{}}}
	ctx, cancel := context.WithTimeout(parent, x.timeout)
	defer cancel()
	var server *net.UDPConn
	err := x.nl.In(x.to, func() error {
		var err error
		server, err = net.ListenUDP("udp", &net.UDPAddr{IP: x.ip})
		return err
	})
	if err != nil {
		return out, x.listenErr(err)
	}
	defer server.Close()
	var client *net.UDPConn
	err = x.nl.In(x.from, func() error {
		var err error
		client, err = net.DialUDP("udp", nil, server.LocalAddr().(*net.UDPAddr))
		return err
	})
	if err != nil {
		return out, x.connectErr(err, server.LocalAddr().String())
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() {
		server.SetDeadline(time.Now())
		client.SetDeadline(time.Now())
	})
	defer stop()
	send := func(b []byte) error { _, err := client.Write(b); return err }
	recv := server
	if x.reverse {
		// The hello tells the sender in to_ns where ns is; repeated until
		// it arrives (the first may meet an unresolved neighbour).
		var peer *net.UDPAddr
		buf := make([]byte, 64)
		for peer == nil {
			if err := send([]byte("nsh hello")); err != nil && ctx.Err() == nil {
				return out, x.connectErr(err, server.LocalAddr().String())
			}
			server.SetReadDeadline(minTime(time.Now().Add(100*time.Millisecond), deadlineOf(ctx)))
			n, a, err := server.ReadFromUDP(buf)
			if err == nil && string(buf[:n]) == "nsh hello" {
				peer = a
			}
			if ctx.Err() != nil {
				if parent.Err() != nil {
					return out, fmt.Errorf("interrupted while connecting to %s", x.ip)
				}
				return out, fmt.Errorf("no hello from ns %s reached %s in to_ns %s within %s (is there a route?)", x.fromName, server.LocalAddr(), x.toName, x.timeout)
			}
		}
		server.SetReadDeadline(time.Time{})
		send = func(b []byte) error { _, err := server.WriteToUDP(b, peer); return err }
		recv = client
	}
	out.start = time.Now()
	senderDone := make(chan bool, 1)
	go func() { senderDone <- x.sendUDP(ctx, send, out.start) }()
	if !x.receiveUDP(ctx, recv, &out, senderDone) {
		<-senderDone // cut short: the deadlines set above end its writes
	}
	if x.sendErr != nil {
		return out, fmt.Errorf("send to %s from ns %s: %w", x.ip, x.fromName, nserr.Cause(x.sendErr))
	}
	out.sent = x.sent.Load()
	out.end = out.stats[0].end
	if out.end.IsZero() {
		out.end = time.Now()
	}
	x.finish(&out, parent, ctx)
	return out, nil
}

// sendUDP sends numbered, timestamped datagrams at the rate, size bytes'
// worth or for the duration; it reports whether it sent them all.
func (x *xfer) sendUDP(ctx context.Context, send func([]byte) error, start time.Time) bool {
	buf := make([]byte, udpPayload)
	per := time.Duration(float64(udpPayload*8) / float64(x.rate) * float64(time.Second))
	count := int64(math.MaxInt64)
	if x.dur == 0 {
		count = (x.size + udpPayload - 1) / udpPayload
	}
	end := start.Add(x.dur)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := int64(0); i < count; i++ {
		due := start.Add(time.Duration(i) * per)
		// With a duration, sending stops at its end even when the socket
		// could not keep up (a full queue blocks the writes).
		if x.dur > 0 && (!due.Before(end) || !time.Now().Before(end)) {
			break
		}
		// Sleep only when ahead by more than the timer's resolution; a
		// sender behind its schedule catches up in a burst.
		if d := time.Until(due); d > 200*time.Microsecond {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return false
		}
		binary.BigEndian.PutUint64(buf, uint64(i))
		binary.BigEndian.PutUint64(buf[8:], uint64(time.Now().UnixNano()))
		// A datagram the kernel refuses (a full queue: ENOBUFS, an ICMP
		// error about an earlier one: ECONNREFUSED...) is lost, and
		// counted so; a deadline means the run was cut short.
		if err := send(buf); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				return false
			case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ECONNREFUSED),
				errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.ENETUNREACH):
			default:
				x.sendErr = err
				return false
			}
		}
		x.sent.Add(1)
	}
	x.sendEnd = time.Now()
	return true
}

// receiveUDP counts the datagrams that arrive until the sender is done
// and the link has been quiet for a while, or the run is cut short. It
// reports whether it saw the sender finish.
func (x *xfer) receiveUDP(ctx context.Context, c *net.UDPConn, out *xferOutcome, senderDone chan bool) bool {
	const quiet = 300 * time.Millisecond
	buf := make([]byte, 2048)
	var seen []uint64 // a bit per sequence number received
	var lastTransit time.Duration
	var jitter float64
	done, sentAll := false, false
	var doneAt, wake time.Time
	s := out.stats[0]
	// A receiver that falls behind loses datagrams in its socket's buffer:
	// make it large (as root, beyond net.core.rmem_max; else as allowed).
	if raw, err := c.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
				c.SetReadBuffer(4 << 20)
			}
		})
	}
	for {
		if !done {
			select {
			case sentAll = <-senderDone:
				done, doneAt = true, time.Now()
			default:
			}
		}
		if ctx.Err() != nil {
			break
		}
		now := time.Now()
		if done {
			last := doneAt
			if s.end.After(last) {
				last = s.end
			}
			if time.Since(last) > quiet {
				break
			}
		}
		if now.After(wake) {
			wake = minTime(now.Add(50*time.Millisecond), deadlineOf(ctx))
			c.SetReadDeadline(wake)
		}
		n, err := c.Read(buf)
		if err != nil {
			continue
		}
		now = time.Now()
		if n < 16 {
			continue
		}
		seq := binary.BigEndian.Uint64(buf)
		if seq >= 1<<40 { // not ours
			continue
		}
		for uint64(len(seen)) <= seq/64 {
			seen = append(seen, 0)
		}
		if seen[seq/64]&(1<<(seq%64)) != 0 {
			continue // a duplicate
		}
		seen[seq/64] |= 1 << (seq % 64)
		transit := now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(buf[8:]))))
		if out.received > 0 {
			d := math.Abs(float64(transit - lastTransit))
			jitter += (d - jitter) / 16
		}
		lastTransit = transit
		out.received++
		s.n.Add(int64(n))
		s.end = now
	}
	out.jitter = time.Duration(jitter)
	out.complete = sentAll && ctx.Err() == nil
	return done
}

func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(time.Hour)
}

// rate returns bits per second for n bytes in d.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		d = time.Nanosecond
	}
	return float64(n) * 8 / d.Seconds()
}

func (x *xfer) result(out xferOutcome) *record {
	var total int64
	streams := make([]starlark.Value, len(out.stats))
	for i, s := range out.stats {
		n := s.n.Load()
		total += n
		end := s.end
		if end.IsZero() {
			end = out.end
		}
		d := end.Sub(out.start)
		bps := rate(n, d)
		streams[i] = &record{t: &streamType, str: fmt.Sprintf("%d bytes in %s: %s", n, fmtSeconds(d), fmtRate(bps)),
			fields: map[string]starlark.Value{
				"bytes":   starlark.MakeInt64(n),
				"seconds": starlark.Float(d.Seconds()),
				"bps":     starlark.Float(bps),
				"mbit":    starlark.Float(bps / 1e6),
			}}
	}
	d := out.end.Sub(out.start)
	if out.udp && x.dur > 0 && out.complete {
		// What a receiver gets in the duration: the last datagram's
		// arrival can fall a little before its end.
		d = max(d, x.dur)
	}
	bps := rate(total, d)
	proto := "tcp"
	if out.udp {
		proto = "udp"
	}
	r := &record{t: &transferType, fields: map[string]starlark.Value{
		"bytes":              starlark.MakeInt64(total),
		"seconds":            starlark.Float(d.Seconds()),
		"bps":                starlark.Float(bps),
		"mbit":               starlark.Float(bps / 1e6),
		"protocol":           starlark.String(proto),
		"reverse":            starlark.Bool(x.reverse),
		"streams":            starlark.NewList(streams),
		"complete":           starlark.Bool(out.complete),
		"timed_out":          starlark.Bool(out.timedOut),
		"interrupted":        starlark.Bool(out.interrupt),
		"datagrams_sent":     starlark.None,
		"datagrams_received": starlark.None,
		"lost":               starlark.None,
		"loss":               starlark.None,
		"jitter":             starlark.None,
		"sent_mbit":          starlark.None,
	}}
	r.str = fmt.Sprintf("%d bytes in %s: %s", total, fmtSeconds(d), fmtRate(bps))
	if len(out.stats) > 1 {
		r.str += fmt.Sprintf(" over %d streams", len(out.stats))
	}
	if x.reverse {
		r.str += " (reverse)"
	}
	if out.udp {
		lost := max(out.sent-out.received, 0)
		loss := 0.0
		if out.sent > 0 {
			loss = 100 * float64(lost) / float64(out.sent)
		}
		jit := float64(out.jitter) / float64(time.Millisecond)
		r.fields["datagrams_sent"] = starlark.MakeInt64(out.sent)
		r.fields["datagrams_received"] = starlark.MakeInt64(out.received)
		r.fields["lost"] = starlark.MakeInt64(lost)
		r.fields["loss"] = starlark.Float(loss)
		r.fields["jitter"] = starlark.Float(jit)
		r.str += fmt.Sprintf(", UDP %d/%d datagrams, %s%% lost, jitter %.3f ms", out.received, out.sent, fmtPercent(loss), jit)
		sentBps := 0.0
		if !x.sendEnd.IsZero() {
			sentBps = rate(out.sent*udpPayload, x.sendEnd.Sub(out.start))
			if x.dur > 0 {
				sentBps = rate(out.sent*udpPayload, x.dur)
			}
			if sentBps < 0.9*float64(x.rate) {
				r.str += fmt.Sprintf(", sent at %s of %s asked: the sender could not keep up", fmtRate(sentBps), fmtRate(float64(x.rate)))
			}
		}
		r.fields["sent_mbit"] = starlark.Float(sentBps / 1e6)
	}
	switch {
	case out.timedOut:
		r.str += fmt.Sprintf(" (timed out after %s: partial)", fmtSeconds(x.timeout))
	case out.interrupt:
		r.str += " (interrupted: partial)"
	case !out.complete:
		r.str += " (incomplete)"
	}
	return r
}

// fmtSeconds renders a duration with three significant digits: "183 µs",
// "3.12 ms", "42.7 ms", "300 ms", "2.05 s", "125 s".
func fmtSeconds(d time.Duration) string {
	s := d.Seconds()
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", s*1e3)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", s*1e3)
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", s*1e3)
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", s)
	case d < 100*time.Second:
		return fmt.Sprintf("%.1f s", s)
	}
	return fmt.Sprintf("%.0f s", s)
}

// fmtRate renders bits per second with three significant digits in the
// fitting unit: "10.8 Gbit/s", "19.9 Mbit/s", "512 kbit/s".
func fmtRate(bps float64) string {
	unit, div := "bit/s", 1.0
	for _, u := range []struct {
		name string
		div  float64
	}{{"Tbit/s", 1e12}, {"Gbit/s", 1e9}, {"Mbit/s", 1e6}, {"kbit/s", 1e3}} {
		if bps >= u.div {
			unit, div = u.name, u.div
			break
		}
	}
	v := bps / div
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

// fmtPercent renders a loss percentage: "0", "0.12", "37.5".
func fmtPercent(p float64) string {
	switch {
	case p == 0:
		return "0"
	case p < 10:
		return fmt.Sprintf("%.2f", p)
	}
	return fmt.Sprintf("%.1f", p)
}
