package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/topo"
)

const exportUsage = `usage: nsh export [--persist] [NETNS...]

Reads the live state of the named network namespaces (entries of /run/netns,
whoever made them; all of them if none is named) and prints a Starlark
recipe that rebuilds it: netns(), bridge() and veth() with their addresses,
bridge ports, MTUs and up/down state, tbf rate limits, static routes of the
main table, and the sysctls of a short list that differ from a fresh
namespace's. What it cannot rebuild (links of other kinds, veths whose peer
is outside the namespaces read, other qdiscs) is printed as comments that
say so. Needs root.

The recipe is for "nsh up", which keeps what it builds. --persist writes
one that a plain "nsh FILE" run keeps: links get persist(), sysctls
persist=True, and routes and rate limits are added by ip(8) and tc(8).
`

const graphUsage = `usage: nsh graph [--mermaid] LAB
       nsh graph --netns [--mermaid] [NETNS...]
       nsh graph [--mermaid] LAB --host NAME=TARGET ... [--transport T]

Prints the live topology of a lab's nodes, or of the named network
namespaces (all of /run/netns if none is named), as a Graphviz DOT graph (the default; --dot
says so explicitly), or as a Mermaid flowchart with --mermaid. Namespaces
are nodes labelled with their name and addresses, bridges nodes of their
own, veth pairs edges. With --host, every host's part of the lab is read
there and drawn as one topology, its nodes named HOST/NODE, with a bold
edge per VXLAN link between hosts. Needs root. Render DOT with: dot -Tsvg -o lab.svg
`

// exportCmd is "nsh export".
func exportCmd(args []string) int {
	var opt topo.RecipeOptions
	var names []string
	for i, a := range args {
		switch {
		case a == "-h" || a == "--help":
			fmt.Print(exportUsage)
			return 0
		case a == "--persist":
			opt.Persist = true
		case a == "--":
			names = append(names, args[i+1:]...)
			return export(names, opt)
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "nsh export: unknown flag %q\n%s", a, exportUsage)
			return 2
		default:
			names = append(names, a)
		}
	}
	return export(names, opt)
}

func export(names []string, opt topo.RecipeOptions) int {
	t, err := topo.Read(names)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nsh export: %v\n", err)
		return 1
	}
	fmt.Print(t.Recipe(opt))
	return 0
}

// graphCmd is "nsh graph".
func graphCmd(args []string) int {
	var names []string
	netns, mermaid, asJSON := false, false, false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-h" || a == "--help":
			fmt.Print(graphUsage)
			return 0
		case a == "--netns":
			netns = true
		case a == "--mermaid":
			mermaid = true
		case a == "--dot":
			mermaid = false
		case a == "--json":
			asJSON = true // hidden: the topology for nsh graph --host
		case a == "--":
			names = append(names, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "nsh graph: unknown flag %q\n%s", a, graphUsage)
			return 2
		default:
			names = append(names, a)
		}
	}
	if !netns {
		// nsh graph LAB: the lab's nodes.
		if len(names) != 1 {
			fmt.Fprintf(os.Stderr, "nsh graph: which lab? (nsh graph LAB, or --netns NAME...)\n%s", graphUsage)
			return 2
		}
		l, err := labs.Open(names[0])
		if err != nil {
			fmt.Fprintf(os.Stderr, "nsh graph: %v\n", err)
			return 1
		}
		names = nil
		for _, n := range l.Nodes {
			names = append(names, n.Name)
		}
		if len(names) == 0 {
			fmt.Fprintf(os.Stderr, "nsh graph: lab %q has no nodes (named network namespaces)\n", l.Name)
			return 1
		}
	}
	t, err := topo.Read(names)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nsh graph: %v\n", err)
		return 1
	}
	if asJSON {
		b, err := json.Marshal(t)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nsh graph: %v\n", err)
			return 1
		}
		fmt.Println(string(b))
		return 0
	}
	if mermaid {
		fmt.Print(t.Mermaid())
	} else {
		fmt.Print(t.DOT())
	}
	return 0
}
