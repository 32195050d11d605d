package builtins

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nserr"
)

// addAddrs adds addresses to a link; if one is refused, the ones added
// before it are removed again.
func addAddrs(h *nlhandle.Handle, nl netlink.Link, addrs []*netlink.Addr, where string) error {
	for i, a := range addrs {
		if err := h.AddrAdd(nl, a); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = nserr.Explain(unix.EEXIST, "address %s is already on %q in %s", a.IPNet, nl.Attrs().Name, where)
			} else {
				err = nserr.New("addr add", fmt.Sprintf("%s dev %q in %s", a.IPNet, nl.Attrs().Name, where), err)
			}
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
	if err := addAddrs(h, nl, addrs, l.st.nsLabel(l.netns())); err != nil {
		return nil, err
	}
	if nl.Attrs().Flags&net.FlagUp != 0 {
		l.st.readyLater(l) // its new IPv6 addresses, before traffic
	}
	return starlark.None, nil
}

func (l *Link) delAddrMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	addrs, err := cidrArgs(fn.Name(), args, kw)
	if err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if err := h.AddrDel(nl, a); err != nil {
			if errors.Is(err, unix.EADDRNOTAVAIL) {
				return nil, nserr.Explain(unix.EADDRNOTAVAIL, "address %s is not on %q", a.IPNet, nl.Attrs().Name)
			}
			return nil, nserr.New("addr del", fmt.Sprintf("%s dev %q", a.IPNet, nl.Attrs().Name), err)
		}
	}
	return starlark.None, nil
}
