package builtins

import (
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
)

// A link that is brought up gets its carrier from the kernel's link-watch
// work, which for a new veth pair runs up to a second later; until then
// IPv6 does not start on it and its first packets are lost. nsh makes the
// kernel apply the carrier change at once (see nlhandle.SyncLinks) and
// waits for IPv6 on the link to be usable (settle), but not when the link
// comes up: before the first thing of the run that sends traffic or looks
// at link state (ping(), transfer(), starting a process, a link's state and
// addrs). A recipe that builds a topology and leaves it pays nothing for
// it, as with ip(8); one that uses it finds it ready.

// readyLater records links that were brought up, to be made ready by
// makeReady.
func (st *state) readyLater(links ...*Link) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.unready == nil {
		st.unready = map[*Link]bool{}
	}
	for _, l := range links {
		if !st.unready[l] {
			st.unready[l] = true
			st.unreadyList = append(st.unreadyList, l)
		}
	}
}

// makeReady makes every link readyLater recorded ready: the kernel applies
// their carrier now, and their IPv6 addresses can be reached. Links that
// are gone or down meanwhile are skipped.
func (st *state) makeReady() error {
	st.mu.Lock()
	links := st.unreadyList
	st.unready, st.unreadyList = nil, nil
	st.mu.Unlock()
	if len(links) == 0 {
		return nil
	}
	cache := netlinkOf(st)
	// One ioctl socket per namespace.
	type nsLinks struct {
		ns    *nsctx.NS
		names []string
	}
	var order []*nsLinks
	byNS := map[[2]uint64]*nsLinks{}
	for _, l := range links {
		ns, _, name := l.where()
		k := [2]uint64{ns.Dev, ns.Ino}
		g := byNS[k]
		if g == nil {
			g = &nsLinks{ns: ns}
			byNS[k] = g
			order = append(order, g)
		}
		g.names = append(g.names, name)
	}
	for _, g := range order {
		if err := cache.SyncLinks(g.ns, g.names...); err != nil {
			return err
		}
	}
	for _, l := range links {
		h, nl, err := l.fetch()
		if err != nil || nl.Attrs().Flags&net.FlagUp == 0 {
			continue // gone, or down again
		}
		addrs, err := h.AddrList(nl, netlink.FAMILY_V6)
		if err != nil {
			return nserr.New("addr show", quote(nl.Attrs().Name), err)
		}
		v6 := make([]*netlink.Addr, len(addrs))
		for i := range addrs {
			v6[i] = &addrs[i]
		}
		if err := st.settle(l.netns(), nl, v6); err != nil {
			return err
		}
	}
	return nil
}

// settle waits, briefly, until a link that is up (with carrier) has joined the
// solicited-node multicast groups of its IPv6 addresses among addrs. The
// kernel joins them from a work queue after the address is added (or the
// link becomes ready), even without duplicate address detection; a
// neighbour solicitation arriving before is dropped and only retried a
// second later, so a ping sent at once would be lost. It usually takes well
// under a millisecond; after maxSettle nsh goes on regardless.
func (st *state) settle(ns *nsctx.NS, nl netlink.Link, addrs []*netlink.Addr) error {
	var groups []net.IP
	for _, a := range addrs {
		if a.IP.To4() == nil {
			groups = append(groups, solicitedNode(a.IP))
		}
	}
	if len(groups) == 0 {
		return nil
	}
	h, err := st.handle(ns)
	if err != nil {
		return err
	}
	// Only a link with carrier gets there; a veth whose peer is down waits
	// for the peer's up().
	cur, err := h.LinkByIndex(nl.Attrs().Index)
	if err != nil {
		return nserr.New("link show", quote(nl.Attrs().Name), err)
	}
	if cur.Attrs().OperState != netlink.OperUp || cur.Attrs().Flags&net.FlagLoopback != 0 {
		return nil
	}
	igmp, err := netlinkOf(st).OpenIGMP6(ns)
	if err != nil || igmp == nil {
		return err
	}
	defer igmp.Close()
	deadline := time.Now().Add(maxSettle)
	for {
		ok, err := igmp.Joined(nl.Attrs().Name, groups)
		if err != nil || ok || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
}

const maxSettle = 2 * time.Second

// solicitedNode returns the solicited-node multicast address of an IPv6
// address: ff02::1:ff00:0/104 plus its last 24 bits (RFC 4291).
func solicitedNode(ip net.IP) net.IP {
	ip = ip.To16()
	g := net.ParseIP("ff02::1:ff00:0")
	copy(g[13:], ip[13:])
	return g
}
