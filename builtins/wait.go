package builtins

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/sockdiag"
	"nsh.dev/nsh/internal/waitport"
)

// waitTable holds the builtins that wait: for time to pass, for a port,
// a link state, a route, a file, or any condition (eventually).
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
			{Name: "eventually", Sig: "eventually(fn, timeout=5.0, interval=0.05)", Impl: eventuallyBuiltin, Doc: `Calls fn() until it returns a true value, and returns that value.
fn takes no arguments. An error raised by fn (a fail(), an index out of
range, an assertion that raises) counts as "not yet": fn is called again
interval seconds later. After timeout seconds (None: no limit) it fails
naming fn, the timeout, the number of calls and what the last call
returned or raised; Ctrl-C interrupts it.
  eventually(lambda: ping("10.0.0.2", ns=h1).ok, timeout=10)
  n = eventually(lambda: len(neighbors(ns=h1)))   # the first non-zero count`},
			{Name: "wait_link", Sig: `wait_link(link, state="up", ns=None, timeout=5.0)`, Impl: waitLinkBuiltin, Doc: `Waits until a link is in a state, and returns None.
link is an nsh.link, or a link name in the network namespace ns (a
target as for setns(); default the current context). state is
  "up":      operational state up, or, for links whose driver reports
             none ("unknown": lo, dummy, tun), administratively up with
             carrier (IFF_UP and IFF_LOWER_UP), as "ip link" shows
             LOWER_UP;
  "down":    present and not up in that sense (admin down, no carrier,
             lower-layer-down...);
  "present": the link exists; "absent": it does not (deleted, or moved
             out of the namespace).
The wait is woken by the namespace's link notifications (RTNLGRP_LINK,
subscribed from a socket inside it); a pending carrier change is applied
at once rather than at the kernel's next link-watch run. It fails after
timeout seconds (None: no limit) with the state last seen ("operstate
down, admin up, no carrier"); Ctrl-C interrupts it.
  a, b = veth("w-a", "w-b", ns=h1, peer_ns=h2)
  spawn("ip link set w-b down", ns=h2).wait()
  wait_link(a, "down")
  wait_link("w-b", "absent", ns=h2, timeout=2)`},
			{Name: "wait_route", Sig: "wait_route(dst, ns=None, timeout=5.0)", Impl: waitRouteBuiltin, Doc: `Waits until a network namespace has a route, and returns None.
dst is either
  an address ("10.0.2.5", "fd00:2::5"): a lookup, as "ip route get"
      does, without sending anything: any route by which the namespace
      would send a packet there counts (a covering prefix, the default
      route, a local address); unreachable, blackhole and prohibit routes
      do not;
  a CIDR ("10.0.2.0/24", "fd00::/64", "default" for IPv4's, "::/0"
      for IPv6's): a route with exactly that prefix in the main table
      (host bits are ignored: "10.0.2.1/24" is 10.0.2.0/24).
ns is a target as for setns() (default: the current context). The
routes are read every 20 ms. It fails after timeout seconds (None: no
limit) with what it last saw (the lookup's error, or the routes of the
main table); Ctrl-C interrupts it.
  spawn("sh -c 'sleep 0.2; ip route add 10.9.0.0/16 dev eth0'", ns=h1)
  wait_route("10.9.0.0/16", ns=h1)
  wait_route("10.9.1.1", ns=h1)          # covered by 10.9.0.0/16`},
			{Name: "wait_file", Sig: "wait_file(path, timeout=5.0)", Impl: waitFileBuiltin, Doc: `Waits until path exists, and returns None.
path is absolute and is looked up in the current context's mount
namespace (as mkdir() and spawn() see it); a symbolic link counts once
its target exists. It looks every 20 ms and fails after timeout seconds
(None: no limit) with the last lookup's error; Ctrl-C interrupts it.
  srv = spawn("sh -c 'sleep 0.2; echo ok > /tmp/srv.ready'")
  wait_file("/tmp/srv.ready", timeout=10)`},
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

// waitInterval is how often the waits without a kernel notification
// (wait_route, wait_file, wait_link's fallback) look again.
const waitInterval = 20 * time.Millisecond

// waitContext is the context of a wait of d (unlimited when !limited),
// cancelled also when the run is interrupted.
func waitContext(th *starlark.Thread, d time.Duration, limited bool) (context.Context, context.CancelFunc) {
	ctx := lifecycle.From(th).Context()
	if limited {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// waitTimeout reads a timeout= argument for the builtin called name.
func waitTimeout(name string, v starlark.Value) (time.Duration, bool, error) {
	d, limited, err := parseTimeout(v)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", name, err)
	}
	return d, limited, nil
}

// isCancelled reports whether err is the Starlark thread's cancellation
// (Ctrl-C, a test's time limit), which ends a wait at once.
func isCancelled(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Starlark computation cancelled")
}

// callableName names fn for a message: "check (x.star:3:5)".
func callableName(fn starlark.Callable) string {
	if f, ok := fn.(*starlark.Function); ok {
		return fmt.Sprintf("%s (%s)", f.Name(), f.Position())
	}
	return fn.Name()
}

// shorten cuts s to n bytes for a message.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func eventuallyBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var f starlark.Callable
	var timeout starlark.Value = starlark.Float(5)
	var interval starlark.Value = starlark.Float(0.05)
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "fn", &f, "timeout?", &timeout, "interval?", &interval); err != nil {
		return nil, err
	}
	d, limited, err := waitTimeout("eventually", timeout)
	if err != nil {
		return nil, err
	}
	iv, ok := starlark.AsFloat(interval)
	if _, isBool := interval.(starlark.Bool); !ok || isBool || !(iv >= 0.001 && iv <= 3600) {
		return nil, fmt.Errorf("eventually: interval %s is out of range (0.001..3600 seconds)", interval)
	}
	every := time.Duration(iv * float64(time.Second))
	ctx, cancel := waitContext(th, d, limited)
	defer cancel()
	start := time.Now()
	var last starlark.Value
	var lastErr error
	for calls := 1; ; calls++ {
		v, err := starlark.Call(th, f, nil, nil)
		if isCancelled(err) {
			return nil, err
		}
		if err == nil && v.Truth() {
			return v, nil
		}
		last, lastErr = v, err
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() == nil {
			continue
		}
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("eventually: interrupted after %s waiting for %s to return a true value", time.Since(start).Round(time.Millisecond), callableName(f))
		}
		var seen string
		if lastErr != nil {
			seen = "last error: " + shorten(lastErr.Error(), 400)
		} else {
			seen = "last returned " + shorten(last.String(), 200)
		}
		return nil, fmt.Errorf("eventually: %s did not return a true value within %s (%d calls); %s", callableName(f), d, calls, seen)
	}
}

// linkWaitStates are the states wait_link() waits for.
var linkWaitStates = []string{"up", "down", "present", "absent"}

// linkIsUp reports whether a link is up for wait_link(): operational state
// up, or, for links whose driver reports no operational state ("unknown":
// lo, dummy, tun), administratively up with carrier (IFF_LOWER_UP).
func linkIsUp(nl netlink.Link) bool {
	a := nl.Attrs()
	switch a.OperState {
	case netlink.OperUp:
		return true
	case netlink.OperUnknown:
		return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
	}
	return false
}

// linkSeen describes a link's state for a message: "operstate down,
// admin up, no carrier".
func linkSeen(nl netlink.Link) string {
	if nl == nil {
		return "absent"
	}
	a := nl.Attrs()
	admin, carrier := "admin down", "no carrier"
	if a.Flags&net.FlagUp != 0 {
		admin = "admin up"
	}
	if a.RawFlags&unix.IFF_LOWER_UP != 0 {
		carrier = "carrier"
	}
	return fmt.Sprintf("operstate %s, %s, %s", strings.ToLower(a.OperState.String()), admin, carrier)
}

func waitLinkBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var lv starlark.Value
	var nsv starlark.Value = starlark.None
	var timeout starlark.Value = starlark.Float(5)
	want := "up"
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "link", &lv, "state?", &want, "ns?", &nsv, "timeout?", &timeout); err != nil {
		return nil, err
	}
	if !slices.Contains(linkWaitStates, want) {
		return nil, fmt.Errorf("wait_link: state %q is not one of %s", want, strings.Join(linkWaitStates, ", "))
	}
	d, limited, err := waitTimeout("wait_link", timeout)
	if err != nil {
		return nil, err
	}
	var st *state
	var ns *nsctx.NS
	var index int
	var name, what string
	switch l := lv.(type) {
	case *Link:
		if nsv != starlark.None {
			return nil, fmt.Errorf("wait_link: ns= is for a link given by name; %s has its namespace", l)
		}
		st = l.st
		ns, index, name = l.where()
		what = l.String()
	case starlark.String:
		name = string(l)
		if err := checkLinkName("", name); err != nil {
			return nil, fmt.Errorf("wait_link: %w", err)
		}
		if st, ns, err = netArg(th, nsv); err != nil {
			return nil, err
		}
		what = fmt.Sprintf("link %q in %s", name, st.nsLabel(ns))
	default:
		return nil, fmt.Errorf("wait_link: link must be an nsh.link or a link name, not %s", lv.Type())
	}
	h, err := st.handle(ns)
	if err != nil {
		return nil, err
	}
	ctx, cancel := waitContext(th, d, limited)
	defer cancel()
	// Link notifications wake the wait; without them it polls.
	updates, stop := subscribeLinks(st, ns)
	defer stop()
	every := 250 * time.Millisecond
	if updates == nil {
		every = waitInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var seen netlink.Link
	for {
		if want == "up" || want == "down" {
			// Apply a pending carrier change now rather than at the
			// kernel's next link-watch run (up to a second later).
			if err := netlinkOf(st).SyncLinks(ns, name); err != nil {
				return nil, fmt.Errorf("wait_link: %w", err)
			}
		}
		if seen, err = findLink(st, h, ns, index, name); err != nil {
			return nil, fmt.Errorf("wait_link: %w", err)
		}
		var ok bool
		switch want {
		case "up":
			ok = seen != nil && linkIsUp(seen)
		case "down":
			ok = seen != nil && !linkIsUp(seen)
		case "present":
			ok = seen != nil
		case "absent":
			ok = seen == nil
		}
		if ok {
			return starlark.None, nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("wait_link: %s is not %s after %s; last seen: %s", what, want, d, linkSeen(seen))
			}
			return nil, fmt.Errorf("wait_link: interrupted while waiting for %s to be %s; last seen: %s", what, want, linkSeen(seen))
		case _, open := <-updates:
			if !open { // the subscription failed: poll
				updates = nil
				tick.Reset(waitInterval)
			}
		case <-tick.C:
		}
	}
}

// findLink reads the link of ns with that index and name (index 0: any
// index); nil when there is none.
func findLink(st *state, h *nlhandle.Handle, ns *nsctx.NS, index int, name string) (netlink.Link, error) {
	var nl netlink.Link
	var err error
	if index > 0 {
		nl, err = h.LinkByIndex(index)
		if err == nil && nl.Attrs().Name != name {
			return nil, nil
		}
	} else {
		nl, err = h.LinkByName(name)
	}
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, nserr.New("link show", fmt.Sprintf("%q in %s", name, st.nsWhere(ns)), err)
	}
	return nl, nil
}

// subscribeLinks subscribes to the link notifications of ns (RTNLGRP_LINK,
// from a socket opened inside it). The channel has a value for each
// notification and is closed if the subscription fails; nil when it could
// not be made. stop ends it and waits until its socket is closed.
func subscribeLinks(st *state, ns *nsctx.NS) (<-chan netlink.LinkUpdate, func()) {
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	err := netlinkOf(st).In(ns, func() error {
		return netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{})
	})
	if err != nil {
		close(done)
		return nil, func() {}
	}
	return ch, func() {
		close(done)
		for range ch { // until the reader has seen its socket closed
		}
	}
}

// routeWant is what wait_route() waits for: a route with exactly the
// prefix dst in the main table (exact), or else any route by which the
// namespace would send a packet to the address dst.IP (a lookup).
type routeWant struct {
	dst   *net.IPNet
	exact bool
	text  string
}

// parseRouteWant reads wait_route()'s dst: "default" (IPv4), "::/0", a
// CIDR (exact prefix; host bits are cleared: "10.0.2.1/24" is 10.0.2.0/24)
// or an address (a lookup).
func parseRouteWant(s string) (routeWant, error) {
	s = strings.TrimSpace(s)
	if s == "default" {
		return routeWant{dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, exact: true, text: "default"}, nil
	}
	n, err := parsePrefix(s)
	if err != nil {
		return routeWant{}, err
	}
	if !strings.Contains(s, "/") {
		return routeWant{dst: n, text: n.IP.String()}, nil
	}
	n.IP = n.IP.Mask(n.Mask)
	text := n.String()
	if ones, _ := n.Mask.Size(); ones == 0 && n.IP.To4() != nil {
		text = "default"
	}
	return routeWant{dst: n, exact: true, text: text}, nil
}

// check reports whether ns has the route w wants, and describes what it
// saw for a message.
func (w routeWant) check(h *nlhandle.Handle) (bool, string, error) {
	if !w.exact {
		rs, err := h.RouteGet(w.dst.IP)
		if err != nil {
			var errno unix.Errno
			if errors.As(err, &errno) {
				return false, "no route (" + nserr.Words(errno) + ")", nil
			}
			return false, "", err
		}
		if len(rs) == 0 {
			return false, "no route", nil
		}
		return true, "", nil
	}
	family := netlink.FAMILY_V4
	if w.dst.IP.To4() == nil {
		family = netlink.FAMILY_V6
	}
	rs, err := h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, "", err
	}
	var have []string
	for _, r := range rs {
		if sameDst(r.Dst, w.dst) {
			return true, "", nil
		}
		have = append(have, (&Route{r: r, dev: linkName(h, r.LinkIndex)}).String())
	}
	if len(have) == 0 {
		return false, "the main table has no " + family2name(family) + " routes", nil
	}
	if len(have) > 8 {
		have = append(have[:8], fmt.Sprintf("and %d more", len(have)-8))
	}
	return false, "the main table has " + strings.Join(have, "; "), nil
}

func family2name(f int) string {
	if f == netlink.FAMILY_V6 {
		return "IPv6"
	}
	return "IPv4"
}

func waitRouteBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dst string
	var nsv starlark.Value = starlark.None
	var timeout starlark.Value = starlark.Float(5)
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "dst", &dst, "ns?", &nsv, "timeout?", &timeout); err != nil {
		return nil, err
	}
	w, err := parseRouteWant(dst)
	if err != nil {
		return nil, fmt.Errorf("wait_route: %w", err)
	}
	d, limited, err := waitTimeout("wait_route", timeout)
	if err != nil {
		return nil, err
	}
	st, ns, h, err := netHandle(th, nsv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := waitContext(th, d, limited)
	defer cancel()
	what := "a route to " + w.text
	if !w.exact {
		what = "a route for " + w.text
	}
	var seen string
	err = waitport.Poll(ctx, waitInterval, func() (bool, error) {
		ok, s, err := w.check(h)
		seen = s
		return ok, err
	})
	switch {
	case err == nil:
		return starlark.None, nil
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("wait_route: no %s in %s after %s; %s", strings.TrimPrefix(what, "a "), st.nsLabel(ns), d, seen)
	case errors.Is(err, context.Canceled):
		return nil, fmt.Errorf("wait_route: interrupted while waiting for %s in %s; %s", what, st.nsLabel(ns), seen)
	}
	return nil, nserr.New("wait_route: route get", fmt.Sprintf("%s in %s", w.text, st.nsWhere(ns)), err)
}

func waitFileBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var timeout starlark.Value = starlark.Float(5)
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "path", &path, "timeout?", &timeout); err != nil {
		return nil, err
	}
	switch {
	case path == "":
		return nil, fmt.Errorf("wait_file: empty path")
	case strings.IndexByte(path, 0) >= 0:
		return nil, fmt.Errorf("wait_file: path %q contains a NUL byte", path)
	case !filepath.IsAbs(path):
		return nil, fmt.Errorf("wait_file: path %q is not absolute", path)
	}
	d, limited, err := waitTimeout("wait_file", timeout)
	if err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	mnt := st.current().Get("mnt")
	joins := st.tab.Joins(st.tab.Initial.With(mnt))
	ctx, cancel := waitContext(th, d, limited)
	defer cancel()
	var seen error
	err = waitport.Poll(ctx, waitInterval, func() (bool, error) {
		stat := func() error {
			var sb unix.Stat_t
			seen = unix.Stat(path, &sb)
			return nil
		}
		if len(joins) == 0 {
			stat()
		} else if err := nsthread.Do(joins, stat); err != nil {
			return false, err
		}
		switch {
		case seen == nil:
			return true, nil
		case errors.Is(seen, unix.ENOENT), errors.Is(seen, unix.ENOTDIR), errors.Is(seen, unix.EACCES):
			return false, nil // not yet
		}
		return false, nserr.New("wait_file: stat", strconv.Quote(path), seen)
	})
	where := ""
	if len(joins) > 0 {
		where = " in mount namespace " + mnt.String()
	}
	switch {
	case err == nil:
		return starlark.None, nil
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("wait_file: %q does not exist%s after %s (stat: %s)", path, where, d, nserr.Words(seen))
	case errors.Is(err, context.Canceled):
		return nil, fmt.Errorf("wait_file: interrupted while waiting for %q%s", path, where)
	}
	return nil, err
}
