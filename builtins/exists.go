package builtins

import (
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
)

// The EEXIST of a kernel change, explained: what holds the name or the
// route already, and the usual fix. Each keeps errno EEXIST.

// linkExists explains why a link named name cannot be made (or moved, or
// renamed to name) in ns: the link there, its kind (a veth with its peer),
// and the fix.
func (st *state) linkExists(h *nlhandle.Handle, ns *nsctx.NS, name string) error {
	where := st.nsWhere(ns)
	nl, err := h.LinkByName(name)
	if err != nil {
		return nserr.Explain(unix.EEXIST, "a link named %q already exists in %s", name, where)
	}
	what := nl.Type()
	if a := nl.Attrs(); what == "veth" && a.ParentIndex > 0 {
		// A veth's parent is its peer; NetNsID is set when the peer is
		// in another namespace.
		if a.NetNsID >= 0 {
			what = "veth, its peer in another namespace"
		} else if p, err := h.LinkByIndex(a.ParentIndex); err == nil {
			what = fmt.Sprintf("veth, peer %q", p.Attrs().Name)
		}
	}
	if nl.Attrs().MasterIndex > 0 {
		if m, err := h.LinkByIndex(nl.Attrs().MasterIndex); err == nil {
			what += fmt.Sprintf(", on bridge %q", m.Attrs().Name)
		}
	}
	fix := "delete() on its nsh.link"
	if ref := st.netnsRef(ns); ref.Name != "" || ref.Host() {
		fix = ref.IP("link del dev " + name)
	}
	return nserr.Explain(unix.EEXIST, "a link named %q (%s) already exists in %s; choose another name, or delete it first: %s",
		name, what, where, fix)
}

// routeExists explains the EEXIST of adding r to ns's main table: the
// routes to the same destination already there, and the fix.
func (st *state) routeExists(h *nlhandle.Handle, ns *nsctx.NS, r *Route) error {
	where := st.nsWhere(ns)
	family := netlink.FAMILY_V4
	if r.r.Family == netlink.FAMILY_V6 {
		family = netlink.FAMILY_V6
	}
	var there []string
	rs, err := h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err == nil {
		for _, x := range rs {
			if sameDst(x.Dst, r.r.Dst) {
				s := (&Route{r: x, dev: linkName(h, x.LinkIndex)}).String()
				if x.Priority > 0 {
					s += fmt.Sprintf(" metric %d", x.Priority)
				}
				there = append(there, s)
			}
		}
	}
	if len(there) == 0 {
		return nserr.Explain(unix.EEXIST, "a route to %s already exists in %s", r.dst(), where)
	}
	return nserr.Explain(unix.EEXIST, "a route to %s already exists in %s: %s; delete it first (delete() on its nsh.route, as routes() lists it), or route a more specific destination",
		r.dst(), where, strings.Join(there, "; "))
}

// sameDst compares two destinations, nil and 0.0.0.0/0 both standing
// for default.
func sameDst(a, b *net.IPNet) bool {
	isDefault := func(n *net.IPNet) bool {
		if n == nil {
			return true
		}
		ones, _ := n.Mask.Size()
		return ones == 0
	}
	if isDefault(a) || isDefault(b) {
		return isDefault(a) && isDefault(b)
	}
	return a.String() == b.String()
}

// linkName names the link of index i, "" when there is none.
func linkName(h *nlhandle.Handle, i int) string {
	if i == 0 {
		return ""
	}
	if l, err := h.LinkByIndex(i); err == nil {
		return l.Attrs().Name
	}
	return fmt.Sprint("if", i)
}

// addrExists explains the EEXIST of adding a to the link nl of ns.
func (st *state) addrExists(ns *nsctx.NS, nl netlink.Link, a *netlink.Addr) error {
	return nserr.Explain(unix.EEXIST, "address %s is already on %q in %s; nothing to add (del_addr() removes it)", a.IPNet, nl.Attrs().Name, st.nsWhere(ns))
}
