package builtins

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
)

func routeTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "route", Sig: "route(dst, via=None, dev=None, ns=None)", Impl: routeBuiltin, Doc: `Adds a route to the main table of a network namespace; returns nsh.route.
dst is a CIDR ("10.0.2.0/24", "fd00:2::/64"), a single address, or
"default" (IPv4, or IPv6 when via is an IPv6 address). via is the gateway
address, dev the outgoing link (an nsh.link or a name); one of them is
needed. ns defaults to dev's namespace when dev is an nsh.link, else to the
current context. Gateway and destination must be of the same family. The
route is removed at the end of the run (if it is still there), unless
what it lives in is kept: a route in a network namespace this run made
and keeps (netns(), persist()) or out of a link this run made and keeps
(link.persist()) is kept with it, as that namespace's links, addresses,
sysctls and qdiscs are.
Example: route("default", via="10.0.1.1", ns=h1)`},
			{Name: "routes", Sig: "routes(ns=None)", Impl: routesBuiltin, Doc: `Lists the routes of a network namespace's main table (IPv4 and IPv6).
Returns nsh.route values, like "ip route; ip -6 route".`},
		},
		Types: []doc.Type{routeType.Type()},
	}
}

// Route is the Starlark value of one route.
type Route struct {
	st    *state
	ns    *nsctx.NS
	r     netlink.Route
	dev   string
	entry *lifecycle.Entry
}

var routeType = doc.Members[*Route]{
	Name: "nsh.route",
	Doc: `A route of a main routing table.
str() reads like "ip route": "10.0.2.0/24 via 10.0.1.1 dev h1-eth0".`,
	Attrs: []doc.AttrOf[*Route]{
		{Name: "dst", Doc: `destination CIDR, or "default"`, Get: func(r *Route) (starlark.Value, error) { return starlark.String(r.dst()), nil }},
		{Name: "via", Doc: "gateway address, or None", Get: func(r *Route) (starlark.Value, error) {
			if r.r.Gw == nil {
				return starlark.None, nil
			}
			return starlark.String(r.r.Gw.String()), nil
		}},
		{Name: "dev", Doc: "name of the outgoing link, or None", Get: func(r *Route) (starlark.Value, error) {
			if r.dev == "" {
				return starlark.None, nil
			}
			return starlark.String(r.dev), nil
		}},
		{Name: "ns", Doc: "its network namespace", Get: func(r *Route) (starlark.Value, error) { return &Namespace{ns: r.ns, st: r.st}, nil }},
		{Name: "family", Doc: `"ipv4" or "ipv6"`, Get: func(r *Route) (starlark.Value, error) {
			if r.r.Family == netlink.FAMILY_V6 {
				return starlark.String("ipv6"), nil
			}
			return starlark.String("ipv4"), nil
		}},
	},
	Methods: []doc.MethodOf[*Route]{
		{Name: "delete", Sig: "delete(missing_ok=False)", Impl: (*Route).deleteMethod, Doc: `Removes the route now.
A route no longer in its table (deleted already, or gone with its link) is
an error unless missing_ok=True: r.delete(missing_ok=True)`},
	},
}

// String renders the route as ip route does.
func (r *Route) String() string {
	s := r.dst()
	if r.r.Gw != nil {
		s += " via " + r.r.Gw.String()
	}
	if r.dev != "" {
		s += " dev " + r.dev
	}
	return s
}

func (r *Route) dst() string {
	if r.r.Dst == nil {
		return "default"
	}
	if ones, _ := r.r.Dst.Mask.Size(); ones == 0 {
		return "default"
	}
	return r.r.Dst.String()
}

// Type returns "nsh.route".
func (r *Route) Type() string { return "nsh.route" }

// Freeze is a no-op.
func (r *Route) Freeze() {}

// Truth is always true.
func (r *Route) Truth() starlark.Bool { return true }

// Hash is not supported: routes are not map keys.
func (r *Route) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: nsh.route") }

// AttrNames lists attributes and methods.
func (r *Route) AttrNames() []string { return routeType.AttrNames() }

// Attr returns an attribute or a bound method.
func (r *Route) Attr(name string) (starlark.Value, error) { return routeType.Attr(r, name) }

func (r *Route) deleteMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var missingOK bool
	if err := starlark.UnpackArgs(fn.Name(), args, kw, "missing_ok?", &missingOK); err != nil {
		return nil, err
	}
	h, err := r.st.handle(r.ns)
	if err != nil {
		return nil, err
	}
	if missingOK {
		// A route that is gone is no change: nothing is traced or done.
		there, err := r.present(h)
		if err != nil {
			return nil, err
		}
		if !there {
			if r.entry != nil {
				r.entry.Forget()
			}
			return starlark.None, nil
		}
	}
	rec := r.record(true)
	rec.Apply = func() error {
		err := h.RouteDel(&r.r)
		if err != nil && isNotFound(err) {
			return nserr.Explain(unix.ESRCH, "route %s is not in %s", r, r.st.nsWhere(r.ns))
		}
		return nserr.New("route del", r.String(), err)
	}
	if _, err := r.st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	if r.entry != nil {
		r.entry.Forget()
	}
	return starlark.None, nil
}

// present reports whether the route is in its namespace's main table: one
// to the same destination, through the same gateway and device when the
// route names them.
func (r *Route) present(h *nlhandle.Handle) (bool, error) {
	rs, err := h.RouteListFiltered(r.r.Family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, nserr.New("route show", "in "+r.st.nsLabel(r.ns), err)
	}
	for _, x := range rs {
		if sameDst(x.Dst, r.r.Dst) && (r.r.Gw == nil || r.r.Gw.Equal(x.Gw)) && (r.r.LinkIndex == 0 || r.r.LinkIndex == x.LinkIndex) {
			return true, nil
		}
	}
	return false, nil
}

// record is the change that adds (del: removes) the route.
func (r *Route) record(del bool) *change.Route {
	via := ""
	if r.r.Gw != nil {
		via = r.r.Gw.String()
	}
	return &change.Route{NS: r.st.netnsRef(r.ns), V6: r.r.Family == netlink.FAMILY_V6, Dst: r.dst(), Via: via, Dev: r.dev, Del: del}
}

// routeSpec is a parsed route() request.
type routeSpec struct {
	dst *net.IPNet // nil: default
	via net.IP
	v6  bool
}

// parseRoute validates dst and via, and their families, before any syscall.
func parseRoute(dst, via string) (routeSpec, error) {
	var r routeSpec
	if via != "" {
		r.via = net.ParseIP(via)
		if r.via == nil {
			return r, fmt.Errorf("malformed gateway address %q", via)
		}
		if r.via.To4() != nil && strings.Contains(via, ":") {
			return r, fmt.Errorf("gateway %q is an IPv4-mapped IPv6 address (::ffff:a.b.c.d): write the IPv4 address (%s) or a native IPv6 one", via, r.via.To4())
		}
		if v4 := r.via.To4(); v4 != nil {
			r.via = v4
		}
	}
	switch strings.TrimSpace(dst) {
	case "default":
		r.v6 = r.via != nil && r.via.To4() == nil
		if r.v6 {
			r.dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		} else {
			r.dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		}
		return r, nil
	case "default6", "::/0":
		if r.via != nil && r.via.To4() != nil {
			return r, fmt.Errorf("gateway %s is IPv4 but destination %q is IPv6", via, dst)
		}
		r.v6 = true
		r.dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		return r, nil
	}
	p, err := parsePrefix(dst)
	if err != nil {
		return r, err
	}
	// The kernel wants the network address: 10.0.2.7/24 means 10.0.2.0/24.
	r.dst = &net.IPNet{IP: p.IP.Mask(p.Mask), Mask: p.Mask}
	r.v6 = p.IP.To4() == nil
	if r.via != nil && (r.via.To4() == nil) != r.v6 {
		return r, fmt.Errorf("gateway %s is %s but destination %s is %s", via, family(r.via), dst, family(p.IP))
	}
	return r, nil
}

func routeBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dst, via string
	var dev, nsv starlark.Value = starlark.None, starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "dst", &dst, "via?", &via, "dev?", &dev, "ns?", &nsv); err != nil {
		return nil, err
	}
	spec, err := parseRoute(dst, via)
	if err != nil {
		return nil, err
	}
	var devLink *Link
	devName := ""
	switch d := dev.(type) {
	case starlark.NoneType:
		if spec.via == nil {
			return nil, fmt.Errorf("route to %s needs via= or dev=", dst)
		}
	case *Link:
		devLink = d
	case starlark.String:
		if err := checkLinkName("dev", string(d)); err != nil {
			return nil, err
		}
		devName = string(d)
	default:
		return nil, fmt.Errorf("dev must be an nsh.link or a link name, not %s", dev.Type())
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	var ns *nsctx.NS
	if nsv == starlark.None && devLink != nil {
		ns = devLink.netns()
	} else if ns, err = netTarget(st, nsv); err != nil {
		return nil, err
	}
	h, err := st.handle(ns)
	if err != nil {
		return nil, err
	}
	r := netlink.Route{Dst: spec.dst, Gw: spec.via, Family: netlink.FAMILY_V4}
	if spec.v6 {
		r.Family = netlink.FAMILY_V6
	}
	switch {
	case devLink != nil:
		if !nsctx.Same(devLink.netns(), ns) {
			return nil, fmt.Errorf("dev %s is not in %s", devLink, st.nsWhere(ns))
		}
		_, nl, err := devLink.fetch()
		if err != nil {
			return nil, err
		}
		r.LinkIndex, devName = nl.Attrs().Index, nl.Attrs().Name
	case devName != "":
		_, nl, err := st.lookupLink(ns, devName)
		if err != nil {
			return nil, err
		}
		r.LinkIndex = nl.Attrs().Index
	}
	out := &Route{st: st, ns: ns, r: r, dev: devName}
	rec := out.record(false)
	rec.What = "route " + out.String()
	rec.Apply = func() error {
		err := h.RouteAdd(&r)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EEXIST):
			return st.routeExists(h, ns, out)
		case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EHOSTUNREACH):
			// IPv4 says ENETUNREACH, IPv6 EHOSTUNREACH.
			return nserr.Errorf("route add", out.String(), err, "the gateway is not on a directly connected subnet of %s", st.nsWhere(ns))
		}
		return nserr.New("route add", fmt.Sprintf("%s in %s", out, st.nsWhere(ns)), err)
	}
	rec.Undo = func() (bool, error) {
		if st.keptHere(ns) {
			return false, nil // it goes with its namespace, or is kept with it
		}
		h, err := st.handle(ns)
		if err != nil {
			return true, err
		}
		oif, err := out.oif(h)
		if err != nil || oif < 0 {
			return false, err // gone already (oif < 0)
		}
		if st.keptLink(ns, oif) {
			return false, nil // kept with the link it goes out of
		}
		if err := h.RouteDel(&r); err != nil {
			if isNotFound(err) {
				return false, nil
			}
			return true, nserr.New("route del", out.String(), err)
		}
		return true, nil
	}
	if out.entry, err = st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	return out, nil
}

// oif returns the index of the link the route goes out of: its dev, or
// the one the kernel chose for its gateway; -1 if the route is gone.
func (r *Route) oif(h *nlhandle.Handle) (int, error) {
	if r.r.LinkIndex > 0 {
		return r.r.LinkIndex, nil
	}
	rs, err := h.RouteListFiltered(r.r.Family, &netlink.Route{Gw: r.r.Gw, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_GW|netlink.RT_FILTER_TABLE)
	if err != nil {
		return 0, nserr.New("route show", "via "+r.r.Gw.String()+" in "+r.st.nsLabel(r.ns), err)
	}
	for _, x := range rs {
		if (&Route{r: x}).dst() == r.dst() {
			return x.LinkIndex, nil
		}
	}
	return -1, nil
}

func routesBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var nsv starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "ns?", &nsv); err != nil {
		return nil, err
	}
	st, ns, h, err := netHandle(th, nsv)
	if err != nil {
		return nil, err
	}
	rs, err := h.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, nserr.New("route show", st.nsWhere(ns), err)
	}
	links, err := h.LinkList()
	if err != nil {
		return nil, nserr.New("link show", st.nsWhere(ns), err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	out := make([]starlark.Value, 0, len(rs))
	for _, r := range rs {
		out = append(out, &Route{st: st, ns: ns, r: r, dev: names[r.LinkIndex]})
	}
	return starlark.NewList(out), nil
}
