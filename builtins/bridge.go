package builtins

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/reaper"
)

func bridgeTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "bridge", Sig: "bridge(name, ns=None, up=True)", Impl: bridgeBuiltin, Doc: `Creates a Linux bridge in a network namespace and returns it as nsh.link.
ns is a target as for setns(); default the current context. Attach links
with link.set_master(br). The bridge is deleted at the end of the run
unless persist() is called on it. The name follows the rules of veth()'s.`},
		},
	}
}

func bridgeBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var nsv starlark.Value = starlark.None
	up := true
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "ns?", &nsv, "up?", &up); err != nil {
		return nil, err
	}
	if err := checkLinkName("", name); err != nil {
		return nil, err
	}
	st, ns, err := netArg(th, nsv)
	if err != nil {
		return nil, err
	}
	if nsv == starlark.None {
		st.noteHost(fn.Name(), ns)
	}
	h, err := st.handle(ns)
	if err != nil {
		return nil, err
	}
	l := &Link{st: st, ns: ns, name: name}
	rec := &change.LinkAdd{Kind: "bridge", NS: st.netnsRef(ns), Name: name, Up: up}
	rec.What = fmt.Sprintf("bridge %q", name)
	rec.Apply = func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if up {
			br.Flags = net.FlagUp
		}
		idx, err := withChosenIndex(!st.diesWithRun(ns), func(idx int) error { // see chooseIndex
			if idx > 0 {
				rec.Intend(reaper.DelLink(ns, idx, name))
			}
			br.Index = idx
			return h.LinkAdd(br)
		})
		if err != nil {
			if errors.Is(err, unix.EEXIST) {
				return st.linkExists(h, ns, name)
			}
			return nserr.New("link add", fmt.Sprintf("bridge %q in %s", name, st.nsWhere(ns)), err)
		}
		fault.At("link.added")
		if l.index = idx; idx == 0 {
			l.index, err = madeIndex(h, name)
		}
		return err
	}
	rec.Undo = func() (bool, error) { return undoLink(rec, l) }
	rec.Reap = func() []reaper.Op { return st.linkOps(l) }
	if l.entry, err = st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	return l, nil
}
