package builtins

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
)

// addAddrs adds addresses to a link in ns; if one is refused, the ones
// added before it are removed again.
func (st *state) addAddrs(th *starlark.Thread, h *nlhandle.Handle, nl netlink.Link, ns *nsctx.NS, addrs []*netlink.Addr) error {
	if len(addrs) == 0 {
		return nil
	}
	where, ref := st.nsWhere(ns), st.netnsRef(ns)
	for i, a := range addrs {
		rec := &change.Addr{NS: ref, Dev: nl.Attrs().Name, CIDR: a.IPNet.String(), NoDAD: a.Flags&unix.IFA_F_NODAD != 0}
		rec.Apply = func() error {
			err := h.AddrAdd(nl, a)
			if errors.Is(err, unix.EEXIST) {
				return st.addrExists(ns, nl, a)
			}
			return nserr.New("addr add", fmt.Sprintf("%s dev %q in %s", a.IPNet, nl.Attrs().Name, where), err)
		}
		if _, err := st.ex.Do(th, rec); err != nil {
			for _, done := range addrs[:i] {
				if derr := h.AddrDel(nl, done); derr != nil {
					err = errors.Join(err, nserr.New("addr del", fmt.Sprintf("%s dev %q", done.IPNet, nl.Attrs().Name), derr))
				}
			}
			return err
		}
	}
	return nil
}

// cidrArgs parses the positional CIDR arguments of add_addr/del_addr.
func cidrArgs(fname string, args starlark.Tuple, kw []starlark.Tuple) ([]*netlink.Addr, error) {
	if len(kw) > 0 {
		return nil, fmt.Errorf("%s: unexpected keyword argument %s", fname, kw[0][0])
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: no address given (e.g. \"10.0.0.1/24\")", fname)
	}
	return parseAddrs("address", args)
}

func (l *Link) addAddrMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	addrs, err := cidrArgs(fn.Name(), args, kw)
	if err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	if err := l.st.addAddrs(th, h, nl, l.netns(), addrs); err != nil {
		return nil, err
	}
	if nl.Attrs().Flags&net.FlagUp != 0 {
		l.st.readyLater(l) // its new IPv6 addresses, before traffic
	}
	return starlark.None, nil
}

func (l *Link) delAddrMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	missingOK := false
	if err := starlark.UnpackArgs(fn.Name(), nil, kw, "missing_ok?", &missingOK); err != nil {
		return nil, err
	}
	addrs, err := cidrArgs(fn.Name(), args, nil)
	if err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	var have []netlink.Addr
	if missingOK {
		if have, err = h.AddrList(nl, netlink.FAMILY_ALL); err != nil {
			return nil, nserr.New("addr show", fmt.Sprintf("dev %q", nl.Attrs().Name), err)
		}
	}
	ref := l.st.netnsRef(l.netns())
	for _, a := range addrs {
		if missingOK && !slices.ContainsFunc(have, func(x netlink.Addr) bool { return x.IPNet.String() == a.IPNet.String() }) {
			continue // not there: no change
		}
		rec := &change.Addr{NS: ref, Dev: nl.Attrs().Name, CIDR: a.IPNet.String(), Del: true}
		rec.Apply = func() error {
			err := h.AddrDel(nl, a)
			if errors.Is(err, unix.EADDRNOTAVAIL) {
				return nserr.Explain(unix.EADDRNOTAVAIL, "address %s is not on %q", a.IPNet, nl.Attrs().Name)
			}
			return nserr.New("addr del", fmt.Sprintf("%s dev %q", a.IPNet, nl.Attrs().Name), err)
		}
		if _, err := l.st.ex.Do(th, rec); err != nil {
			return nil, err
		}
	}
	return starlark.None, nil
}
