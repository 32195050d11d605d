// Package nlhandle keeps one netlink handle per network namespace for a run.
// A handle's sockets are opened on a thread that has joined the namespace
// (netlink.NewHandle opens them in the calling thread's netns), after which
// the handle works from any goroutine: requests go to the namespace its
// sockets were born in. The cache is keyed by the namespace's device and
// inode and is closed once, at the end of the run.
package nlhandle

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
)

type key struct{ dev, ino uint64 }

// Handle is a netlink handle bound to one network namespace, with a plain
// socket born in the same namespace for the few requests netlink lacks
// (the ethtool link query).
type Handle struct {
	*netlink.Handle
	sock    int
	mu      sync.Mutex
	igmp6   *os.File // /proc/net/igmp6 of the namespace; nil without IPv6
	igmpBuf []byte
}

// Close closes the handle's sockets and files.
func (h *Handle) Close() {
	h.Handle.Close()
	unix.Close(h.sock)
	if h.igmp6 != nil {
		h.igmp6.Close()
	}
}

// Joined reports whether the link named ifname has joined every IPv6
// multicast group in groups, as /proc/net/igmp6 of the handle's namespace
// lists them. Without IPv6 in the namespace it reports true.
func (h *Handle) Joined(ifname string, groups []net.IP) (bool, error) {
	if h.igmp6 == nil || len(groups) == 0 {
		return true, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.igmpBuf == nil {
		h.igmpBuf = make([]byte, 64<<10)
	}
	// A seq_file regenerates its text on a read from offset 0.
	n, err := h.igmp6.ReadAt(h.igmpBuf, 0)
	if err != nil && err != io.EOF {
		return false, nserr.New("read", "/proc/net/igmp6", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(h.igmpBuf[:n]), "\n") {
		// idx ifname group users flags timer
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == ifname {
			have[f[2]] = true
		}
	}
	for _, g := range groups {
		if !have[hex.EncodeToString(g.To16())] {
			return false, nil
		}
	}
	return true, nil
}

// SyncLink asks the kernel for the link state of the named link
// (ETHTOOL_GLINK), which makes it apply the link's pending carrier change
// now instead of when its link-watch work next runs (up to a second later;
// veth pairs whose ends share an ifindex wait that long). IPv6 does not
// start on a link before that, so a ping sent at once would be lost.
func (h *Handle) SyncLink(name string) error {
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	ev := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_GLINK}
	copy(ifr.name[:], name)
	ifr.data = uintptr(unsafe.Pointer(&ev))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(h.sock), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&ev)
	if errno != 0 && errno != unix.EOPNOTSUPP {
		return nserr.New("ioctl ETHTOOL_GLINK", fmt.Sprintf("%q", name), errno)
	}
	return nil
}

// Cache holds the run's handles, one per network namespace.
type Cache struct {
	mu      sync.Mutex
	handles map[key]*Handle
	closed  bool
	// initial is the network namespace every unpinned thread of the
	// process is in; its handle is opened without a thread hop.
	initial *nsctx.NS
	// hops enters the other namespaces, on the calling thread.
	hops *nsthread.NetRunner
}

// New returns an empty cache. initial is the network namespace nsh runs in;
// hops is the run's runner for jobs in other network namespaces.
func New(initial *nsctx.NS, hops *nsthread.NetRunner) *Cache {
	return &Cache{handles: map[key]*Handle{}, initial: initial, hops: hops}
}

func keyOf(ns *nsctx.NS) key { return key{ns.Dev, ns.Ino} }

// Get returns the handle of ns, opening it inside ns on first use.
func (c *Cache) Get(ns *nsctx.NS) (*Handle, error) {
	if ns == nil || ns.Kind.Name != "net" {
		return nil, fmt.Errorf("nlhandle: %v is not a network namespace", ns)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("nlhandle: the run is over")
	}
	h, ok := c.handles[keyOf(ns)]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	var err error
	if nsctx.Same(ns, c.initial) {
		h, err = Open()
	} else {
		err = c.hops.Do([]nsthread.Join{Join(ns)}, func() error {
			var err error
			h, err = Open()
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	if h = c.Put(ns, h); h == nil {
		return nil, fmt.Errorf("nlhandle: the run is over")
	}
	return h, nil
}

// In runs fn inside the network namespace ns, so that sockets fn opens are
// born there (and then work from any goroutine). For the namespace nsh runs
// in, fn runs on the calling goroutine: every unpinned thread is already
// there. Otherwise fn runs on the calling thread, locked, after it has
// joined ns (see nsthread.NetRunner): fn must not change other namespaces.
func (c *Cache) In(ns *nsctx.NS, fn func() error) error {
	if nsctx.Same(ns, c.initial) {
		return fn()
	}
	return c.hops.Do([]nsthread.Join{Join(ns)}, fn)
}

// Join is the setns step that enters ns, for code that must open other
// sockets (ICMP, TCP) inside a network namespace.
func Join(ns *nsctx.NS) nsthread.Join {
	return nsthread.Join{Fd: ns.Fd(), Type: unix.CLONE_NEWNET, Name: ns.String()}
}

// Open opens a route-netlink handle in the calling thread's network
// namespace. Callers that are already on a thread inside a namespace (the
// one that just created it) use it with Put to save a thread hop.
func Open() (*Handle, error) {
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nserr.New("socket", "netlink route", err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		nh.Close()
		return nil, nserr.New("socket", "unix dgram", err)
	}
	h := &Handle{Handle: nh, sock: fd}
	// /proc/thread-self/net is the calling thread's namespace, and an open
	// file keeps showing that namespace whoever reads it later.
	if h.igmp6, err = os.Open("/proc/thread-self/net/igmp6"); err != nil {
		if !os.IsNotExist(err) {
			h.Close()
			return nil, nserr.New("open", "/proc/thread-self/net/igmp6", unwrapPath(err))
		}
		h.igmp6 = nil // no IPv6 here
	}
	return h, nil
}

// Put stores h as the handle of ns and returns the handle the cache keeps:
// h, or the one another caller stored first (h is then closed); nil once
// the cache is closed.
func (c *Cache) Put(ns *nsctx.NS, h *Handle) *Handle {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.handles[keyOf(ns)]; ok || c.closed {
		h.Close()
		return old
	}
	c.handles[keyOf(ns)] = h
	return h
}

// Close closes every handle. Later calls to Get fail.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, h := range c.handles {
		h.Close()
		delete(c.handles, k)
	}
	c.closed = true
	return nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
