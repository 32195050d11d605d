package builtins

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/sockdiag"
	"nsh.dev/nsh/internal/waitport"
)

// waitTable holds the builtins that wait: for time to pass, for a port.
func waitTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "sleep", Sig: "sleep(seconds)", Impl: sleepBuiltin, Doc: `Waits for seconds (an int or a float, 0 or more) and returns None.
Ctrl-C (or SIGTERM) interrupts it, and the run with it.
  sleep(0.5)
To wait for something to happen rather than for a time, see wait_port(),
p.expect() and p.wait(timeout=).`},
			{Name: "wait_port", Sig: `wait_port(port, addr=None, ns=None, proto="tcp", timeout=5.0)`, Impl: waitPortBuiltin, Doc: `Waits until something listens on port in a network namespace, and returns None.
ns is a target as for setns() (default: the current context's network
namespace). proto "tcp" waits for a listening socket, "udp" for a bound,
unconnected one. With addr, the socket must be bound to that address or to
the wildcard address (0.0.0.0, ::). The namespace's sockets are listed
every 20 ms through netlink sock_diag (as ss does), from a socket opened
inside it; nothing is sent. It fails after timeout seconds (None: no
limit), naming the port, the namespace and what listens there instead;
Ctrl-C interrupts it.
  h1 = netns("h1", persist=False)
  srv = spawn("busybox nc -l -p 8080", ns=h1)
  wait_port(8080, ns=h1)           # now a client can connect`},
		},
	}
}

// parseSleep reads sleep()'s argument: a number of seconds, 0 or more.
func parseSleep(v starlark.Value) (time.Duration, error) {
	f, ok := starlark.AsFloat(v)
	if _, isBool := v.(starlark.Bool); !ok || isBool {
		return 0, fmt.Errorf("sleep: seconds must be a number (int or float), not %s %s", v.Type(), v)
	}
	if !(f >= 0) {
		return 0, fmt.Errorf("sleep: seconds must be 0 or more, not %s", v)
	}
	if f > maxSeconds {
		return 0, fmt.Errorf("sleep: %s seconds is more than a year", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func sleepBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var secs starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "seconds", &secs); err != nil {
		return nil, err
	}
	d, err := parseSleep(secs)
	if err != nil {
		return nil, err
	}
	ctx := lifecycle.From(th).Context()
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return starlark.None, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("sleep: interrupted after %s of %s seconds", time.Since(start).Round(time.Millisecond), secs)
	}
}

// waitPortInterval is how often wait_port() reads the socket tables.
const waitPortInterval = 20 * time.Millisecond

func waitPortBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var port int
	var addr, nsv starlark.Value = starlark.None, starlark.None
	var timeout starlark.Value = starlark.Float(5)
	proto := "tcp"
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "port", &port, "addr?", &addr, "ns?", &nsv,
		"proto?", &proto, "timeout?", &timeout); err != nil {
		return nil, err
	}
	w := waitport.Want{Proto: proto, Port: port}
	if addr != starlark.None {
		s, ok := starlark.AsString(addr)
		if !ok {
			return nil, fmt.Errorf("wait_port: addr must be a string, not %s", addr.Type())
		}
		if w.Addr = net.ParseIP(strings.TrimSpace(s)); w.Addr == nil {
			return nil, fmt.Errorf("wait_port: malformed address %q (want an IPv4 or IPv6 address, no name lookup)", s)
		}
	}
	if err := w.Check(); err != nil {
		return nil, fmt.Errorf("wait_port: %w", err)
	}
	d, limited, err := parseTimeout(timeout)
	if err != nil {
		return nil, fmt.Errorf("wait_port: %w", err)
	}
	st, ns, err := netArg(th, nsv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := st.reg.Context(), context.CancelFunc(func() {})
	if limited {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	diag, err := openDiag(st, ns)
	if err != nil {
		return nil, fmt.Errorf("wait_port: %w", err)
	}
	defer diag.Close()
	var socks []sockdiag.Socket
	err = waitport.Poll(ctx, waitPortInterval, func() (ok bool, err error) {
		socks, err = diag.List(w.Proto)
		return waitport.Match(socks, w), err
	})
	switch {
	case err == nil:
		return starlark.None, nil
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("wait_port: nothing listens on %s in %s after %s (%s listening there: %s)",
			w, st.nsLabel(ns), d, w.Proto, waitport.Listening(socks, w.Proto))
	case errors.Is(err, context.Canceled):
		return nil, fmt.Errorf("wait_port: interrupted while waiting for %s in %s", w, st.nsLabel(ns))
	}
	return nil, fmt.Errorf("wait_port: %w", err)
}

// openDiag opens a sock_diag socket inside the network namespace ns.
func openDiag(st *state, ns *nsctx.NS) (*sockdiag.Diag, error) {
	var d *sockdiag.Diag
	err := netlinkOf(st).In(ns, func() error {
		var err error
		d, err = sockdiag.Open()
		return err
	})
	return d, err
}
