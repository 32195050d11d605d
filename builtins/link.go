package builtins

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/reaper"
)

func linkTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "veth", Sig: "veth(name, peer, ns=None, peer_ns=None, addr=None, peer_addr=None, up=True, mtu=None)", Impl: vethBuiltin, Doc: `Creates a veth pair and returns its two ends as (nsh.link, nsh.link).
The end called name is created in ns, the end called peer directly in
peer_ns (both default to the current context; ns and peer_ns are targets as
for setns()), so no end is ever left behind in another namespace. addr and
peer_addr are CIDR strings ("10.0.0.1/24", "fd00::1/64") or lists of them;
IPv6 addresses skip duplicate address detection so they work at once. up
brings both ends up (made ready for traffic, carrier and IPv6, before the
run's next ping(), transfer() or process); mtu sets both MTUs. The pair is deleted at the end of
the run unless persist() is called on an end. Names are at most 15 bytes,
without '/', ':', '%', NUL or whitespace; an existing name is refused and nothing is
left half-built.
Example: a, b = veth("veth0", "veth1", ns=red, peer_ns=blue,
                     addr="10.0.0.1/24", peer_addr="10.0.0.2/24")`},
			{Name: "link", Sig: "link(name, ns=None)", Impl: linkBuiltin, Doc: `Returns the existing link called name in a network namespace as nsh.link.
ns is a target as for setns(); default the current context. Links made by
other tools (ip link add ...) are found too; nsh does not delete them at the
end of the run.`},
		},
		Types: []doc.Type{linkType.Type()},
		Topic: map[string]string{
			"loopback": `Every network namespace nsh creates (unshare("net"), netns()) has its
loopback "lo" brought up at once, so 127.0.0.1 and ::1 work as in a normal
host. Pass lo=False to unshare() or netns() to leave it down.`,
		},
	}
}

// Link is the Starlark value of one network interface. It follows its link
// by namespace and index; move() and rename() update it.
type Link struct {
	st    *state
	mu    sync.Mutex
	ns    *nsctx.NS
	index int
	name  string
	peer  *Link            // the other end of a veth nsh created
	entry *lifecycle.Entry // deletes the link at the end of the run; nil if nsh did not create it
	qdisc *lifecycle.Entry // restores the default qdisc after netem()
}

var (
	_ starlark.HasAttrs   = (*Link)(nil)
	_ starlark.Comparable = (*Link)(nil)
)

func (l *Link) where() (*nsctx.NS, int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ns, l.index, l.name
}

func (l *Link) netns() *nsctx.NS { ns, _, _ := l.where(); return ns }

func (l *Link) set(ns *nsctx.NS, index int, name string) {
	kept := l.kept()
	if kept {
		l.st.keepLinks(false, l) // what is kept moves with it
	}
	l.mu.Lock()
	l.ns, l.index, l.name = ns, index, name
	l.mu.Unlock()
	if kept {
		l.st.keepLinks(true, l)
	}
}

// String renders the link as "link(nt-a, net:[4026532201])".
func (l *Link) String() string {
	ns, _, name := l.where()
	return fmt.Sprintf("link(%s, %s)", name, l.st.nsLabel(ns))
}

// nsLabel renders a network namespace by its label (net:h1) or else its
// ip-netns name (netns red) if it has one.
func (st *state) nsLabel(ns *nsctx.NS) string {
	if l := st.labelOf(ns); l != "" {
		return ns.Kind.Name + ":" + l
	}
	if n := st.nameOf(ns); n != "" {
		return "netns " + n
	}
	return ns.String()
}

// Type returns "nsh.link".
func (l *Link) Type() string { return "nsh.link" }

// Freeze is a no-op: a Link stands for a kernel object.
func (l *Link) Freeze() {}

// Truth is always true.
func (l *Link) Truth() starlark.Bool { return true }

// Hash hashes namespace and index.
func (l *Link) Hash() (uint32, error) {
	ns, idx, _ := l.where()
	return uint32(ns.Ino)*31 + uint32(idx), nil
}

// CompareSameType compares links by namespace and index.
func (l *Link) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	ns1, i1, _ := l.where()
	ns2, i2, _ := y.(*Link).where()
	eq := nsctx.Same(ns1, ns2) && i1 == i2
	switch op {
	case syntax.EQL:
		return eq, nil
	case syntax.NEQ:
		return !eq, nil
	}
	return false, fmt.Errorf("%s %s %s not supported", l.Type(), op, y.Type())
}

var linkType = doc.Members[*Link]{
	Name: "nsh.link",
	Doc: `A network interface in a network namespace (veth(), bridge(), vxlan(), link()).
Its attributes are read from the kernel each time. Two values of the same
link compare equal.`,
	Attrs: []doc.AttrOf[*Link]{
		{Name: "name", Doc: "interface name", Get: func(l *Link) (starlark.Value, error) {
			_, _, name := l.where()
			return starlark.String(name), nil
		}},
		{Name: "index", Doc: "ifindex in its namespace", Get: func(l *Link) (starlark.Value, error) {
			_, idx, _ := l.where()
			return starlark.MakeInt(idx), nil
		}},
		{Name: "ns", Doc: "its network namespace (nsh.namespace)", Get: func(l *Link) (starlark.Value, error) {
			return &Namespace{ns: l.netns(), st: l.st}, nil
		}},
		{Name: "kind", Doc: `"veth", "bridge", "vxlan", "device", ... (a vxlan link has vni and remote too)`, Get: fetched(func(_ *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			return starlark.String(nl.Type()), nil
		})},
		{Name: "mac", Doc: `hardware address, "aa:bb:cc:dd:ee:ff"`, Get: fetched(func(_ *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			return starlark.String(nl.Attrs().HardwareAddr.String()), nil
		})},
		{Name: "mtu", Doc: "MTU in bytes", Get: fetched(func(_ *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			return starlark.MakeInt(nl.Attrs().MTU), nil
		})},
		{Name: "state", Doc: `operational state: "up", "down", "lowerlayerdown", "unknown", ...`, Get: whenReady(fetched(func(_ *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			return starlark.String(strings.ToLower(nl.Attrs().OperState.String())), nil
		}))},
		{Name: "is_up", Doc: "True if administratively up (IFF_UP)", Get: fetched(func(_ *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			return starlark.Bool(nl.Attrs().Flags&net.FlagUp != 0), nil
		})},
		{Name: "addrs", Doc: `list of its addresses as CIDR strings (IPv6 link-local ones included)`, Get: whenReady(fetched(func(h *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			addrs, err := h.AddrList(nl, netlink.FAMILY_ALL)
			if err != nil {
				return nil, nserr.New("addr show", fmt.Sprintf("dev %q", nl.Attrs().Name), err)
			}
			out := make([]starlark.Value, len(addrs))
			for i, ad := range addrs {
				out[i] = starlark.String(ad.IPNet.String())
			}
			return starlark.NewList(out), nil
		}))},
		{Name: "master", Doc: "name of the bridge it is attached to, or None", Get: fetched(func(h *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			a := nl.Attrs()
			if a.MasterIndex == 0 {
				return starlark.None, nil
			}
			m, err := h.LinkByIndex(a.MasterIndex)
			if err != nil {
				return nil, nserr.New("link show", fmt.Sprintf("master %d of %q", a.MasterIndex, a.Name), err)
			}
			return starlark.String(m.Attrs().Name), nil
		})},
		{Name: "vni", Doc: "the VXLAN network identifier of a vxlan link, else None", Get: fetched(func(_ *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			if v, ok := nl.(*netlink.Vxlan); ok {
				return starlark.MakeInt(v.VxlanId), nil
			}
			return starlark.None, nil
		})},
		{Name: "remote", Doc: `the remote address (or multicast group) of a vxlan link, "192.168.50.2"; else None`, Get: fetched(func(_ *nlhandle.Handle, nl netlink.Link) (starlark.Value, error) {
			if v, ok := nl.(*netlink.Vxlan); ok && v.Group != nil {
				return starlark.String(v.Group.String()), nil
			}
			return starlark.None, nil
		})},
		{Name: "peer", Doc: "the other end of a veth pair nsh created, else None", Get: func(l *Link) (starlark.Value, error) {
			if l.peer == nil {
				return starlark.None, nil
			}
			return l.peer, nil
		}},
	},
	Methods: []doc.MethodOf[*Link]{
		{Name: "up", Sig: "up()", Impl: (*Link).upMethod, Doc: "Brings the link up."},
		{Name: "down", Sig: "down()", Impl: (*Link).downMethod, Doc: "Brings the link down."},
		{Name: "add_addr", Sig: "add_addr(*cidrs)", Impl: (*Link).addAddrMethod, Doc: `Adds addresses.
cidrs are strings such as "10.0.0.1/24" or "fd00::1/64". All are parsed before the first is added; if one is refused, those added
by this call are removed again.`},
		{Name: "del_addr", Sig: "del_addr(*cidrs, missing_ok=False)", Impl: (*Link).delAddrMethod, Doc: `Removes addresses.
An address not on the link is an error unless missing_ok=True:
l.del_addr("10.0.0.1/24", missing_ok=True)`},
		{Name: "move", Sig: "move(ns)", Impl: (*Link).moveMethod, Doc: `Moves the link into another network namespace.
ns is a target as for setns(). The link arrives down and without its
addresses, as with "ip link set dev X netns Y".`},
		{Name: "rename", Sig: "rename(name)", Impl: (*Link).renameMethod, Doc: "Renames the link (it is brought down and back up if it was up)."},
		{Name: "set_mtu", Sig: "set_mtu(mtu)", Impl: (*Link).setMTUMethod, Doc: "Sets the MTU."},
		{Name: "set_mac", Sig: "set_mac(mac)", Impl: (*Link).setMACMethod, Doc: `Sets the hardware address ("02:00:00:00:00:01").`},
		{Name: "set_master", Sig: "set_master(bridge)", Impl: (*Link).setMasterMethod, Doc: `Attaches the link to a bridge, or detaches it with None.
bridge is an nsh.link or the name of a bridge in the link's namespace.`},
		{Name: "delete", Sig: "delete(missing_ok=False)", Impl: (*Link).deleteMethod, Doc: `Deletes the link now (both ends, for a veth).
A link that no longer exists (deleted by hand, its peer deleted, its
namespace gone) is an error unless missing_ok=True: l.delete(missing_ok=True)`},
		{Name: "persist", Sig: "persist()", Impl: (*Link).persistMethod, Doc: `Keeps the link after the run (both ends, for a veth).
What is on it is kept with it: its addresses, the routes that go out of
it (route(dev=) or through a gateway it reaches) and its netem() qdisc.
It still goes away with its namespace if that namespace dies. Links nsh
did not create (found with link()) are never deleted by nsh anyway.
Example:
  a = netns("pa")
  x, _ = veth("pa-eth0", "pa-peer", ns=a, addr="10.9.0.1/24")
  x.persist()
  route("default", via="10.9.0.2", ns=a)   # kept with x (and with a)`},
		{Name: "netem", Sig: "netem(delay=None, jitter=None, loss=None, rate=None)", Impl: (*Link).netemMethod, Doc: netemDoc},
		{Name: "fdb", Sig: "fdb()", Impl: (*Link).fdbMethod, Doc: fdbDoc},
		{Name: "stats", Sig: "stats()", Impl: (*Link).statsMethod, Doc: linkStatsDoc},
		{Name: "qdiscs", Sig: "qdiscs()", Impl: (*Link).qdiscsMethod, Doc: linkQdiscsDoc},
	},
}

// fetched is the getter of an attribute read from the kernel each time.
func fetched(get func(h *nlhandle.Handle, nl netlink.Link) (starlark.Value, error)) func(*Link) (starlark.Value, error) {
	return func(l *Link) (starlark.Value, error) {
		h, nl, err := l.fetch()
		if err != nil {
			return nil, err
		}
		return get(h, nl)
	}
}

// whenReady reads an attribute as it is once the carrier of the links brought
// up has applied (state, addrs).
func whenReady(get func(*Link) (starlark.Value, error)) func(*Link) (starlark.Value, error) {
	return func(l *Link) (starlark.Value, error) {
		if err := l.st.makeReady(); err != nil {
			return nil, err
		}
		return get(l)
	}
}

// AttrNames lists attributes and methods.
func (l *Link) AttrNames() []string { return linkType.AttrNames() }

// Attr returns an attribute or a bound method.
func (l *Link) Attr(name string) (starlark.Value, error) { return linkType.Attr(l, name) }

// fetch reads the link from the kernel by index, checking it is still the
// link this value stands for (same name), so a stale value never acts on
// an unrelated link that reused the index.
func (l *Link) fetch() (*nlhandle.Handle, netlink.Link, error) {
	ns, idx, name := l.where()
	h, err := l.st.handle(ns)
	if err != nil {
		return nil, nil, err
	}
	nl, err := h.LinkByIndex(idx)
	if err != nil || nl.Attrs().Name != name {
		if err != nil && !isNotFound(err) {
			return nil, nil, nserr.New("link show", fmt.Sprintf("%q in %s", name, l.st.nsWhere(ns)), err)
		}
		return nil, nil, nserr.Explain(unix.ENODEV, "link %q no longer exists in %s", name, l.st.nsWhere(ns))
	}
	return h, nl, nil
}

// lookupLink finds a link by name in ns.
func (st *state) lookupLink(ns *nsctx.NS, name string) (*nlhandle.Handle, netlink.Link, error) {
	h, err := st.handle(ns)
	if err != nil {
		return nil, nil, err
	}
	nl, err := h.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil, nil, nserr.Explain(unix.ENODEV, "no link named %q in %s", name, st.nsWhere(ns))
		}
		return nil, nil, nserr.New("link show", fmt.Sprintf("%q in %s", name, st.nsWhere(ns)), err)
	}
	return h, nl, nil
}

func linkBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var nsv starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "ns?", &nsv); err != nil {
		return nil, err
	}
	if err := checkLinkName("", name); err != nil {
		return nil, err
	}
	st, ns, err := netArg(th, nsv)
	if err != nil {
		return nil, err
	}
	_, nl, err := st.lookupLink(ns, name)
	if err != nil {
		return nil, err
	}
	return &Link{st: st, ns: ns, index: nl.Attrs().Index, name: name}, nil
}

// vethArgs are veth()'s arguments, validated before anything is created.
type vethArgs struct {
	name, peer      string
	ns, peerNS      *nsctx.NS
	addrs, peerAddr []*netlink.Addr
	up              bool
	mtu             int
}

func vethBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var a vethArgs
	var nsv, peerNsv, addr, peerAddr, mtu starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
	a.up = true
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &a.name, "peer", &a.peer, "ns?", &nsv, "peer_ns?", &peerNsv,
		"addr?", &addr, "peer_addr?", &peerAddr, "up?", &a.up, "mtu?", &mtu); err != nil {
		return nil, err
	}
	if err := checkLinkName("", a.name); err != nil {
		return nil, err
	}
	if err := checkLinkName("peer", a.peer); err != nil {
		return nil, err
	}
	var err error
	if a.addrs, err = parseAddrs("addr", addr); err != nil {
		return nil, err
	}
	if a.peerAddr, err = parseAddrs("peer_addr", peerAddr); err != nil {
		return nil, err
	}
	if a.mtu, err = parseMTU(mtu); err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	if a.ns, err = netTarget(st, nsv); err != nil {
		return nil, err
	}
	if a.peerNS, err = netTarget(st, peerNsv); err != nil {
		return nil, err
	}
	if a.name == a.peer && nsctx.Same(a.ns, a.peerNS) {
		return nil, fmt.Errorf("both ends are named %q in the same namespace", a.name)
	}
	if nsv == starlark.None {
		st.noteHost(fn.Name(), a.ns)
	} else if peerNsv == starlark.None {
		st.noteHost(fn.Name(), a.peerNS)
	}
	x, y, err := st.makeVeth(th, &a)
	if err != nil {
		return nil, err
	}
	return starlark.Tuple{x, y}, nil
}

// parseMTU accepts None or an int between 68 and 65535.
func parseMTU(v starlark.Value) (int, error) {
	if v == nil || v == starlark.None {
		return 0, nil
	}
	i, err := starlark.AsInt32(v)
	if err != nil || i < 68 || i > 65535 {
		return 0, fmt.Errorf("mtu %s is out of range (68..65535)", v)
	}
	return i, nil
}

// makeVeth creates the pair with the peer born in its namespace, then
// addresses and raises both ends. Any failure after creation deletes the
// pair again.
func (st *state) makeVeth(th *starlark.Thread, a *vethArgs) (*Link, *Link, error) {
	h, err := st.handle(a.ns)
	if err != nil {
		return nil, nil, err
	}
	ph := h
	if !nsctx.Same(a.ns, a.peerNS) {
		if ph, err = st.handle(a.peerNS); err != nil {
			return nil, nil, err
		}
	}
	x := &Link{st: st, ns: a.ns, name: a.name}
	y := &Link{st: st, ns: a.peerNS, name: a.peer}
	x.peer, y.peer = y, x
	var xl, yl netlink.Link
	rec := &change.LinkAdd{Kind: "veth", NS: st.netnsRef(a.ns), Name: a.name, Peer: a.peer,
		PeerNS: st.netnsRef(a.peerNS), MTU: a.mtu, Up: a.up}
	what := fmt.Sprintf("veth %q/%q", a.name, a.peer)
	rec.What = what
	rec.Apply = func() error {
		// A pair that no namespace of the run takes down with it gets
		// an index nsh chooses, which the reaper knows before the pair
		// exists (see chosenIndex).
		idx, err := withChosenIndex(!st.diesWithRun(a.ns) && !st.diesWithRun(a.peerNS), func(idx int) error {
			if idx > 0 {
				rec.Intend(reaper.DelLink(a.ns, idx, a.name))
			}
			v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.name, MTU: a.mtu, Index: idx}, PeerName: a.peer}
			if a.up {
				v.Flags = net.FlagUp
			}
			if !nsctx.Same(a.ns, a.peerNS) {
				v.PeerNamespace = netlink.NsFd(a.peerNS.Fd())
			}
			err := h.LinkAdd(v)
			runtime.KeepAlive(a.peerNS) // its descriptor is in v
			return err
		})
		if err != nil {
			if errors.Is(err, unix.EEXIST) {
				return st.whichExists(h, ph, a)
			}
			return nserr.New("link add", what, err)
		}
		fault.At("link.added")
		if x.index = idx; idx == 0 {
			if x.index, err = madeIndex(h, a.name); err != nil {
				return err
			}
		}
		xl = &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.name, Index: x.index}}
		if yl, err = ph.LinkByName(a.peer); err != nil {
			err = nserr.New("link show", quote(a.peer), err)
			if _, derr := deleteLink(x); derr != nil {
				err = errors.Join(err, derr)
			}
			return err
		}
		y.index = yl.Attrs().Index
		return nil
	}
	rec.Undo = func() (bool, error) { return undoLink(rec, x, y) }
	rec.Reap = func() []reaper.Op { return st.linkOps(x, y) }
	entry, err := st.ex.Do(th, rec)
	if err != nil {
		return nil, nil, err
	}
	x.entry, y.entry = entry, entry
	fail := func(err error) (*Link, *Link, error) {
		entry.Forget()
		if _, uerr := deleteLink(x, y); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, nil, err
	}
	if err := st.addAddrs(th, h, xl, a.ns, a.addrs); err != nil {
		return fail(err)
	}
	if err := st.addAddrs(th, ph, yl, a.peerNS, a.peerAddr); err != nil {
		return fail(err)
	}
	if a.up {
		err := st.setLink(th, a.peerNS, a.peer, &change.LinkSet{Up: true}, func() error {
			return nserr.New("link set up", quote(a.peer), ph.LinkSetUp(yl))
		})
		if err != nil {
			return fail(err)
		}
		// Carrier and IPv6 are made ready before the run's first
		// traffic (see carrier.go).
		st.readyLater(x, y)
	}
	return x, y, nil
}

// setLink changes one setting of a link (rec, without its namespace and
// name) through the run's executor; apply makes the change.
func (st *state) setLink(th *starlark.Thread, ns *nsctx.NS, name string, rec *change.LinkSet, apply func() error) error {
	rec.NS, rec.Name, rec.Apply = st.netnsRef(ns), name, apply
	_, err := st.ex.Do(th, rec)
	return err
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// whichExists explains an EEXIST from creating a veth pair.
func (st *state) whichExists(h, ph *nlhandle.Handle, a *vethArgs) error {
	if _, err := h.LinkByName(a.name); err == nil {
		return st.linkExists(h, a.ns, a.name)
	}
	if _, err := ph.LinkByName(a.peer); err == nil {
		return st.linkExists(ph, a.peerNS, a.peer)
	}
	return nserr.New("link add", fmt.Sprintf("veth %q/%q", a.name, a.peer), unix.EEXIST)
}

// deleteLink deletes a link nsh made (a veth pair, through whichever end
// is still where its value says: deleting one end deletes both), and
// returns the end it was deleted through. Gone already is fine: it was
// deleted, or died with its namespace.
func deleteLink(ends ...*Link) (*Link, error) {
	for _, l := range ends {
		h, nl, err := l.fetch()
		if err != nil {
			continue
		}
		if err := h.LinkDel(nl); err != nil && !isNotFound(err) {
			return l, nserr.New("link del", quote(nl.Attrs().Name), err)
		}
		return l, nil
	}
	return nil, nil
}

// undoLink is the undo at the end of the run of rec, a link nsh made
// (a veth's two ends, or one link). A link whose ends all sit in
// namespaces that die with the run is left to the kernel, which removes
// it with them. rec is updated to name the end the link is deleted
// through, wherever it has moved since, for its undo command.
func undoLink(rec *change.LinkAdd, ends ...*Link) (bool, error) {
	dies := true
	for _, l := range ends {
		dies = dies && l.st.diesWithRun(l.netns())
	}
	if dies {
		return false, nil
	}
	l, err := deleteLink(ends...)
	if l != nil {
		ns, _, name := l.where()
		rec.NS, rec.Name = l.st.netnsRef(ns), name
	}
	return l != nil, err
}

// linkOps are the reaper's ops that delete a link nsh made (a veth's two
// ends, or one link), through an end in a namespace that outlives the
// run, by its index and name (so never a link that took the index after
// it). If every end dies with the run, so does the link: no ops.
func (st *state) linkOps(ends ...*Link) []reaper.Op {
	for _, l := range ends {
		if ns, index, name := l.where(); !st.diesWithRun(ns) {
			return []reaper.Op{reaper.DelLink(ns, index, name)}
		}
	}
	return nil
}

// chooseIndex returns an interface index for a link nsh is about to make
// in namespaces that outlive the run (the host's, a kept netns): the
// reaper is told the index and the name before the link exists (write
// ahead), so if nsh is killed at any instant it deletes that link, and
// never another link that has, or later takes, the name. The index is
// random in [2^24, 2^30), far above the kernel's own, which count up from
// 1; one taken already (EBUSY) is chosen again.
func chooseIndex() int { return 1<<24 + rand.IntN(1<<30-1<<24) }

// withChosenIndex runs make with an index nsh chooses (chooseIndex) when
// chosen is true, else with 0 (the kernel's choice). An index taken
// already (EBUSY) is chosen again, 8 times at most. It returns the index
// of make's last call and its error.
func withChosenIndex(chosen bool, make func(idx int) error) (int, error) {
	idx := 0
	if chosen {
		idx = chooseIndex()
	}
	for try := 0; ; try++ {
		err := make(idx)
		if idx > 0 && errors.Is(err, unix.EBUSY) && try < 8 {
			idx = chooseIndex()
			continue
		}
		return idx, err
	}
}

// ends returns the link and, for a veth nsh created, its peer.
func (l *Link) ends() []*Link {
	if l.peer != nil {
		return []*Link{l, l.peer}
	}
	return []*Link{l}
}

func (l *Link) upMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kw); err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	err = l.st.setLink(th, l.netns(), nl.Attrs().Name, &change.LinkSet{Up: true}, func() error {
		return nserr.New("link set up", quote(nl.Attrs().Name), h.LinkSetUp(nl))
	})
	if err != nil {
		return nil, err
	}
	// Ready before the run's first traffic (see carrier.go); bringing
	// up the second end of a veth gives both ends carrier.
	l.st.readyLater(l)
	if l.peer != nil {
		if _, pl, err := l.peer.fetch(); err == nil && pl.Attrs().Flags&net.FlagUp != 0 {
			l.st.readyLater(l.peer)
		}
	}
	return starlark.None, nil
}

func (l *Link) downMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kw); err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	return starlark.None, l.st.setLink(th, l.netns(), nl.Attrs().Name, &change.LinkSet{Down: true}, func() error {
		return nserr.New("link set down", quote(nl.Attrs().Name), h.LinkSetDown(nl))
	})
}

func (l *Link) moveMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var target starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kw, "ns", &target); err != nil {
		return nil, err
	}
	dst, err := netTarget(l.st, target)
	if err != nil {
		return nil, err
	}
	_, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	name := nl.Attrs().Name
	src := l.netns()
	if nsctx.Same(src, dst) {
		return starlark.None, nil
	}
	dh, err := l.st.handle(dst)
	if err != nil {
		return nil, err
	}
	to := l.st.netnsRef(dst)
	if _, err := dh.LinkByName(name); err == nil {
		return nil, change.Refused(&change.LinkSet{NS: l.st.netnsRef(src), Name: name, MoveTo: &to}, l.st.linkExists(dh, dst, name))
	}
	// Into a namespace that outlives the run, the link gets an index nsh
	// chooses, which the reaper knows before the move (see chooseIndex).
	var idx int
	err = l.st.setLink(th, src, name, &change.LinkSet{MoveTo: &to}, func() error {
		var err error
		idx, err = withChosenIndex(!l.st.diesWithRun(dst), func(idx int) error {
			return l.around(dst, idx, name, func() error {
				return moveLink(l.st, src, nl.Attrs().Index, dst, idx)
			})
		})
		return nserr.New("link set netns", fmt.Sprintf("%q to %s", name, l.st.nsWhere(dst)), err)
	})
	if err != nil {
		return nil, err
	}
	moved, err := dh.LinkByName(name)
	if err != nil {
		return nil, nserr.New("link show", fmt.Sprintf("%q in %s", name, l.st.nsWhere(dst)), err)
	}
	if i := moved.Attrs().Index; i != idx {
		l.set(dst, i, name) // the kernel did not take the index nsh chose
		l.rewatch()
	}
	return starlark.None, nil
}

// moveLink moves the link with index index from network namespace src to
// dst, giving it index newIndex there (IFLA_NEW_IFINDEX, Linux 6.6+; 0:
// the kernel's choice), as `ip link set dev X netns Y` does.
func moveLink(st *state, src *nsctx.NS, index int, dst *nsctx.NS, newIndex int) error {
	return netlinkOf(st).In(src, func() error {
		req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(index)
		req.AddData(msg)
		req.AddData(nl.NewRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(dst.Fd()))))
		if newIndex > 0 {
			req.AddData(nl.NewRtAttr(unix.IFLA_NEW_IFINDEX, nl.Uint32Attr(uint32(newIndex))))
		}
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		runtime.KeepAlive(dst)
		if err == nil {
			fault.At("link.moved")
		}
		return err
	})
}

// around makes change, which moves or renames l (to namespace ns, index
// index, name name), so that the reaper can undo the run's link at every
// instant: before it, the reaper gets the ops for where the link is and
// for where it will be; after it, only the ones for where it is.
func (l *Link) around(ns *nsctx.NS, index int, name string, change func() error) error {
	if l.entry == nil || l.entry.Persistent() {
		err := change()
		if err == nil {
			l.set(ns, index, name)
		}
		return err
	}
	before := l.st.linkOps(l.ends()...)
	oldNS, oldIndex, oldName := l.where()
	l.set(ns, index, name)
	after := l.st.linkOps(l.ends()...)
	l.set(oldNS, oldIndex, oldName)
	l.st.ex.Watch(l.entry, append(before, after...)...)
	err := change()
	if err == nil {
		l.set(ns, index, name)
	}
	l.rewatch()
	return err
}

// rewatch gives the reaper the ops for where the run's link is now.
func (l *Link) rewatch() {
	if l.entry != nil && !l.entry.Persistent() {
		l.st.ex.Watch(l.entry, l.st.linkOps(l.ends()...)...)
	}
}

func (l *Link) renameMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackArgs(fn.Name(), args, kw, "name", &name); err != nil {
		return nil, err
	}
	if err := checkLinkName("new", name); err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	old := nl.Attrs().Name
	if _, err := h.LinkByName(name); err == nil {
		return nil, change.Refused(&change.LinkSet{NS: l.st.netnsRef(l.netns()), Name: old, NewName: name}, l.st.linkExists(h, l.netns(), name))
	}
	wasUp := nl.Attrs().Flags&net.FlagUp != 0
	ns := l.netns()
	if wasUp {
		err := l.st.setLink(th, ns, old, &change.LinkSet{Down: true}, func() error {
			return nserr.New("link set down", quote(old), h.LinkSetDown(nl))
		})
		if err != nil {
			return nil, err
		}
	}
	_, idx, _ := l.where()
	err = l.st.setLink(th, ns, old, &change.LinkSet{NewName: name}, func() error {
		return nserr.New("link set name", fmt.Sprintf("%q to %q", old, name), l.around(ns, idx, name, func() error {
			err := h.LinkSetName(nl, name)
			if err == nil {
				fault.At("link.renamed")
			}
			return err
		}))
	})
	if err != nil {
		if wasUp {
			if uerr := h.LinkSetUp(nl); uerr != nil {
				err = errors.Join(err, nserr.New("link set up", quote(old), uerr))
			}
		}
		return nil, err
	}
	if wasUp {
		err := l.st.setLink(th, ns, name, &change.LinkSet{Up: true}, func() error {
			return nserr.New("link set up", quote(name), h.LinkSetUp(nl))
		})
		if err != nil {
			return nil, err
		}
	}
	return starlark.None, nil
}

func (l *Link) setMTUMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var v starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kw, "mtu", &v); err != nil {
		return nil, err
	}
	mtu, err := parseMTU(v)
	if err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	return starlark.None, l.st.setLink(th, l.netns(), nl.Attrs().Name, &change.LinkSet{MTU: mtu}, func() error {
		return nserr.New("link set mtu", fmt.Sprintf("%d on %q", mtu, nl.Attrs().Name), h.LinkSetMTU(nl, mtu))
	})
}

func (l *Link) setMACMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var s string
	if err := starlark.UnpackArgs(fn.Name(), args, kw, "mac", &s); err != nil {
		return nil, err
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("malformed MAC address %q (want e.g. 02:00:00:00:00:01)", s)
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	return starlark.None, l.st.setLink(th, l.netns(), nl.Attrs().Name, &change.LinkSet{MAC: mac}, func() error {
		return nserr.New("link set address", fmt.Sprintf("%s on %q", mac, nl.Attrs().Name), h.LinkSetHardwareAddr(nl, mac))
	})
}

func (l *Link) setMasterMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var br starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kw, "bridge", &br); err != nil {
		return nil, err
	}
	ns := l.netns()
	var master netlink.Link
	switch b := br.(type) {
	case starlark.NoneType:
	case *Link:
		if !nsctx.Same(b.netns(), ns) {
			return nil, fmt.Errorf("bridge %s is not in the namespace of %s", b, l)
		}
		_, m, err := b.fetch()
		if err != nil {
			return nil, err
		}
		master = m
	case starlark.String:
		if err := checkLinkName("bridge", string(b)); err != nil {
			return nil, err
		}
		_, m, err := l.st.lookupLink(ns, string(b))
		if err != nil {
			return nil, err
		}
		master = m
	default:
		return nil, fmt.Errorf("bridge must be an nsh.link, a name or None, not %s", br.Type())
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	if master == nil {
		return starlark.None, l.st.setLink(th, ns, nl.Attrs().Name, &change.LinkSet{NoMaster: true}, func() error {
			return nserr.New("link set nomaster", quote(nl.Attrs().Name), h.LinkSetNoMaster(nl))
		})
	}
	if master.Type() != "bridge" {
		return nil, fmt.Errorf("%q is a %s link, not a bridge", master.Attrs().Name, master.Type())
	}
	return starlark.None, l.st.setLink(th, ns, nl.Attrs().Name, &change.LinkSet{Master: master.Attrs().Name}, func() error {
		return nserr.New("link set master", fmt.Sprintf("%q to %q", nl.Attrs().Name, master.Attrs().Name),
			h.LinkSetMasterByIndex(nl, master.Attrs().Index))
	})
}

func (l *Link) deleteMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var missingOK bool
	if err := starlark.UnpackArgs(fn.Name(), args, kw, "missing_ok?", &missingOK); err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		if missingOK && errors.Is(err, unix.ENODEV) {
			return starlark.None, nil
		}
		return nil, err
	}
	rec := &change.LinkDel{NS: l.st.netnsRef(l.netns()), Name: nl.Attrs().Name}
	rec.Apply = func() error { return nserr.New("link del", quote(nl.Attrs().Name), h.LinkDel(nl)) }
	if _, err := l.st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	if l.entry != nil {
		l.entry.Forget()
		l.st.keepLinks(false, l.ends()...)
	}
	if l.qdisc != nil {
		l.qdisc.Forget()
	}
	return starlark.None, nil
}

// kept reports whether l is a link this run made and keeps after the run
// (persist(), a lab).
func (l *Link) kept() bool { return l.entry != nil && l.entry.Persistent() }

func (l *Link) persistMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kw); err != nil {
		return nil, err
	}
	if l.entry != nil && l.st.lab == nil { // a lab keeps it until nsh down anyway
		l.entry.Persist()
		l.st.keepLinks(true, l.ends()...)
	}
	return starlark.None, nil
}

// madeIndex returns the ifindex of the link just made as name in h's
// namespace, for a link whose index the kernel chose. When it cannot be
// read, the link is deleted by name, so nothing is left half-made.
func madeIndex(h *nlhandle.Handle, name string) (int, error) {
	nl, err := h.LinkByName(name)
	if err == nil {
		return nl.Attrs().Index, nil
	}
	err = nserr.New("link show", quote(name), err)
	if derr := h.LinkDel(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name}}); derr != nil {
		err = errors.Join(err, nserr.New("link del", quote(name), derr))
	}
	return 0, err
}
