// Package topo reads the live network topology of named network namespaces
// (whoever made them: nsh, "ip netns add", another tool) and renders it as a
// Starlark recipe that rebuilds it ("nsh export"), or as a Graphviz DOT or
// Mermaid graph ("nsh graph").
//
// What is read, per namespace: its links (kind, MTU, administrative state,
// bridge master), veth peers matched across namespaces, addresses, the
// static routes of the main table, and a short list of sysctls (Sysctls)
// whose values differ from those of a fresh network namespace. What the
// kernel makes by itself is left out: IPv6 link-local addresses, the
// loopback's 127.0.0.1/8 and ::1/128, addresses that are not permanent
// (SLAAC), and routes of protocol kernel or ra (connected subnets, IPv6
// prefix and multicast routes).
//
// Only the main routing table is read; policy rules, other tables,
// neighbours and per-interface sysctls are not. Of the qdiscs, a root tbf
// is read (its rate); other root qdiscs someone added are reported as not
// rebuilt, and ingress qdiscs and filters are not read.
//
// Each namespace is read from a thread of its own that has joined it and is
// discarded afterwards (internal/nsthread), so no thread of the process is
// left in another namespace. A veth names its peer by ifindex and by the
// netnsid the peer's namespace has in its own; which namespace that is is
// asked of the kernel from a scratch network namespace (see scratch), which
// also gives the sysctls' defaults. Nothing else is changed anywhere.
// Reading needs the privilege to enter the namespaces and to make the
// scratch one (root; CAP_SYS_ADMIN and CAP_NET_ADMIN over the namespaces'
// user namespace), and Linux 4.20 or later.
package topo

import (
	"sort"
)

// Topology is what Read found: the network namespaces it read, by name.
type Topology struct {
	Netns []*Netns // sorted by name
	// tunnels are the VXLAN links between the hosts of a topology Merge
	// made (not read: Read leaves it empty).
	tunnels []tunnel
}

// Netns is one named network namespace.
type Netns struct {
	Name string
	// Aliases are other names in /run/netns of the same namespace (the
	// recipe cannot make one namespace under two names).
	Aliases []string
	Links   []*Link   // sorted by name
	Routes  []Route   // sorted (see Route.less)
	Sysctls []Sysctl  // those that differ from a fresh namespace's, by key
	Skipped []Skipped // routes and qdiscs Read found but cannot describe
}

// Link is one network interface.
type Link struct {
	Name   string
	Kind   string // "veth", "bridge", "loopback", "vxlan", ...: netlink's type, "loopback" for lo
	MTU    int
	Up     bool   // administratively up (IFF_UP)
	Master string // the link's bridge (or other master), "" for none
	// Addrs are its addresses as CIDRs, IPv4 first, each family in
	// ascending order, without those the kernel makes by itself.
	Addrs []string
	Peer  *Peer // the other end of a veth; nil for other kinds
	// Rate is what a tbf root qdisc (as link.netem(rate=) makes) shapes
	// what the link sends to, in bits per second; 0: none. Other root
	// qdiscs someone added are listed in Netns.Skipped.
	Rate uint64
	// VXLAN is what a vxlan link joins; nil for other kinds.
	VXLAN *VXLAN `json:",omitempty"`
}

// VXLAN is a vxlan link's tunnel: its VNI, the remote (or multicast
// group) and local underlay addresses ("" when not set), and its UDP port.
type VXLAN struct {
	VNI    int
	Remote string `json:",omitempty"`
	Local  string `json:",omitempty"`
	Port   int    `json:",omitempty"`
}

// Where says where a veth's peer is.
type Where string

// Places a veth peer can be.
const (
	// InRead: in one of the namespaces Read read (maybe the same one).
	InRead Where = "read"
	// InNamed: in a named namespace that was not asked for.
	InNamed Where = "named"
	// InHost: in the network namespace of the reading process.
	InHost Where = "host"
	// InUnnamed: in a namespace with no name in /run/netns.
	InUnnamed Where = "unnamed"
)

// Peer is the other end of a veth pair.
type Peer struct {
	Where Where
	Netns string // its namespace's name, for InRead and InNamed
	Name  string // its name, for InRead
}

// Route is a route of a namespace's main table that someone added.
type Route struct {
	Dst    string // CIDR, or "default"
	Via    string // gateway, "" for none
	Dev    string // outgoing link, "" for none
	V6     bool
	Metric int // the kernel's priority (IPv6 routes get 1024 unless told otherwise)
}

// DefaultMetric is the metric the kernel gives a route added without one.
func (r Route) DefaultMetric() int {
	if r.V6 {
		return 1024
	}
	return 0
}

// Skipped is something of a namespace Read saw and cannot describe.
type Skipped struct {
	What string // as "ip" would print it
	Why  string
}

// Sysctl is a namespace's value of one of Sysctls that differs from a
// fresh namespace's.
type Sysctl struct {
	Key     string // dotted, "net.ipv4.ip_forward"
	Value   string
	Default string // the value in a fresh network namespace
}

// Sysctls are the parameters Read compares with a fresh network
// namespace's: the ones labs set. Interface-specific keys
// (net.ipv4.conf.IFNAME.*) are not read, nor net.ipv4.conf.all.forwarding,
// which is net.ipv4.ip_forward under another name.
var Sysctls = []string{
	"net.ipv4.ip_forward",
	"net.ipv6.conf.all.forwarding",
	"net.ipv4.conf.all.rp_filter",
	"net.ipv4.conf.all.proxy_arp",
	"net.ipv6.conf.all.disable_ipv6",
	"net.ipv4.ip_nonlocal_bind",
	"net.ipv6.ip_nonlocal_bind",
}

// Find returns the namespace called name, or nil.
func (t *Topology) Find(name string) *Netns {
	for _, n := range t.Netns {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Link returns the link called name, or nil.
func (n *Netns) Link(name string) *Link {
	for _, l := range n.Links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func (r Route) less(s Route) bool {
	if r.V6 != s.V6 {
		return !r.V6
	}
	if r.Dst != s.Dst {
		return r.Dst < s.Dst
	}
	if r.Metric != s.Metric {
		return r.Metric < s.Metric
	}
	if r.Via != s.Via {
		return r.Via < s.Via
	}
	return r.Dev < s.Dev
}

// sortAll puts every list in its documented order.
func (t *Topology) sortAll() {
	sort.Slice(t.Netns, func(i, j int) bool { return t.Netns[i].Name < t.Netns[j].Name })
	for _, n := range t.Netns {
		sort.Strings(n.Aliases)
		sort.Slice(n.Links, func(i, j int) bool { return n.Links[i].Name < n.Links[j].Name })
		sort.Slice(n.Routes, func(i, j int) bool { return n.Routes[i].less(n.Routes[j]) })
		sort.Slice(n.Sysctls, func(i, j int) bool { return n.Sysctls[i].Key < n.Sysctls[j].Key })
		sort.Slice(n.Skipped, func(i, j int) bool { return n.Skipped[i].What < n.Skipped[j].What })
	}
}
