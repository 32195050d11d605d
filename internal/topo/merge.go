package topo

import (
	"fmt"
	"net"
	"sort"
)

// Part is what one host of a lab of several hosts read of its nodes:
// the host's name, its underlay address, and its topology.
type Part struct {
	Host     string
	Addr     string
	Topology *Topology
}

// tunnel is a VXLAN link from a namespace of one host to a namespace of
// another (or to a host outside the parts: to is then "").
type tunnel struct {
	from, to         string // namespace names in the merged topology
	fromName, toName string // the vxlan links' names
	vni              int
	remote           string // the remote address, when to is ""
}

// Merge joins the topologies of several hosts into one whose namespaces
// are named HOST/NAME (veth peers renamed alike), and finds the VXLAN
// links between them: a vxlan link on host A whose remote is host B's
// underlay address is joined to the vxlan link of the same VNI on B
// (one whose remote is A's address if there are several), and drawn as
// an edge labelled with both names and the VNI. A vxlan whose remote is
// no host's is drawn to a node of its own.
func Merge(parts []Part) *Topology {
	out := &Topology{}
	type vx struct {
		host, ns string
		l        *Link
	}
	var vxs []vx
	byAddr := map[string]string{}
	for _, p := range parts {
		if ip := net.ParseIP(p.Addr); ip != nil {
			byAddr[ip.String()] = p.Host
		}
		if p.Topology == nil {
			continue
		}
		for _, n := range p.Topology.Netns {
			c := *n
			c.Name = p.Host + "/" + n.Name
			c.Links = nil
			for _, l := range n.Links {
				lc := *l
				if l.Peer != nil && (l.Peer.Where == InRead || l.Peer.Where == InNamed) {
					pc := *l.Peer
					pc.Netns = p.Host + "/" + pc.Netns
					lc.Peer = &pc
				}
				c.Links = append(c.Links, &lc)
				if lc.VXLAN != nil {
					vxs = append(vxs, vx{p.Host, c.Name, &lc})
				}
			}
			out.Netns = append(out.Netns, &c)
		}
	}
	sort.Slice(out.Netns, func(i, j int) bool { return out.Netns[i].Name < out.Netns[j].Name })
	addrOf := map[string]string{}
	for a, h := range byAddr {
		addrOf[h] = a
	}
	drawn := map[[2]string]bool{}
	for _, a := range vxs {
		ip := net.ParseIP(a.l.VXLAN.Remote)
		if ip == nil {
			continue
		}
		key := func(v vx) string { return v.ns + "\x00" + v.l.Name }
		peerHost, ok := byAddr[ip.String()]
		if !ok || peerHost == a.host {
			out.tunnels = append(out.tunnels, tunnel{from: a.ns, fromName: a.l.Name, vni: a.l.VXLAN.VNI, remote: ip.String()})
			continue
		}
		var match *vx
		for i := range vxs {
			b := &vxs[i]
			if b.host != peerHost || b.l.VXLAN.VNI != a.l.VXLAN.VNI {
				continue
			}
			if match == nil || net.ParseIP(b.l.VXLAN.Remote).Equal(net.ParseIP(addrOf[a.host])) {
				match = b
			}
		}
		if match == nil {
			out.tunnels = append(out.tunnels, tunnel{from: a.ns, fromName: a.l.Name, vni: a.l.VXLAN.VNI,
				remote: fmt.Sprintf("%s (host %s)", ip, peerHost)})
			continue
		}
		k := [2]string{key(a), key(*match)}
		if k[0] > k[1] {
			k[0], k[1] = k[1], k[0]
		}
		if drawn[k] {
			continue
		}
		drawn[k] = true
		out.tunnels = append(out.tunnels, tunnel{from: a.ns, to: match.ns, fromName: a.l.Name, toName: match.l.Name, vni: a.l.VXLAN.VNI})
	}
	return out
}
