package topo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/netnsdir"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
)

// nsFile is an open network namespace file.
type nsFile struct {
	name     string // its name in /run/netns; "" for the reader's own namespace
	fd       int
	dev, ino uint64
}

func (f *nsFile) same(g *nsFile) bool { return f.dev == g.dev && f.ino == g.ino }

// openNetns opens path and checks that it is a network namespace.
func openNetns(name, path string) (*nsFile, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) && name != "" {
			return nil, nserr.Explain(unix.ENOENT, "no network namespace called %q (no %s)", name, path)
		}
		return nil, nserr.New("open", strconv.Quote(path), err)
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil || typ != unix.CLONE_NEWNET {
		unix.Close(fd)
		if err == nil || errors.Is(err, unix.ENOTTY) {
			return nil, fmt.Errorf("%s is not a network namespace (an entry no namespace is mounted on: its maker died or is still making it)", path)
		}
		return nil, nserr.New("ioctl NS_GET_NSTYPE", strconv.Quote(path), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nserr.New("fstat", strconv.Quote(path), err)
	}
	return &nsFile{name: name, fd: fd, dev: st.Dev, ino: st.Ino}, nil
}

// raw is what one namespace's thread read, before peers are resolved.
type raw struct {
	f       *nsFile
	ns      *Netns
	links   map[int]*Link // by ifindex
	veths   map[*Link]veth
	nsids   map[int]*nsFile // the namespaces its netnsids name
	sysctls map[string]string
}

// veth is what a veth end says of its peer.
type veth struct {
	index int // the peer's ifindex
	nsid  int // IFLA_LINK_NETNSID: the peer's namespace's id here; -1: this one
}

// Read reads the named network namespaces (entries of /run/netns); no
// names: all of them. A name that is no network namespace is an error;
// several names of one namespace are read once, under the first in sorted
// order (the others become its Aliases).
func Read(names []string) (*Topology, error) { return ReadWith(names, Options{}) }

// Options choose what ReadWith leaves out, to be quicker.
type Options struct {
	// Lean reads links, addresses and routes only: no sysctls, no
	// qdiscs, and a veth's peer only when it is in the same namespace
	// (finding the namespace of the others needs a scratch namespace
	// and a request per namespace). nsh status reads a lab this way.
	Lean bool
}

// ReadWith is Read with options.
func ReadWith(names []string, opt Options) (*Topology, error) {
	all, err := namedAll()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range all {
			unix.Close(f.fd)
		}
	}()
	self, err := openNetns("", "/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer unix.Close(self.fd)

	var want []*nsFile
	if len(names) == 0 {
		want = all
	} else {
		names = append([]string(nil), names...)
		sort.Strings(names)
		for _, name := range names {
			if err := checkName(name); err != nil {
				return nil, err
			}
			f := find(all, name)
			if f == nil {
				// Open it to say why: missing, or an empty entry.
				g, err := openNetns(name, filepath.Join(netnsdir.Dir, name))
				if err != nil {
					return nil, err
				}
				unix.Close(g.fd)
				return nil, fmt.Errorf("network namespace %q appeared while nsh read /run/netns: try again", name)
			}
			if !contains(want, f) {
				want = append(want, f)
			}
		}
	}
	t := &Topology{}
	if len(want) == 0 {
		return t, nil
	}
	// One file per namespace (several names can hold one): the first of
	// want are the ones read, then other named ones, then nsh's own.
	var nss []*nsFile
	seen := map[[2]uint64]bool{}
	for _, f := range append(append(append([]*nsFile(nil), want...), all...), self) {
		if k := [2]uint64{f.dev, f.ino}; !seen[k] {
			seen[k] = true
			nss = append(nss, f)
		}
	}
	nread := 0
	for _, f := range nss {
		if contains(want, f) {
			nread++
		}
	}
	byIno := map[[2]uint64]*raw{}
	raws, err := readAll(nss[:nread], opt.Lean)
	if err != nil {
		return nil, err
	}
	for _, r := range raws {
		byIno[[2]uint64{r.f.dev, r.f.ino}] = r
		t.Netns = append(t.Netns, r.ns)
	}
	if opt.Lean {
		for _, r := range raws {
			for l, v := range r.veths {
				if v.nsid < 0 { // the peer is in the same namespace
					l.Peer = &Peer{Where: InRead, Netns: r.ns.Name}
					if pl, ok := r.links[v.index]; ok {
						l.Peer.Name = pl.Name
					}
				}
			}
		}
		t.sortAll()
		return t, nil
	}
	// After the link dumps: a namespace gets a netnsid for the namespace
	// of a veth's peer when the kernel first reports that veth.
	defaults, peers, err := scratch(nss, nread)
	if err != nil {
		return nil, err
	}
	for i, r := range raws {
		r.nsids = peers[i]
		for _, k := range Sysctls {
			if v, ok := r.sysctls[k]; ok && v != defaults[k] {
				r.ns.Sysctls = append(r.ns.Sysctls, Sysctl{Key: k, Value: v, Default: defaults[k]})
			}
		}
	}
	// Other names of the namespaces read are their aliases.
	for _, f := range all {
		if r := byIno[[2]uint64{f.dev, f.ino}]; r != nil && r.f.name != f.name && !containsName(r.ns.Aliases, f.name) {
			r.ns.Aliases = append(r.ns.Aliases, f.name)
		}
	}
	for _, f := range nss[:nread] {
		resolvePeers(byIno[[2]uint64{f.dev, f.ino}], byIno)
	}
	t.sortAll()
	return t, nil
}

// checkName refuses names that are no entry of /run/netns.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid network namespace name %q", name)
	}
	return nil
}

// namedAll opens every network namespace of /run/netns, sorted by name;
// entries that are no namespace (stale empty files) are left out.
func namedAll() ([]*nsFile, error) {
	ents, err := os.ReadDir(netnsdir.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, nserr.New("read directory", netnsdir.Dir, err)
	}
	var out []*nsFile
	for _, e := range ents {
		f, err := openNetns(e.Name(), filepath.Join(netnsdir.Dir, e.Name()))
		if err != nil {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

func find(fs []*nsFile, name string) *nsFile {
	for _, f := range fs {
		if f.name == name {
			return f
		}
	}
	return nil
}

func contains(fs []*nsFile, f *nsFile) bool {
	for _, g := range fs {
		if g == f {
			return true
		}
	}
	return false
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// readAll reads the namespaces fs. One thread joins each in turn (and is
// discarded afterwards) to open a netlink socket there and read its
// sysctls; the dumps then go through those sockets from ordinary
// goroutines, a few at once: a locked thread waiting on a socket costs a
// hand-off between threads per reply. lean skips qdiscs and sysctls.
func readAll(fs []*nsFile, lean bool) ([]*raw, error) {
	raws := make([]*raw, len(fs))
	hs := make([]*netlink.Handle, len(fs))
	defer func() {
		for _, h := range hs {
			if h != nil {
				h.Close()
			}
		}
	}()
	err := nsthread.Do(nil, func() error {
		for i, f := range fs {
			r := &raw{f: f, ns: &Netns{Name: f.name}, links: map[int]*Link{}, veths: map[*Link]veth{}}
			raws[i] = r
			label := f.label()
			if err := unix.Setns(f.fd, unix.CLONE_NEWNET); err != nil {
				return nserr.New("setns", label, err)
			}
			var err error
			if hs[i], err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
				return nserr.New("socket", "netlink route in "+label, err)
			}
			if !lean {
				if r.sysctls, err = readSysctls(); err != nil {
					return fmt.Errorf("%s: %w", label, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, privileged(err, "reading another network namespace needs root")
	}
	workers := min(runtime.GOMAXPROCS(0), len(fs))
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = readIn(hs[i], raws[i], fs[i].label(), lean)
			}
		}()
	}
	for i := range fs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, privileged(err, "reading another network namespace needs root")
	}
	return raws, nil
}

// readIn reads r's namespace through h, a handle opened there.
func readIn(h *netlink.Handle, r *raw, label string, lean bool) error {
	if err := readLinks(h, r, label); err != nil {
		return err
	}
	if err := readAddrs(h, r, label); err != nil {
		return err
	}
	if err := readRoutes(h, r, label); err != nil {
		return err
	}
	if lean {
		return nil
	}
	return readQdiscs(h, r, label)
}

// privileged gives an EPERM error of the kernel the hint that says what
// privilege nsh export and nsh graph need.
func privileged(err error, hint string) error {
	var e *nserr.Error
	if errors.Is(err, unix.EPERM) && errors.As(err, &e) {
		e.Hint = hint
	}
	return err
}

func (f *nsFile) label() string {
	if f.name == "" {
		return "nsh's network namespace"
	}
	return fmt.Sprintf("network namespace %q", f.name)
}

// retry repeats a netlink dump that links changing meanwhile interrupted.
func retry[T any](dump func() (T, error)) (T, error) {
	v, err := dump()
	for i := 0; i < 20 && errors.Is(err, netlink.ErrDumpInterrupted); i++ {
		v, err = dump()
	}
	return v, err
}

func readLinks(h *netlink.Handle, r *raw, label string) error {
	ls, err := retry(h.LinkList)
	if err != nil {
		return nserr.New("link show", label, err)
	}
	for _, nl := range ls {
		a := nl.Attrs()
		l := &Link{Name: a.Name, Kind: nl.Type(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
		if a.Flags&net.FlagLoopback != 0 {
			l.Kind = "loopback"
		}
		r.links[a.Index] = l
		if l.Kind == "veth" {
			r.veths[l] = veth{index: a.ParentIndex, nsid: a.NetNsID}
		}
		if vx, ok := nl.(*netlink.Vxlan); ok {
			l.VXLAN = &VXLAN{VNI: vx.VxlanId, Port: vx.Port}
			if vx.Group != nil && !vx.Group.IsUnspecified() {
				l.VXLAN.Remote = vx.Group.String()
			}
			if vx.SrcAddr != nil && !vx.SrcAddr.IsUnspecified() {
				l.VXLAN.Local = vx.SrcAddr.String()
			}
		}
		r.ns.Links = append(r.ns.Links, l)
	}
	for _, nl := range ls {
		if m := nl.Attrs().MasterIndex; m != 0 {
			if ml, ok := r.links[m]; ok {
				r.links[nl.Attrs().Index].Master = ml.Name
			}
		}
	}
	return nil
}

// kernelAddr reports whether the kernel made a by itself.
func kernelAddr(l *Link, a netlink.Addr) bool {
	ip := a.IPNet.IP
	ones, _ := a.IPNet.Mask.Size()
	switch {
	case a.Flags&unix.IFA_F_PERMANENT == 0: // SLAAC, DHCP's leases
		return true
	case ip.To4() == nil && ip.IsLinkLocalUnicast():
		return true
	case l.Kind == "loopback" && ip.Equal(net.IPv4(127, 0, 0, 1)) && ones == 8:
		return true
	case l.Kind == "loopback" && ip.Equal(net.IPv6loopback) && ones == 128:
		return true
	}
	return false
}

func readAddrs(h *netlink.Handle, r *raw, label string) error {
	as, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nserr.New("addr show", label, err)
	}
	sort.SliceStable(as, func(i, j int) bool { return addrLess(as[i].IPNet, as[j].IPNet) })
	for _, a := range as {
		l, ok := r.links[a.LinkIndex]
		if !ok || kernelAddr(l, a) {
			continue
		}
		l.Addrs = append(l.Addrs, a.IPNet.String())
	}
	return nil
}

// addrLess orders IPv4 before IPv6, then by address, then by prefix length.
func addrLess(a, b *net.IPNet) bool {
	a4, b4 := a.IP.To4(), b.IP.To4()
	if (a4 == nil) != (b4 == nil) {
		return a4 != nil
	}
	if c := bytes.Compare(a.IP.To16(), b.IP.To16()); c != 0 {
		return c < 0
	}
	ao, _ := a.Mask.Size()
	bo, _ := b.Mask.Size()
	return ao < bo
}

func readRoutes(h *netlink.Handle, r *raw, label string) error {
	rs, err := retry(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nserr.New("route show", label, err)
	}
	for _, rt := range rs {
		if rt.Protocol == unix.RTPROT_KERNEL || rt.Protocol == unix.RTPROT_RA {
			continue // connected subnets, IPv6 prefix and multicast routes
		}
		out := Route{Dst: "default", V6: rt.Family == netlink.FAMILY_V6, Metric: rt.Priority}
		if rt.Dst != nil {
			if ones, _ := rt.Dst.Mask.Size(); ones > 0 {
				out.Dst = rt.Dst.String()
			}
		}
		if rt.Gw != nil {
			out.Via = rt.Gw.String()
		}
		if l, ok := r.links[rt.LinkIndex]; ok {
			out.Dev = l.Name
		}
		switch {
		case rt.Type != unix.RTN_UNICAST:
			r.ns.Skipped = append(r.ns.Skipped, Skipped{What: fmt.Sprintf("%s route %s", routeType(rt.Type), out.Dst), Why: "route() adds unicast routes only"})
		case len(rt.MultiPath) > 0:
			r.ns.Skipped = append(r.ns.Skipped, Skipped{What: "multipath route " + out.Dst, Why: "route() takes one gateway"})
		case out.Via == "" && out.Dev == "":
			r.ns.Skipped = append(r.ns.Skipped, Skipped{What: "route " + out.Dst, Why: "it has neither gateway nor device"})
		default:
			r.ns.Routes = append(r.ns.Routes, out)
		}
	}
	return nil
}

// readQdiscs reads the root qdiscs someone added (the kernel's own have
// handle 0, or are noqueue).
func readQdiscs(h *netlink.Handle, r *raw, label string) error {
	qs, err := retry(func() ([]netlink.Qdisc, error) { return h.QdiscList(nil) })
	if err != nil {
		return nserr.New("qdisc show", label, err)
	}
	for _, q := range qs {
		a := q.Attrs()
		l, ok := r.links[a.LinkIndex]
		if !ok || a.Parent != netlink.HANDLE_ROOT || a.Handle == 0 || q.Type() == "noqueue" {
			continue
		}
		what := fmt.Sprintf("qdisc %s on %s", q.Type(), l.Name)
		switch t, _ := q.(*netlink.Tbf); {
		case t != nil && t.Peakrate == 0:
			l.Rate = t.Rate * 8
		case t != nil:
			r.ns.Skipped = append(r.ns.Skipped, Skipped{What: what, Why: "link.netem(rate=) sets no peak rate"})
		case q.Type() == "netem":
			r.ns.Skipped = append(r.ns.Skipped, Skipped{What: what, Why: "nsh export does not read netem's parameters yet"})
		default:
			r.ns.Skipped = append(r.ns.Skipped, Skipped{What: what, Why: "link.netem() makes tbf and netem qdiscs only"})
		}
	}
	return nil
}

func routeType(t int) string {
	switch t {
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	case unix.RTN_LOCAL:
		return "local"
	case unix.RTN_BROADCAST:
		return "broadcast"
	case unix.RTN_MULTICAST:
		return "multicast"
	}
	return "type-" + strconv.Itoa(t)
}

// readSysctls reads Sysctls in the calling thread's network namespace;
// keys the namespace does not have (IPv6 turned off at boot) are left out.
func readSysctls() (map[string]string, error) {
	out := map[string]string{}
	for _, k := range Sysctls {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nserr.New("read", p, err)
		}
		out[k] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// scratch works in a network namespace made for the purpose on a thread of
// its own (it dies with the thread): it reads Sysctls there, the defaults,
// and says which namespaces the netnsids of each of the first nread of nss
// name. netnsids are local to each namespace; the scratch one gives every
// namespace of nss an id of its own (its index), then asks the kernel for
// the netnsids of each namespace read along with their ids in the scratch
// namespace (RTM_GETNSID dump with NETNSA_TARGET_NSID, Linux 4.20+): one
// request per namespace. Nothing but the scratch namespace is changed.
func scratch(nss []*nsFile, nread int) (map[string]string, []map[int]*nsFile, error) {
	var defaults map[string]string
	peers := make([]map[int]*nsFile, nread)
	err := nsthread.Unshare(nil, unix.CLONE_NEWNET, func() error {
		var err error
		if defaults, err = readSysctls(); err != nil {
			return err
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nserr.New("socket", "netlink route", err)
		}
		defer h.Close()
		for i, f := range nss {
			if err := h.SetNetNsIdByFd(f.fd, i); err != nil {
				return nserr.New("set netnsid of", f.label()+" in a scratch network namespace", err)
			}
		}
		// The kernel reads a dump request's attributes only from a
		// socket that asked for strict checking.
		sk, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
		if err != nil {
			return nserr.New("socket", "netlink route", err)
		}
		defer sk.Close()
		if err := unix.SetsockoptInt(sk.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1); err != nil {
			return nserr.New("setsockopt", "NETLINK_GET_STRICT_CHK", err)
		}
		sh := &nl.SocketHandle{Socket: sk}
		for i, f := range nss[:nread] {
			if peers[i], err = netnsids(sh, nss, i); err != nil {
				return nserr.New("list netnsids of", f.label(), err)
			}
		}
		return nil
	})
	return defaults, peers, privileged(err, "nsh compares sysctls with a fresh network namespace's, and making one needs root")
}

// netnsids lists the netnsids of nss[target] with the namespaces of nss
// they name, through sh, a socket of the network namespace where each of
// nss has its index as netnsid.
func netnsids(sh *nl.SocketHandle, nss []*nsFile, target int) (map[int]*nsFile, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETNSID, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sh}
	req.AddData(nl.NewRtGenMsg())
	req.AddData(nl.NewRtAttr(unix.NETNSA_TARGET_NSID, nl.Uint32Attr(uint32(target))))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWNSID)
	if err != nil {
		return nil, err
	}
	out := map[int]*nsFile{}
	for _, m := range msgs {
		g := nl.DeserializeRtGenMsg(m)
		attrs, err := nl.ParseRouteAttr(m[g.Len():])
		if err != nil {
			return nil, err
		}
		id, cur := -1, -1
		for _, a := range attrs {
			if len(a.Value) < 4 {
				continue
			}
			v := int(int32(nl.NativeEndian().Uint32(a.Value)))
			switch a.Attr.Type {
			case unix.NETNSA_NSID:
				id = v
			case unix.NETNSA_CURRENT_NSID:
				cur = v
			}
		}
		if id >= 0 && cur >= 0 && cur < len(nss) {
			out[id] = nss[cur]
		}
	}
	return out, nil
}

// resolvePeers fills in the Peer of every veth of r: a peer in another
// namespace is named by its ifindex there and the netnsid that namespace
// has in r's (see scratch).
func resolvePeers(r *raw, read map[[2]uint64]*raw) {
	for l, v := range r.veths {
		if v.nsid < 0 { // the peer is in the same namespace
			l.Peer = &Peer{Where: InRead, Netns: r.ns.Name}
			if pl, ok := r.links[v.index]; ok {
				l.Peer.Name = pl.Name
			}
			continue
		}
		g, ok := r.nsids[v.nsid]
		pr := (*raw)(nil)
		if ok {
			pr = read[[2]uint64{g.dev, g.ino}]
		}
		switch {
		case !ok:
			l.Peer = &Peer{Where: InUnnamed}
		case pr != nil:
			l.Peer = &Peer{Where: InRead, Netns: pr.ns.Name}
			if pl, ok := pr.links[v.index]; ok {
				l.Peer.Name = pl.Name
			}
		case g.name == "": // the reader's own namespace
			l.Peer = &Peer{Where: InHost}
		default:
			l.Peer = &Peer{Where: InNamed, Netns: g.name}
		}
	}
}

// ReadAt reads the network namespace at path (any nsfs file: an entry of
// /run/netns, a bind mount elsewhere, /proc/PID/ns/net), calling it name.
// Its veths' peers are not resolved (Link.Peer is nil).
func ReadAt(name, path string, opt Options) (*Netns, error) {
	f, err := openNetns(name, path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(f.fd)
	rs, err := readAll([]*nsFile{f}, opt.Lean)
	if err != nil {
		return nil, err
	}
	t := &Topology{Netns: []*Netns{rs[0].ns}}
	t.sortAll()
	return rs[0].ns, nil
}
