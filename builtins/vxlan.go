package builtins

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/reaper"
)

// VXLAN's overhead on its underlay: outer Ethernet 14 + IP (20 or 40) +
// UDP 8 + VXLAN 8 bytes.
const (
	vxlanOverhead4 = 50
	vxlanOverhead6 = 70
)

func vxlanTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "vxlan", Sig: "vxlan(name, vni, remote=None, group=None, local=None, dev=None, port=4789, ns=None, addr=None, learning=True, up=True, mtu=None)", Impl: vxlanBuiltin, Doc: `Creates a VXLAN link and returns it as nsh.link (kind "vxlan").
Its underlay is in the current context's network namespace: dev (the
underlay link), local (the source address) and remote (the one peer's
address) or group (a multicast group; needs dev) are looked up there, and
the link is born in ns (a target as for setns(); default the current
context), as with "ip link add ... netns NS type vxlan", so the overlay can
live in a namespace that has no route to the underlay. vni is the VXLAN
network identifier, 1..16777215; port the UDP destination port (4789, the
IANA one; Linux's own default is 8472). learning=False turns off learning
remote MACs from received packets. addr (a CIDR or a list) is added and up
brings the link up in ns.
MTU: VXLAN over IPv4 adds 50 bytes (outer Ethernet, IP, UDP and VXLAN
headers), over IPv6 70. mtu=None takes the underlay's MTU minus that: the
MTU of dev, else of the link the route towards remote leaves by, else 1500.
Packets that fit the underlay are never fragmented, so a ping with DF set
of the link's full MTU passes.
Refused before anything is made: a vni or port out of range, remote and
group both given, a group that is not multicast, remote/group/local of
different address families, a dev that is not in the underlay's namespace.
The link's vni and remote attributes read them back from the kernel. It
is deleted at the end of the run unless persist() is called on it.
Example (two hosts a and b joined by an underlay 192.168.50.0/24):
  setns(a)
  vxlan("vx0", 42, remote="192.168.50.2", dev="u0", ns=h1, addr="10.42.0.1/24")
  setns(b)
  vxlan("vx0", 42, remote="192.168.50.1", dev="u1", ns=h2, addr="10.42.0.2/24")
  ping("10.42.0.2", ns=h1)`},
		},
	}
}

// vxlanArgs are vxlan()'s arguments, validated before anything is made.
type vxlanArgs struct {
	name                 string
	vni, port, mtu       int
	remote, group, local net.IP
	dev                  string
	under, ns            *nsctx.NS
	addrs                []*netlink.Addr
	learning, up         bool
}

func vxlanBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	a := vxlanArgs{port: 4789, learning: true, up: true}
	var remote, group, local, dev, nsv, addr, mtu starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &a.name, "vni", &a.vni, "remote?", &remote, "group?", &group,
		"local?", &local, "dev?", &dev, "port?", &a.port, "ns?", &nsv, "addr?", &addr, "learning?", &a.learning, "up?", &a.up, "mtu?", &mtu); err != nil {
		return nil, err
	}
	if err := checkLinkName("", a.name); err != nil {
		return nil, err
	}
	if a.vni < 1 || a.vni > 1<<24-1 {
		return nil, fmt.Errorf("vni %d is out of range (1..16777215)", a.vni)
	}
	if a.port < 1 || a.port > 65535 {
		return nil, fmt.Errorf("port %d is out of range (1..65535)", a.port)
	}
	var err error
	if a.remote, err = vxlanIP("remote", remote); err != nil {
		return nil, err
	}
	if a.group, err = vxlanIP("group", group); err != nil {
		return nil, err
	}
	if a.local, err = vxlanIP("local", local); err != nil {
		return nil, err
	}
	if a.remote != nil && a.group != nil {
		return nil, fmt.Errorf("remote %s and group %s are both given: a VXLAN link has one peer or one multicast group", a.remote, a.group)
	}
	if a.remote != nil && (a.remote.IsMulticast() || a.remote.IsUnspecified()) {
		return nil, fmt.Errorf("remote %s is not a unicast address (for a multicast group, pass group=)", a.remote)
	}
	if a.group != nil && !a.group.IsMulticast() {
		return nil, fmt.Errorf("group %s is not a multicast address (for one peer, pass remote=)", a.group)
	}
	if a.local != nil && (a.local.IsMulticast() || a.local.IsUnspecified()) {
		return nil, fmt.Errorf("local %s is not a unicast address", a.local)
	}
	peer, peerWhat := a.remote, "remote"
	if a.group != nil {
		peer, peerWhat = a.group, "group"
	}
	if peer != nil && a.local != nil && family(peer) != family(a.local) {
		return nil, fmt.Errorf("%s %s is %s but local %s is %s: the underlay has one address family", peerWhat, peer, family(peer), a.local, family(a.local))
	}
	if dev != starlark.None {
		s, ok := starlark.AsString(dev)
		if !ok {
			return nil, fmt.Errorf("dev must be a link name, not %s", dev.Type())
		}
		if err := checkLinkName("dev", s); err != nil {
			return nil, err
		}
		a.dev = s
	}
	if a.group != nil && a.dev == "" {
		return nil, fmt.Errorf("group %s needs dev=, the underlay link to join it on", a.group)
	}
	if a.addrs, err = parseAddrs("addr", addr); err != nil {
		return nil, err
	}
	if a.mtu, err = parseMTU(mtu); err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	a.under = st.current().Get("net")
	if a.ns, err = netTarget(st, nsv); err != nil {
		return nil, err
	}
	uh, err := st.handle(a.under)
	if err != nil {
		return nil, err
	}
	var devLink netlink.Link
	if a.dev != "" {
		if _, devLink, err = st.lookupLink(a.under, a.dev); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
	}
	if a.mtu == 0 {
		if a.mtu, err = vxlanMTU(uh, devLink, &a); err != nil {
			return nil, err
		}
	}
	if nsv == starlark.None {
		st.noteHost(fn.Name(), a.ns)
	}
	return st.makeVxlan(th, uh, devLink, &a)
}

// vxlanIP parses remote=, group= or local=: None or an IP address.
func vxlanIP(what string, v starlark.Value) (net.IP, error) {
	if v == starlark.None {
		return nil, nil
	}
	s, ok := starlark.AsString(v)
	if !ok {
		return nil, fmt.Errorf("%s must be an IP address string, not %s", what, v.Type())
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%s %q is not an IP address", what, s)
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	return ip, nil
}

// vxlanMTU derives the link's MTU from its underlay: the MTU of dev, else
// of the link the route towards remote leaves by, else 1500, less VXLAN's
// overhead for the underlay's address family.
func vxlanMTU(uh *nlhandle.Handle, dev netlink.Link, a *vxlanArgs) (int, error) {
	under := 1500
	switch {
	case dev != nil:
		under = dev.Attrs().MTU
	case a.remote != nil:
		if rs, err := uh.RouteGet(a.remote); err == nil && len(rs) > 0 {
			if rs[0].MTU > 0 {
				under = rs[0].MTU
			} else if rs[0].LinkIndex > 0 {
				l, err := uh.LinkByIndex(rs[0].LinkIndex)
				if err != nil {
					return 0, nserr.New("link show", fmt.Sprintf("index %d (the route to %s)", rs[0].LinkIndex, a.remote), err)
				}
				under = l.Attrs().MTU
			}
		} // no route (yet): 1500
	}
	v6 := false
	for _, ip := range []net.IP{a.remote, a.group, a.local} {
		if ip != nil {
			v6 = ip.To4() == nil
			break
		}
	}
	mtu := under - vxlanOverhead4
	if v6 {
		mtu = under - vxlanOverhead6
	}
	if mtu < 68 {
		return 0, fmt.Errorf("the underlay's MTU %d leaves %d for the VXLAN link, below 68; pass mtu=", under, mtu)
	}
	return mtu, nil
}

// makeVxlan creates the link in one step, born in a.ns with its underlay
// in a.under, then adds its addresses. A failure after creation deletes
// it again.
func (st *state) makeVxlan(th *starlark.Thread, uh *nlhandle.Handle, dev netlink.Link, a *vxlanArgs) (*Link, error) {
	h, err := st.handle(a.ns)
	if err != nil {
		return nil, err
	}
	l := &Link{st: st, ns: a.ns, name: a.name}
	v := &change.VXLAN{Under: st.netnsRef(a.under), VNI: a.vni, Dev: a.dev, Port: a.port, NoLearning: !a.learning}
	if a.remote != nil {
		v.Remote = a.remote.String()
	}
	if a.group != nil {
		v.Group = a.group.String()
	}
	if a.local != nil {
		v.Local = a.local.String()
	}
	rec := &change.LinkAdd{Kind: "vxlan", NS: st.netnsRef(a.ns), Name: a.name, MTU: a.mtu, Up: a.up, VXLAN: v}
	what := fmt.Sprintf("vxlan %q (vni %d)", a.name, a.vni)
	rec.What = what
	rec.Apply = func() error {
		// The link is deleted by the index nsh chose, which the reaper
		// knows before it exists (see chooseIndex), unless its
		// namespace dies with the run.
		idx, err := withChosenIndex(!st.diesWithRun(a.ns), func(idx int) error {
			if idx > 0 {
				rec.Intend(reaper.DelLink(a.ns, idx, a.name))
			}
			vx := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: a.name, MTU: a.mtu, Index: idx},
				VxlanId: a.vni, SrcAddr: a.local, Learning: a.learning, Port: a.port}
			if a.remote != nil {
				vx.Group = a.remote
			} else {
				vx.Group = a.group
			}
			if dev != nil {
				vx.VtepDevIndex = dev.Attrs().Index
			}
			if a.up {
				vx.Flags = net.FlagUp
			}
			if !nsctx.Same(a.under, a.ns) {
				vx.Namespace = netlink.NsFd(a.ns.Fd())
			}
			err := uh.LinkAdd(vx)
			runtime.KeepAlive(a.ns) // its descriptor is in vx
			return err
		})
		if err != nil {
			if errors.Is(err, unix.EEXIST) {
				if _, lerr := h.LinkByName(a.name); lerr == nil {
					return st.linkExists(h, a.ns, a.name)
				}
				return st.vniExists(uh, h, a)
			}
			return nserr.New("link add", fmt.Sprintf("%s in %s", what, st.nsWhere(a.ns)), err)
		}
		fault.At("link.added")
		if l.index = idx; idx == 0 {
			l.index, err = madeIndex(h, a.name)
		}
		return err
	}
	rec.Undo = func() (bool, error) { return undoLink(rec, l) }
	rec.Reap = func() []reaper.Op { return st.linkOps(l) }
	if l.entry, err = st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	if len(a.addrs) > 0 {
		nl := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: a.name, Index: l.index}}
		if err := st.addAddrs(th, h, nl, a.ns, a.addrs); err != nil {
			l.entry.Forget()
			if _, uerr := deleteLink(l); uerr != nil {
				err = errors.Join(err, uerr)
			}
			return nil, err
		}
	}
	if a.up {
		st.readyLater(l) // IPv6 ready before the run's first traffic (see carrier.go)
	}
	return l, nil
}

// vniExists explains the EEXIST of creating a VXLAN link whose name is
// free: the underlay has a VXLAN link with the same vni and port already
// (the kernel takes each vni once per underlay namespace, port, address
// family and dev), named when it is in the underlay's or the target's
// namespace.
func (st *state) vniExists(uh, h *nlhandle.Handle, a *vxlanArgs) error {
	for _, in := range []struct {
		h  *nlhandle.Handle
		ns *nsctx.NS
	}{{uh, a.under}, {h, a.ns}} {
		ls, err := in.h.LinkList()
		if err != nil {
			continue // the general explanation below
		}
		for _, l := range ls {
			if v, ok := l.(*netlink.Vxlan); ok && v.VxlanId == a.vni && v.Port == a.port {
				return nserr.Explain(unix.EEXIST, "VXLAN link %q in %s has vni %d and port %d on the same underlay already; choose another vni or port, or delete it first",
					v.Attrs().Name, st.nsWhere(in.ns), a.vni, a.port)
			}
		}
	}
	return nserr.Explain(unix.EEXIST, "a VXLAN link with vni %d and port %d is on the same underlay (in %s) already; choose another vni or port, or delete it first",
		a.vni, a.port, st.nsWhere(a.under))
}
