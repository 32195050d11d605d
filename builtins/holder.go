package builtins

import (
	"fmt"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nsthread"
)

// unshareOpts are unshare()'s keyword options.
type unshareOpts struct {
	propagation string
	lo          bool // bring up the loopback of a new network namespace
}

func (o *unshareOpts) unpack(fname string, kwargs []starlark.Tuple) error {
	return starlark.UnpackArgs(fname, nil, kwargs, "propagation?", &o.propagation, "lo?", &o.lo)
}

// processOnly reports whether the options need nothing a helper process
// must do (maps, time offsets).
func (o *unshareOpts) processOnly() bool { return true }

// unshareViaProcess creates the kinds a multi-threaded process cannot
// unshare on a thread (user, pid, time) through a helper process.
func (st *state) unshareViaProcess(th *starlark.Thread, cur nsctx.Context, flags int, o *unshareOpts) ([]*nsctx.NS, error) {
	return nil, fmt.Errorf("unshare of %s needs the spawn helper, which this build does not have yet", nsthread.FlagNames(flags))
}
