package topo

import (
	"fmt"
	"strings"
)

// node is a vertex of the graph: a network namespace, a bridge, or a place
// outside the topology where a veth's peer is.
type node struct {
	id     string   // unique, free text (DOT quotes it)
	label  []string // lines
	bridge bool
	extern bool // outside the namespaces read: drawn dashed
}

// edge joins two nodes: a veth pair (with the names of its ends), or a
// bridge to the namespace it is in (no names).
type edge struct {
	from, to          string // node ids
	fromName, toName  string
	bridgeToNamespace bool
	vni               int // a VXLAN link between hosts (Merge): its VNI
}

type graph struct {
	nodes []*node
	edges []edge
}

// graph builds the graph DOT and Mermaid draw: a node per namespace,
// labelled with its name and the addresses of its links (bridges' aside); a
// node per bridge, joined to its namespace; an edge per veth pair, from the
// bridge an end is a port of or else from the end's namespace.
func (t *Topology) graph() *graph {
	g := &graph{}
	have := map[string]bool{}
	add := func(n *node) {
		if !have[n.id] {
			have[n.id] = true
			g.nodes = append(g.nodes, n)
		}
	}
	nsID := func(name string) string { return "netns " + name }
	brID := func(ns, name string) string { return "bridge " + ns + "/" + name }
	for _, n := range t.Netns {
		nd := &node{id: nsID(n.Name), label: []string{n.Name}}
		for _, l := range n.Links {
			if l.Kind != "bridge" {
				nd.label = append(nd.label, l.Addrs...)
			}
		}
		add(nd)
		for _, l := range n.Links {
			if l.Kind == "bridge" {
				add(&node{id: brID(n.Name, l.Name), label: append([]string{l.Name}, l.Addrs...), bridge: true})
				g.edges = append(g.edges, edge{from: nsID(n.Name), to: brID(n.Name, l.Name), bridgeToNamespace: true})
			}
		}
	}
	// end is the node a veth end hangs from.
	end := func(n *Netns, l *Link) string {
		if m := n.Link(l.Master); m != nil && m.Kind == "bridge" {
			return brID(n.Name, m.Name)
		}
		return nsID(n.Name)
	}
	for _, n := range t.Netns {
		for _, l := range n.Links {
			p := l.Peer
			if l.Kind != "veth" || p == nil {
				continue
			}
			e := edge{from: end(n, l), fromName: l.Name}
			switch p.Where {
			case InRead:
				pn := t.Find(p.Netns)
				pl := pn.Link(p.Name)
				if pl == nil {
					continue
				}
				if n.Name > pn.Name || n.Name == pn.Name && l.Name > pl.Name {
					continue // drawn from the other end
				}
				e.to, e.toName = end(pn, pl), pl.Name
			case InNamed:
				e.to = nsID(p.Netns)
				add(&node{id: e.to, label: []string{p.Netns}, extern: true})
			case InHost:
				e.to = "host"
				add(&node{id: e.to, label: []string{"(nsh's netns)"}, extern: true})
			default:
				e.to = "unnamed " + n.Name + "/" + l.Name
				add(&node{id: e.to, label: []string{"(unnamed netns)"}, extern: true})
			}
			g.edges = append(g.edges, e)
		}
	}
	for _, tu := range t.tunnels {
		e := edge{from: nsID(tu.from), to: nsID(tu.to), fromName: tu.fromName, toName: tu.toName, vni: tu.vni}
		if tu.to == "" {
			e.to = "remote " + tu.remote
			add(&node{id: e.to, label: []string{"(vxlan remote)", tu.remote}, extern: true})
		}
		g.edges = append(g.edges, e)
	}
	return g
}

// DOT renders the topology as a Graphviz graph (render it with
// "dot -Tsvg"): namespaces are boxes labelled with their name and
// addresses, bridges ellipses joined to their namespace by a dashed line,
// veth pairs edges with the names of their ends; peers outside the
// namespaces read are dashed boxes.
func (t *Topology) DOT() string {
	g := t.graph()
	var b strings.Builder
	b.WriteString("graph topology {\n")
	b.WriteString("\tnode [shape=box];\n")
	for _, n := range g.nodes {
		attrs := []string{"label=" + dotQuote(strings.Join(n.label, "\n"))}
		if n.bridge {
			attrs = append(attrs, "shape=ellipse")
		}
		if n.extern {
			attrs = append(attrs, "style=dashed")
		}
		fmt.Fprintf(&b, "\t%s [%s];\n", dotQuote(n.id), strings.Join(attrs, ", "))
	}
	for _, e := range g.edges {
		var attrs []string
		if e.bridgeToNamespace {
			attrs = append(attrs, "style=dashed")
		}
		if e.vni != 0 {
			attrs = append(attrs, "style=bold", "label="+dotQuote(fmt.Sprintf("vxlan %d", e.vni)))
		}
		if e.fromName != "" {
			attrs = append(attrs, "taillabel="+dotQuote(e.fromName))
		}
		if e.toName != "" {
			attrs = append(attrs, "headlabel="+dotQuote(e.toName))
		}
		a := ""
		if len(attrs) > 0 {
			a = " [" + strings.Join(attrs, ", ") + "]"
		}
		fmt.Fprintf(&b, "\t%s -- %s%s;\n", dotQuote(e.from), dotQuote(e.to), a)
	}
	b.WriteString("}\n")
	return b.String()
}

// dotQuote renders s as a DOT string: quotes and backslashes escaped,
// newlines as \n (centred lines).
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Mermaid renders the topology as a Mermaid flowchart: namespaces are
// rectangles labelled with their name and addresses, bridges stadiums
// joined to their namespace by a dotted line, veth pairs edges labelled
// "end — end"; peers outside the namespaces read are of class external
// (dashed).
func (t *Topology) Mermaid() string {
	g := t.graph()
	ids := map[string]string{}
	taken := map[string]bool{}
	for _, n := range g.nodes {
		base := mermaidID(n.id)
		id := base
		for i := 2; taken[id]; i++ {
			id = fmt.Sprintf("%s_%d", base, i)
		}
		taken[id] = true
		ids[n.id] = id
	}
	var b strings.Builder
	b.WriteString("graph LR\n")
	var extern []string
	for _, n := range g.nodes {
		label := mermaidQuote(strings.Join(n.label, "\n"))
		if n.bridge {
			fmt.Fprintf(&b, "    %s([%s])\n", ids[n.id], label)
		} else {
			fmt.Fprintf(&b, "    %s[%s]\n", ids[n.id], label)
		}
		if n.extern {
			extern = append(extern, ids[n.id])
		}
	}
	for _, e := range g.edges {
		switch {
		case e.bridgeToNamespace:
			fmt.Fprintf(&b, "    %s -.- %s\n", ids[e.from], ids[e.to])
		case e.vni != 0:
			label := fmt.Sprintf("%s (vxlan %d)", e.fromName, e.vni)
			if e.toName != "" {
				label = fmt.Sprintf("%s — %s (vxlan %d)", e.fromName, e.toName, e.vni)
			}
			fmt.Fprintf(&b, "    %s ===|%s| %s\n", ids[e.from], mermaidQuote(label), ids[e.to])
		case e.toName == "":
			fmt.Fprintf(&b, "    %s ---|%s| %s\n", ids[e.from], mermaidQuote(e.fromName), ids[e.to])
		default:
			fmt.Fprintf(&b, "    %s ---|%s| %s\n", ids[e.from], mermaidQuote(e.fromName+" — "+e.toName), ids[e.to])
		}
	}
	if len(extern) > 0 {
		b.WriteString("    classDef external stroke-dasharray: 5 5\n")
		fmt.Fprintf(&b, "    class %s external\n", strings.Join(extern, ","))
	}
	return b.String()
}

// mermaidID makes a node id of letters, digits and underscores ("netns
// red" -> "netns_red"), which no Mermaid keyword (end, graph, ...) equals.
func mermaidID(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// mermaidQuote renders s as a quoted Mermaid label: quotes as #quot;,
// newlines as <br/>.
func mermaidQuote(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "\n", "<br/>", "<", "#lt;", ">", "#gt;")
	return `"` + r.Replace(s) + `"`
}
