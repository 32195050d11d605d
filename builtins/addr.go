package builtins

import (
	"errors"
	"fmt"
	"net"
	"time"

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
				err = explain(unix.EEXIST, "address %s is already on %q in %s", a.IPNet, nl.Attrs().Name, where)
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

// settle waits, briefly, until a link that is up (with carrier) has joined the
// solicited-node multicast groups of its IPv6 addresses among addrs. The
// kernel joins them from a work queue after the address is added (or the
// link becomes ready), even without duplicate address detection; a
// neighbour solicitation arriving before is dropped and only retried a
// second later, so a ping sent at once would be lost. It usually takes well
// under a millisecond; after maxSettle nsh goes on regardless.
func settle(h *nlhandle.Handle, nl netlink.Link, addrs []*netlink.Addr) error {
	var groups []net.IP
	for _, a := range addrs {
		if a.IP.To4() == nil {
			groups = append(groups, solicitedNode(a.IP))
		}
	}
	if len(groups) == 0 {
		return nil
	}
	// Only a link with carrier gets there; a veth whose peer is down waits
	// for the peer's up().
	cur, err := h.LinkByIndex(nl.Attrs().Index)
	if err != nil {
		return nserr.New("link show", quote(nl.Attrs().Name), err)
	}
	if cur.Attrs().OperState != netlink.OperUp || cur.Attrs().Flags&net.FlagLoopback != 0 {
		return nil
	}
	deadline := time.Now().Add(maxSettle)
	for {
		ok, err := h.Joined(nl.Attrs().Name, groups)
		if err != nil || ok || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
}

const maxSettle = 2 * time.Second

// solicitedNode returns the solicited-node multicast address of an IPv6
// address: ff02::1:ff00:0/104 plus its last 24 bits (RFC 4291).
func solicitedNode(ip net.IP) net.IP {
	ip = ip.To16()
	g := net.ParseIP("ff02::1:ff00:0")
	copy(g[13:], ip[13:])
	return g
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
		return starlark.None, settle(h, nl, addrs)
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
				return nil, explain(unix.EADDRNOTAVAIL, "address %s is not on %q", a.IPNet, nl.Attrs().Name)
			}
			return nil, nserr.New("addr del", fmt.Sprintf("%s dev %q", a.IPNet, nl.Attrs().Name), err)
		}
	}
	return starlark.None, nil
}
