// Package builtins implements nsh's namespace vocabulary as Starlark
// builtins: one file per family (namespaces, processes, mounts, links,
// idmaps), each with its doc.Table and the Starlark types that wrap its
// kernel objects. Table joins the families explicitly.
package builtins

import (
	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
)

// Table returns every builtin, type and constant nsh offers.
func Table() doc.Table {
	return doc.Join(
		namespaceTable(),
		idmapTable(),
		mountTable(),
		linkTable(),
		bridgeTable(),
		vxlanTable(),
		routeTable(),
		sysctlTable(),
		pingTable(),
		transferTable(),
		netemTable(),
		processTable(),
		waitTable(),
		observeTable(),
		labTable(),
		captureTable(),
	)
}

// Prompt describes the thread's current context for the REPL prompt, e.g.
// "net:h1 uts:h1" for namespaces labelled h1 (netns_new, host),
// "net:4026532201 uts:4026532202" for unlabelled ones, or "" when it is the
// one nsh started in.
func Prompt(th *starlark.Thread) string {
	st, err := stateOf(th)
	if err != nil {
		return ""
	}
	return st.describe(st.current())
}
