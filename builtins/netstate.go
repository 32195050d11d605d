package builtins

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
)

// netState is the networking part of a run's state: the netlink handle
// cache and the network namespaces the run created itself.
type netState struct {
	nl *nlhandle.Cache
	// maker creates network namespaces on the calling thread, one after
	// the other, instead of on a new thread for each.
	maker   *nsthread.NetRunner
	mu      sync.Mutex
	created map[[2]uint64]bool // value: the namespace dies with the run
	// netnsDirs holds the mount namespaces whose /run/netns this run has
	// made a shared mount.
	netnsDirs map[[2]uint64]bool
	// kept are the links this run made and keeps (persist()), by
	// namespace and index: what is on them (routes, a qdisc) is kept with
	// them (keptLink). Keys, not the links, so that nothing here keeps a
	// namespace open.
	kept map[linkKey]bool
}

// linkKey names a link: its network namespace and its index there.
type linkKey struct {
	dev, ino uint64
	index    int
}

func keyOf(ns *nsctx.NS, index int) linkKey { return linkKey{ns.Dev, ns.Ino, index} }

// netOf returns the run's netState. It is created on first use; its
// handles are closed at the end of the run, after every link, address and
// route registered later was undone through them.
func netOf(st *state) *netState {
	return st.reg.Shared("nsh.builtins.net", func() any {
		w := nsthread.NewNetRunner()
		st.ex.Hold("network namespace runner", w.Close)
		c := nlhandle.New(st.tab.Initial.Get("net"), w)
		st.ex.Hold("netlink handles", c.Close)
		n := &netState{nl: c, maker: w, created: map[[2]uint64]bool{}, netnsDirs: map[[2]uint64]bool{}, kept: map[linkKey]bool{}}
		// A namespace the run no longer references: its netlink socket
		// (which would keep a network namespace alive) and what is known
		// of it go, before its inode number can name another one.
		st.tab.OnRelease(func(dev, ino uint64) {
			c.Drop(dev, ino)
			n.mu.Lock()
			delete(n.created, [2]uint64{dev, ino})
			delete(n.netnsDirs, [2]uint64{dev, ino})
			for k := range n.kept {
				if k.dev == dev && k.ino == ino {
					delete(n.kept, k)
				}
			}
			n.mu.Unlock()
		})
		return n
	}).(*netState)
}

func netlinkOf(st *state) *nlhandle.Cache { return netOf(st).nl }

// markCreated records that this run created ns, and whether ns dies with
// the run (unshare(), netns(persist=False)) or is kept (netns()).
func (st *state) markCreated(ns *nsctx.NS, ephemeral bool) {
	n := netOf(st)
	n.mu.Lock()
	n.created[[2]uint64{ns.Dev, ns.Ino}] = ephemeral
	n.mu.Unlock()
}

// keepNetns records that ns, if this run created it, now outlives the run
// (it was bind-mounted): the links nsh made in it are deleted one by one
// again, unless kept; its routes, qdiscs and sysctls are kept with it.
func (st *state) keepNetns(ns *nsctx.NS) {
	if ns.Kind.Name == "net" && st.createdHere(ns) {
		st.markCreated(ns, false)
	}
}

// keepLinks notes that links this run made are kept (keep true), at
// where they are now, or no longer there (false: deleted, or moving).
func (st *state) keepLinks(keep bool, ls ...*Link) {
	n := netOf(st)
	for _, l := range ls {
		ns, index, _ := l.where()
		n.mu.Lock()
		if keep {
			n.kept[keyOf(ns, index)] = true
		} else {
			delete(n.kept, keyOf(ns, index))
		}
		n.mu.Unlock()
	}
}

// keptLink reports whether the link with index index in ns is one this
// run made and keeps (persist()): what is on it (its routes, its qdisc)
// is kept with it, not undone at the end of the run.
func (st *state) keptLink(ns *nsctx.NS, index int) bool {
	n := netOf(st)
	n.mu.Lock()
	defer n.mu.Unlock()
	return index > 0 && n.kept[keyOf(ns, index)]
}

// keptHere reports whether what is made in ns needs no undo at the end of
// the run: ns is a namespace this run created, which either dies with the
// run (and everything in it) or is kept (and everything in it with it:
// netns(), persist()), so that a kept namespace keeps its routes and
// qdiscs as it keeps its sysctls.
func (st *state) keptHere(ns *nsctx.NS) bool { return st.createdHere(ns) }

// createdHere reports whether this run created ns (with unshare or netns).
// Settings made inside such a namespace go away with it and need no undo.
func (st *state) createdHere(ns *nsctx.NS) bool {
	n := netOf(st)
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.created[[2]uint64{ns.Dev, ns.Ino}]
	return ok
}

// diesWithRun reports whether ns is a namespace this run created and does
// not keep: the kernel destroys it, with every link, address and route in
// it, when the run closes its descriptors. Undoing those one by one first
// would only be slower (each link deletion waits for an RCU grace period;
// a dying namespace's links are unregistered in one batch).
func (st *state) diesWithRun(ns *nsctx.NS) bool {
	n := netOf(st)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.created[[2]uint64{ns.Dev, ns.Ino}]
}

// handle returns the netlink handle bound to ns.
func (st *state) handle(ns *nsctx.NS) (*nlhandle.Handle, error) {
	return netlinkOf(st).Get(ns)
}

// netArg returns the run's state and the network namespace an ns= argument
// names (see netTarget): the preamble of every builtin acting in one netns.
func netArg(th *starlark.Thread, nsv starlark.Value) (*state, *nsctx.NS, error) {
	st, err := stateOf(th)
	if err != nil {
		return nil, nil, err
	}
	ns, err := netTarget(st, nsv)
	return st, ns, err
}

// netHandle resolves an ns= argument as netArg does and returns the
// netlink handle bound to that network namespace too.
func netHandle(th *starlark.Thread, nsv starlark.Value) (*state, *nsctx.NS, *nlhandle.Handle, error) {
	st, ns, err := netArg(th, nsv)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := st.handle(ns)
	return st, ns, h, err
}

// netTarget resolves an ns= argument to a network namespace: None is the
// current context's; anything else is a target as for setns().
func netTarget(st *state, v starlark.Value) (*nsctx.NS, error) {
	if v == nil || v == starlark.None {
		return st.current().Get("net"), nil
	}
	if l, ok := v.(*Link); ok {
		return l.netns(), nil
	}
	c, has, err := resolveTarget(st, v)
	if err != nil {
		return nil, err
	}
	if has&unix.CLONE_NEWNET == 0 {
		return nil, fmt.Errorf("%s is not a network namespace", v)
	}
	return c.Get("net"), nil
}

// setupNetns is called on the thread that has just created the network
// namespace ns: it opens the namespace's netlink handle there (saving a
// thread hop later) and brings the loopback up unless lo is false.
func (st *state) setupNetns(ns *nsctx.NS, lo, ephemeral bool) error {
	h, err := nlhandle.Open()
	if err != nil {
		return err
	}
	if h = netlinkOf(st).Put(ns, h); h == nil {
		return fmt.Errorf("the run is over")
	}
	st.markCreated(ns, ephemeral)
	if !lo {
		return nil
	}
	return loUp(h, ns)
}

// ensureNetns does what setupNetns does for a network namespace created
// elsewhere (by a helper process): a no-op when it was already set up.
func (st *state) ensureNetns(ns *nsctx.NS, lo bool) error {
	st.markCreated(ns, true)
	if !lo {
		return nil
	}
	h, err := st.handle(ns)
	if err != nil {
		return err
	}
	return loUp(h, ns)
}

// loUp brings up the loopback of a fresh network namespace (always
// ifindex 1) without looking it up.
func loUp(h *nlhandle.Handle, ns *nsctx.NS) error {
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}
	return nserr.New("link set up", "lo in "+ns.String(), h.LinkSetUp(lo))
}

// checkLinkName refuses, before any syscall, what the kernel's
// dev_valid_name refuses (empty, longer than 15 bytes, ".", "..", '/', ':',
// whitespace) and what it would not take literally: a '%' makes the kernel
// treat the name as a template ("eth%d" becomes "eth0"), so nsh would then
// look for a link that does not exist, and a NUL would cut the name short.
// what qualifies the name in messages ("peer" gives `peer name "x" ...`).
func checkLinkName(what, name string) error {
	label := "name"
	if what != "" {
		label = what + " name"
	}
	switch {
	case name == "":
		return fmt.Errorf("%s is empty", label)
	case len(name) > unix.IFNAMSIZ-1:
		return fmt.Errorf("%s %q is longer than 15 bytes", label, name)
	case name == "." || name == "..":
		return fmt.Errorf("%s %q is not allowed", label, name)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("%s %q contains a NUL byte", label, name)
	case strings.ContainsRune(name, '%'):
		return fmt.Errorf("%s %q contains '%%' (the kernel would take it as a template like eth%%d and pick another name)", label, name)
	case strings.ContainsAny(name, "/:"):
		return fmt.Errorf("%s %q contains '/' or ':'", label, name)
	case strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return fmt.Errorf("%s %q contains whitespace", label, name)
	}
	return nil
}

// parseAddr parses an interface address: "10.0.0.1/24", "fd00::1/64", or a
// bare address (a host prefix: /32 or /128).
func parseAddr(s string) (*netlink.Addr, error) {
	ipnet, err := parsePrefix(s)
	if err != nil {
		return nil, err
	}
	a := &netlink.Addr{IPNet: ipnet}
	if ipnet.IP.To4() == nil {
		// No duplicate address detection: the address is usable at once,
		// as "ip addr add ... nodad".
		a.Flags = unix.IFA_F_NODAD
	}
	return a, nil
}

// parsePrefix parses "ADDR/LEN" keeping the host bits, or a bare address
// (a host prefix). It is the one parser of addresses and route
// destinations, and stricter than net.ParseCIDR in two ways:
//   - a prefix length is decimal digits without a leading zero: ip reads
//     "/024" as octal (/20) and net.ParseCIDR as /24, so it is refused;
//   - an IPv4-mapped IPv6 address (::ffff:10.0.0.1) is refused. ip adds it
//     as an IPv6 address, but the netlink library nsh uses would send it
//     as the IPv4 address it maps (10.0.0.1/0 for "/96"), and on an
//     interface such an address is almost always a mistake for the IPv4 one
//     (RFC 4291 keeps these addresses for the socket API).
func parsePrefix(s string) (*net.IPNet, error) {
	addr, bits, hasLen := strings.Cut(s, "/")
	ip := net.ParseIP(addr)
	if ip == nil {
		if hasLen {
			return nil, fmt.Errorf("malformed CIDR %q (want e.g. 10.0.0.1/24 or fd00::1/64)", s)
		}
		return nil, fmt.Errorf("malformed address %q (want e.g. 10.0.0.1/24 or fd00::1/64)", s)
	}
	v4 := ip.To4()
	if v4 != nil && strings.Contains(addr, ":") {
		return nil, fmt.Errorf("%q is an IPv4-mapped IPv6 address (::ffff:a.b.c.d), which nsh does not put on links or in routes: write the IPv4 address (%s) or a native IPv6 one", s, v4)
	}
	size := 128
	if v4 != nil {
		ip, size = v4, 32
	}
	n := size
	if hasLen {
		var err error
		if n, err = parsePrefixLen(bits, size); err != nil {
			return nil, fmt.Errorf("malformed CIDR %q: %w", s, err)
		}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(n, size)}, nil
}

// parsePrefixLen parses the LEN of ADDR/LEN for an address of size bits.
func parsePrefixLen(s string, size int) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("prefix length %q is not a number from 0 to %d", s, size)
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("prefix length %q has a leading zero (ip reads it as octal); write it in decimal without the zero", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > size {
		return 0, fmt.Errorf("prefix length %q is not a number from 0 to %d", s, size)
	}
	return n, nil
}

// parseAddrs accepts None, one address string or a list/tuple of them.
func parseAddrs(what string, v starlark.Value) ([]*netlink.Addr, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	var items []starlark.Value
	switch v := v.(type) {
	case starlark.String:
		items = []starlark.Value{v}
	case starlark.Indexable:
		for i := 0; i < v.Len(); i++ {
			items = append(items, v.Index(i))
		}
	default:
		return nil, fmt.Errorf("%s must be a CIDR string or a list of them, not %s", what, v.Type())
	}
	var out []*netlink.Addr
	for _, it := range items {
		s, ok := starlark.AsString(it)
		if !ok {
			return nil, fmt.Errorf("%s must be a CIDR string, not %s", what, it.Type())
		}
		a, err := parseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// family names an address family for messages.
func family(ip net.IP) string {
	if ip.To4() != nil {
		return "IPv4"
	}
	return "IPv6"
}

// isNotFound reports whether err means the link (or route, or address) is
// not there.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return true
	}
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EADDRNOTAVAIL)
}
