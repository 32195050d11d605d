package labs

import (
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strconv"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/netnsdir"
	"nsh.dev/nsh/internal/topo"
)

// Noted returns the kind a lab's journal notes r under (its type name,
// "LinkAdd") and the network namespaces it names, or ok false for a
// record nsh status does not compare with the kernel (processes,
// mounts, sysctls, names of namespaces: their own checks cover them).
func Noted(r change.Record) (kind string, nss []change.Netns, ok bool) {
	switch r := r.(type) {
	case *change.LinkAdd:
		nss = []change.Netns{r.NS, r.PeerNS}
		if r.VXLAN != nil {
			nss = append(nss, r.VXLAN.Under)
		}
	case *change.LinkDel:
		nss = []change.Netns{r.NS}
	case *change.LinkSet:
		nss = []change.Netns{r.NS}
		if r.MoveTo != nil {
			nss = append(nss, *r.MoveTo)
		}
	case *change.Addr:
		nss = []change.Netns{r.NS}
	case *change.Route:
		nss = []change.Netns{r.NS}
	case *change.Qdisc:
		nss = []change.Netns{r.NS}
	default:
		return "", nil, false
	}
	return reflect.TypeOf(r).Elem().Name(), nss, true
}

// Expected is what a lab's notes say its links, addresses and routes
// are, by network namespace (a path; "" is the reader's own, the host's).
type Expected struct {
	links  []*expLink // in the order made
	routes map[string][]expRoute
}

type expLink struct {
	ns, name, kind string // kind "": a link the lab did not make (only its addresses are known)
	peer           *expLink
	up             *bool
	mtu            int
	master         *string
	rate           *uint64 // a tbf's rate, bits/s; 0: no tbf
	addrs          []string
	gone           bool
}

type expRoute struct {
	dst, via, dev string
	v6            bool
}

func (r expRoute) String() string {
	s := "route " + r.dst
	if r.via != "" {
		s += " via " + r.via
	}
	if r.dev != "" {
		s += " dev " + r.dev
	}
	return s
}

// Expect replays a lab's notes, oldest first, into what the lab should
// be. A note it cannot read (a newer nsh's) is skipped.
func Expect(notes []Note) *Expected {
	e := &Expected{routes: map[string][]expRoute{}}
	for _, n := range notes {
		e.apply(n)
	}
	return e
}

// path is where a namespace of a note is found: a named one in
// /run/netns, an unnamed one where the lab keeps it (n.NS), the host's "".
func (n Note) path(ns change.Netns) (string, bool) {
	switch {
	case ns.Name != "":
		return netnsdir.Dir + "/" + ns.Name, true
	case ns.Fd > 0:
		p, ok := n.NS[strconv.Itoa(ns.Fd)]
		return p, ok
	}
	return "", true
}

func (e *Expected) link(ns, name string) *expLink {
	for i := len(e.links) - 1; i >= 0; i-- {
		if l := e.links[i]; !l.gone && l.ns == ns && l.name == name {
			return l
		}
	}
	return nil
}

// linkOrForeign is the link, or a new entry for one the lab did not make.
func (e *Expected) linkOrForeign(ns, name string) *expLink {
	if l := e.link(ns, name); l != nil {
		return l
	}
	l := &expLink{ns: ns, name: name}
	e.links = append(e.links, l)
	return l
}

func (e *Expected) dropRoutes(ns, dev string) {
	rs := e.routes[ns][:0]
	for _, r := range e.routes[ns] {
		if r.dev != dev {
			rs = append(rs, r)
		}
	}
	e.routes[ns] = rs
}

func (e *Expected) apply(n Note) {
	var r change.Record
	switch n.Kind {
	case "LinkAdd":
		r = &change.LinkAdd{}
	case "LinkDel":
		r = &change.LinkDel{}
	case "LinkSet":
		r = &change.LinkSet{}
	case "Addr":
		r = &change.Addr{}
	case "Route":
		r = &change.Route{}
	case "Qdisc":
		r = &change.Qdisc{}
	default:
		return
	}
	if json.Unmarshal(n.Rec, r) != nil {
		return
	}
	yes, no := true, false
	switch r := r.(type) {
	case *change.LinkAdd:
		ns, ok := n.path(r.NS)
		if !ok {
			return
		}
		l := &expLink{ns: ns, name: r.Name, kind: r.Kind, up: &no, mtu: r.MTU}
		if r.Up {
			l.up = &yes
		}
		e.links = append(e.links, l)
		if r.Kind == "veth" {
			pns, ok := n.path(r.PeerNS)
			if !ok {
				return
			}
			p := &expLink{ns: pns, name: r.Peer, kind: "veth", up: &no, mtu: r.MTU, peer: l}
			l.peer = p
			e.links = append(e.links, p)
		}
	case *change.LinkDel:
		ns, _ := n.path(r.NS)
		if l := e.link(ns, r.Name); l != nil {
			for _, x := range []*expLink{l, l.peer} {
				if x != nil {
					x.gone = true
					e.dropRoutes(x.ns, x.name)
				}
			}
		}
	case *change.LinkSet:
		ns, _ := n.path(r.NS)
		l := e.link(ns, r.Name)
		if l == nil {
			return // a link the lab did not make: its settings are not compared
		}
		switch {
		case r.Up:
			l.up = &yes
		case r.Down:
			l.up = &no
		case r.MTU > 0:
			l.mtu = r.MTU
		case r.Master != "":
			m := r.Master
			l.master = &m
		case r.NoMaster:
			m := ""
			l.master = &m
		case r.MoveTo != nil:
			to, ok := n.path(*r.MoveTo)
			if !ok {
				l.gone = true
				return
			}
			// The kernel takes a link's addresses, routes and master
			// away, and brings it down, when it moves.
			e.dropRoutes(l.ns, l.name)
			l.ns, l.addrs, l.up, l.master = to, nil, &no, nil
		case r.NewName != "":
			e.dropRoutes(l.ns, l.name) // they stay, but name the link by its new name
			l.name = r.NewName
		}
	case *change.Addr:
		ns, _ := n.path(r.NS)
		cidr := canonCIDR(r.CIDR)
		if ip, _, err := net.ParseCIDR(cidr); err == nil && ip.To4() == nil && ip.IsLinkLocalUnicast() {
			return // topo.Read leaves IPv6 link-local addresses out
		}
		l := e.linkOrForeign(ns, r.Dev)
		if r.Del {
			l.addrs = remove(l.addrs, cidr)
		} else if !contains(l.addrs, cidr) {
			l.addrs = append(l.addrs, cidr)
		}
	case *change.Route:
		ns, _ := n.path(r.NS)
		rt := expRoute{dst: canonDst(r.Dst), via: canonIP(r.Via), dev: r.Dev, v6: r.V6}
		rs := e.routes[ns][:0]
		for _, x := range e.routes[ns] {
			if x.dst != rt.dst || x.v6 != rt.v6 {
				rs = append(rs, x)
			}
		}
		if !r.Del {
			rs = append(rs, rt)
		}
		e.routes[ns] = rs
	case *change.Qdisc:
		ns, _ := n.path(r.NS)
		l := e.link(ns, r.Dev)
		if l == nil {
			return
		}
		var rate uint64
		switch {
		case r.Verb == "del":
		case r.Kind == "tbf":
			rate = r.Rate
		default:
			l.rate = nil // a netem: topo.Read does not read it
			return
		}
		l.rate = &rate
	}
}

// Namespaces returns the namespaces the notes name, by path ("": the
// reader's own), sorted.
func (e *Expected) Namespaces() []string {
	seen := map[string]bool{}
	for _, l := range e.links {
		if !l.gone {
			seen[l.ns] = true
		}
	}
	for ns, rs := range e.routes {
		if len(rs) > 0 {
			seen[ns] = true
		}
	}
	var out []string
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// Diff compares what the lab should be with the live namespaces (by
// path; a namespace missing from live is not compared: its absence is
// reported apart) and says what is missing or changed, one line each.
// label names a namespace by its path in the lines. noRate: live was read
// without qdiscs (topo.Options.Lean), so rates are not compared.
func (e *Expected) Diff(live map[string]*topo.Netns, label func(ns string) string, noRate bool) []string {
	var out []string
	for _, l := range e.links {
		n := live[l.ns]
		if l.gone || n == nil {
			continue
		}
		var got *topo.Link
		for _, x := range n.Links {
			if x.Name == l.name {
				got = x
			}
		}
		where := fmt.Sprintf("link %s in %s", l.name, label(l.ns))
		if got == nil {
			if l.kind != "" {
				out = append(out, fmt.Sprintf("%s (%s) is missing", where, l.kind))
			} else if len(l.addrs) > 0 {
				out = append(out, fmt.Sprintf("%s, which had addresses %v, is missing", where, l.addrs))
			}
			continue
		}
		if l.kind != "" && got.Kind != l.kind {
			out = append(out, fmt.Sprintf("%s is a %s, not the %s the lab made", where, got.Kind, l.kind))
			continue
		}
		if l.up != nil && got.Up != *l.up {
			out = append(out, fmt.Sprintf("%s is %s, was made %s", where, upDown(got.Up), upDown(*l.up)))
		}
		if l.mtu > 0 && got.MTU != l.mtu {
			out = append(out, fmt.Sprintf("%s has mtu %d, was set to %d", where, got.MTU, l.mtu))
		}
		if l.master != nil && got.Master != *l.master {
			want := "no bridge"
			if *l.master != "" {
				want = "bridge " + *l.master
			}
			have := "no bridge"
			if got.Master != "" {
				have = "bridge " + got.Master
			}
			out = append(out, fmt.Sprintf("%s is in %s, was put in %s", where, have, want))
		}
		if l.rate != nil && !noRate && got.Rate != *l.rate {
			out = append(out, fmt.Sprintf("%s shapes to %d bit/s, was set to %d", where, got.Rate, *l.rate))
		}
		for _, a := range l.addrs {
			found := false
			for _, g := range got.Addrs {
				found = found || canonCIDR(g) == a
			}
			if !found {
				out = append(out, fmt.Sprintf("address %s of %s is missing", a, where))
			}
		}
	}
	var nss []string
	for ns := range e.routes {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		n := live[ns]
		if n == nil {
			continue
		}
		for _, r := range e.routes[ns] {
			found := false
			for _, g := range n.Routes {
				if g.V6 == r.v6 && canonDst(g.Dst) == r.dst && canonIP(g.Via) == r.via && (r.dev == "" || g.Dev == r.dev) {
					found = true
				}
			}
			if !found {
				why := ""
				if r.via != "" && !onLink(n, r.via) {
					why = fmt.Sprintf(" (no link there has an address on %s's subnet)", r.via)
				}
				out = append(out, fmt.Sprintf("%s in %s is missing%s", r, label(ns), why))
			}
		}
	}
	return out
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func canonCIDR(s string) string {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return s
	}
	ones, _ := n.Mask.Size()
	return fmt.Sprintf("%s/%d", ip, ones)
}

func canonDst(s string) string {
	if s == "default" {
		return s
	}
	if ip := net.ParseIP(s); ip != nil {
		if ip.To4() != nil {
			return ip.String() + "/32"
		}
		return ip.String() + "/128"
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return s
	}
	if ones, _ := n.Mask.Size(); ones == 0 {
		return "default"
	}
	return n.String()
}

func canonIP(s string) string {
	if ip := net.ParseIP(s); ip != nil {
		return ip.String()
	}
	return s
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func remove(ss []string, s string) []string {
	out := ss[:0]
	for _, x := range ss {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// onLink reports whether an address of a link of n has gw in its subnet
// (else the kernel has dropped the routes through gw).
func onLink(n *topo.Netns, gw string) bool {
	ip := net.ParseIP(gw)
	for _, l := range n.Links {
		for _, a := range l.Addrs {
			if _, sub, err := net.ParseCIDR(a); err == nil && ip != nil && sub.Contains(ip) {
				return true
			}
		}
	}
	return false
}
