package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/topo"
	"nsh.dev/nsh/interp"
)

const attachUsage = `usage: nsh attach LAB

Opens the REPL with the lab's nodes bound as globals by name (their
nsh.namespace values, as netns(NAME) opens them; the lab's --prefix is left
out of the name, and a character that cannot be in a Starlark name becomes
'_') and each node's links as nsh.link values (as link(NAME, ns=NODE) finds
them): LINK when the link's name starts with the node's ("c1-eth1" in c1
is c1_eth1), else NODE_LINK. A name that would hide a builtin is not bound
(the REPL says so). Leaving the REPL keeps the lab: nothing the session did
not make is undone, and what the session makes itself (a veth, a process,
a sysctl written) is undone when it ends, as at the end of any nsh run;
what the session changes on the lab's own objects (an address added to a
lab's link, a link set down) is not undone and not noted in the lab's
journal (nsh status lists it as a difference when it removes something).
Like nsh up, it needs root. With stdin not a terminal, the REPL reads
statements from it (nsh attach chain <<< 'print(c1)').
`

// attachCmd is "nsh attach LAB".
func attachCmd(args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Print(attachUsage)
		return 0
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return labFail("attach: which lab? (nsh attach LAB; nsh ls lists them)")
	}
	l, err := labs.Open(args[0])
	if err != nil {
		return labFail("attach: %v", err)
	}
	if os.Geteuid() != 0 {
		return labFail("attach: needs root, as nsh up does")
	}
	if l.State == labs.Building {
		return labFail("attach: lab %q is not up (it is being built, or its nsh died building it: nsh gc)", l.Name)
	}
	cfg := interp.Config{Builtins: builtins.Table(), Prompt: builtins.Prompt, MaxMemory: interp.DefaultMaxMemory,
		Abort: abort, Extra: starlark.StringDict{"lab": builtins.LabValue("", "")}}
	in := interp.New(cfg)
	src, binds, notes := attachPrelude(l, in.Predeclared)
	for _, n := range notes {
		fmt.Fprintf(os.Stderr, "nsh: attach %s: %s\n", l.Name, n)
	}
	r := in.NewRun(".", []string{"attach", l.Name})
	gl, err := r.ExecFile("<attach "+l.Name+">", src)
	if err != nil {
		fmt.Fprintln(os.Stderr, interp.FormatError(err))
		if terr := r.Teardown(); terr != nil {
			fmt.Fprintf(os.Stderr, "nsh: %v\n", terr)
		}
		return labFail("attach: cannot open the nodes of lab %q", l.Name)
	}
	globals := starlark.StringDict{}
	for _, d := range []string{"_nodes", "_links"} {
		dict := gl[d].(*starlark.Dict)
		for _, it := range dict.Items() {
			globals[string(it[0].(starlark.String))] = it[1]
		}
	}
	fmt.Fprintf(os.Stderr, "nsh: attached to lab %s: %s. Leaving keeps the lab; what this session makes is undone when it ends.\n", l.Name, binds)
	err = r.REPL(globals, os.Stdin)
	if terr := r.Teardown(); terr != nil {
		fmt.Fprintf(os.Stderr, "nsh: %v\n", terr)
		if err == nil {
			err = terr
		}
	}
	return r.ExitCode(err)
}

// attachPrelude returns the Starlark code that opens lab l's nodes and
// their links into the dicts _nodes and _links (name -> value), a summary
// of the names bound, and notes on what is not bound. taken reports names
// that are predeclared.
func attachPrelude(l *labs.Lab, taken func(string) bool) (src, binds string, notes []string) {
	var present []string
	for _, n := range l.Nodes {
		if isNetns(n.Net) {
			present = append(present, n.Name)
		} else {
			notes = append(notes, fmt.Sprintf("node %s is gone (%s is no network namespace): not bound", n.Name, n.Net))
		}
	}
	live := map[string]*topo.Netns{}
	if len(present) > 0 {
		t, err := topo.Read(present)
		if err != nil {
			notes = append(notes, fmt.Sprintf("cannot read the nodes' links (%v): binding the nodes only", err))
		} else {
			for _, n := range t.Netns {
				live[n.Name] = n
			}
		}
	}
	used := map[string]bool{}
	bind := func(name, what string) bool {
		switch {
		case name == "":
			notes = append(notes, fmt.Sprintf("%s has no name usable in Starlark: not bound", what))
		case taken(name):
			notes = append(notes, fmt.Sprintf("%s would hide the builtin %s: not bound", what, name))
		case used[name]:
			notes = append(notes, fmt.Sprintf("%s: the name %s is taken: not bound", what, name))
		default:
			used[name] = true
			return true
		}
		return false
	}
	var b strings.Builder
	b.WriteString("_nodes = {}\n_links = {}\n")
	var nodeNames, linkNames []string
	for _, n := range present {
		short := strings.TrimPrefix(n, l.Prefix)
		v := ident(short)
		if !bind(v, "node "+n) {
			continue
		}
		nodeNames = append(nodeNames, v)
		fmt.Fprintf(&b, "_nodes[%s] = netns(%s)\n", strconv.Quote(v), strconv.Quote(n))
		ns := live[n]
		if ns == nil {
			continue
		}
		for _, lk := range ns.Links {
			if lk.Kind == "loopback" {
				continue
			}
			lv := ident(strings.TrimPrefix(lk.Name, l.Prefix))
			if !strings.HasPrefix(strings.TrimPrefix(lk.Name, l.Prefix), short+"-") {
				lv = v + "_" + lv
			}
			if !bind(lv, fmt.Sprintf("link %s of node %s", lk.Name, n)) {
				continue
			}
			linkNames = append(linkNames, lv)
			fmt.Fprintf(&b, "_links[%s] = link(%s, ns = _nodes[%s])\n", strconv.Quote(lv), strconv.Quote(lk.Name), strconv.Quote(v))
		}
	}
	sort.Strings(linkNames)
	binds = "nodes " + orNone(nodeNames) + "; links " + orNone(linkNames)
	return b.String(), binds, notes
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "(none)"
	}
	return strings.Join(ss, " ")
}

// ident makes s a Starlark identifier: characters other than letters,
// digits and '_' become '_', and a leading digit gets a '_' before it.
// "" when s has none of those.
func ident(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}
