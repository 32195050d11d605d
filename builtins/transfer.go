package builtins

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
)

func transferTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "transfer", Sig: "transfer(addr, to_ns, ns=None, size=4194304, timeout=30.0)", Impl: transferBuiltin, Doc: `Measures TCP throughput from one network namespace to another.
Sends size bytes from ns to addr, where a listener is opened on addr inside
to_ns; returns nsh.transfer. Both sockets are opened inside their
namespaces (targets as for setns(); ns defaults to the current context),
so no external tool is involved. The time runs from the connection to the last byte read by the receiver.
Example: r = transfer("10.0.0.2", blue, ns=red, size=2 << 20); print(r.mbit)`},
		},
		Types: []doc.Type{transferType.Type()},
	}
}

var transferType = recordType("nsh.transfer", `The result of transfer().
str() reads "2097152 bytes in 0.84 s: 19.9 Mbit/s".`, []doc.Attr{
	{Name: "bytes", Doc: "bytes received"},
	{Name: "seconds", Doc: "elapsed time (float)"},
	{Name: "bps", Doc: "throughput in bits per second (float)"},
	{Name: "mbit", Doc: "throughput in Mbit/s (float)"},
})

func transferBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var addr string
	var toNsv, nsv starlark.Value = nil, starlark.None
	size := 4 << 20
	timeout := number(30)
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "addr", &addr, "to_ns", &toNsv, "ns?", &nsv, "size?", &size, "timeout?", &timeout); err != nil {
		return nil, err
	}
	ip := net.ParseIP(strings.TrimSpace(addr))
	if ip == nil {
		return nil, fmt.Errorf("malformed address %q", addr)
	}
	if size < 1 || size > 1<<34 {
		return nil, fmt.Errorf("size %d is out of range (1..16 GiB)", size)
	}
	if !(timeout > 0 && timeout <= 3600) {
		return nil, fmt.Errorf("timeout %v is out of range (0..3600 seconds)", timeout)
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	to, err := netTarget(st, toNsv)
	if err != nil {
		return nil, err
	}
	from, err := netTarget(st, nsv)
	if err != nil {
		return nil, err
	}
	if err := st.makeReady(); err != nil {
		return nil, err
	}
	n, d, err := tcpTransfer(st.reg.Context(), netlinkOf(st), ip, from, to, int64(size), secs(float64(timeout)))
	if err != nil {
		return nil, err
	}
	bps := float64(n) * 8 / d.Seconds()
	return &record{t: &transferType,
		str: fmt.Sprintf("%d bytes in %.2f s: %.1f Mbit/s", n, d.Seconds(), bps/1e6),
		fields: map[string]starlark.Value{
			"bytes":   starlark.MakeInt64(n),
			"seconds": starlark.Float(d.Seconds()),
			"bps":     starlark.Float(bps),
			"mbit":    starlark.Float(bps / 1e6),
		}}, nil
}

func tcpTransfer(ctx context.Context, nl *nlhandle.Cache, ip net.IP, from, to *nsctx.NS, size int64, timeout time.Duration) (int64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var ln net.Listener
	err := nl.In(to, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("listen on %s in %s: %w", ip, to, err)
	}
	defer ln.Close()
	type got struct {
		n   int64
		end time.Time
		err error
	}
	done := make(chan got, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- got{err: err}
			return
		}
		defer c.Close()
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
		defer stop()
		n, err := io.Copy(io.Discard, c)
		done <- got{n: n, end: time.Now(), err: err}
	}()
	var conn net.Conn
	err = nl.In(from, func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("connect from %s to %s: %w", from, ln.Addr(), err)
	}
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	buf := make([]byte, 64<<10)
	var werr error
	for left := size; left > 0 && werr == nil; {
		chunk := buf[:min(int64(len(buf)), left)]
		var n int
		n, werr = conn.Write(chunk)
		left -= int64(n)
	}
	stop()
	if werr == nil {
		werr = conn.(*net.TCPConn).CloseWrite()
	}
	if werr != nil {
		conn.Close() // the receiver sees the end at once
	}
	r := <-done
	conn.Close()
	if ctx.Err() != nil {
		return 0, 0, fmt.Errorf("transfer to %s did not finish within %s (or was interrupted)", ip, timeout)
	}
	if werr != nil {
		return 0, 0, fmt.Errorf("send to %s: %w", ip, werr)
	}
	if r.err != nil {
		return 0, 0, fmt.Errorf("receive on %s: %w", ip, r.err)
	}
	return r.n, r.end.Sub(start), nil
}
