package builtins

import (
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"nsh.dev/nsh/internal/nlhandle"
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
		st.unready[l] = true
	}
}

// makeReady makes every link readyLater recorded ready: the kernel applies
// their carrier now, and their IPv6 addresses can be reached. Links that
// are gone or down meanwhile are skipped.
func (st *state) makeReady() error {
	st.mu.Lock()
	links := st.unready
	st.unready = nil
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
	byNS := map[[2]uint64]*nsLinks{}
	for l := range links {
		ns, _, name := l.where()
		k := [2]uint64{ns.Dev, ns.Ino}
		if byNS[k] == nil {
			byNS[k] = &nsLinks{ns: ns}
		}
		byNS[k].names = append(byNS[k].names, name)
	}
	for _, g := range byNS {
		if err := cache.SyncLinks(g.ns, g.names...); err != nil {
			return err
		}
	}
	for l := range links {
		// Read after the sync: the link's state with its new carrier.
		h, nl, err := l.fetch()
		if err != nil || nl.Attrs().Flags&net.FlagUp == 0 {
			continue // gone, or down again
		}
		if err := st.settle(l.netns(), h, nl); err != nil {
			return err
		}
	}
	return nil
}

// settle waits, briefly, until a link that is up with carrier (nl, as just
// read from the kernel through h) has joined the solicited-node multicast
// groups of its IPv6 addresses. The kernel joins them from a work queue
// after the address is added (or the link becomes ready), even without
// duplicate address detection; a neighbour solicitation arriving before is
// dropped and only retried a second later, so a ping sent at once would be
// lost. It usually takes well under a millisecond; after maxSettle nsh goes
// on regardless.
func (st *state) settle(ns *nsctx.NS, h *nlhandle.Handle, nl netlink.Link) error {
	// Only a link with carrier gets there; a veth whose peer is down waits
	// for the peer's up().
	if nl.Attrs().OperState != netlink.OperUp || nl.Attrs().Flags&net.FlagLoopback != 0 {
		return nil
	}
	addrs, err := h.AddrList(nl, netlink.FAMILY_V6)
	if err != nil {
		return nserr.New("addr show", quote(nl.Attrs().Name), err)
	}
	var groups []net.IP
	for _, a := range addrs {
		groups = append(groups, solicitedNode(a.IP))
	}
	if len(groups) == 0 {
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
