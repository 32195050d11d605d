// Package nlhandle keeps one netlink handle per network namespace for a run.
// A handle's sockets are opened on a thread that has joined the namespace
// (netlink.NewHandle opens them in the calling thread's netns), after which
// the handle works from any goroutine: requests go to the namespace its
// sockets were born in. The cache is keyed by the namespace's device and
// inode and is closed once, at the end of the run.
package nlhandle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// Handle is a netlink handle bound to one network namespace: one socket
// (a descriptor) per namespace, whatever else is done there.
type Handle struct {
	*netlink.Handle
}

// IGMP6 is /proc/net/igmp6 of one network namespace, open for reading the
// IPv6 multicast groups its links have joined.
type IGMP6 struct {
	f   *os.File
	buf []byte
}

// OpenIGMP6 opens /proc/net/igmp6 of ns; nil (and no error) when ns has no
// IPv6. Close it after use.
func (c *Cache) OpenIGMP6(ns *nsctx.NS) (*IGMP6, error) {
	var f *os.File
	err := c.In(ns, func() error {
		// /proc/thread-self/net is the calling thread's namespace, and an
		// open file keeps showing that namespace whoever reads it later.
		var err error
		f, err = os.Open("/proc/thread-self/net/igmp6")
		if errors.Is(err, fs.ErrNotExist) {
			f, err = nil, nil // no IPv6 here
		}
		return nserr.New("open", "/proc/thread-self/net/igmp6", err)
	})
	if err != nil || f == nil {
		return nil, err
	}
	return &IGMP6{f: f, buf: make([]byte, 64<<10)}, nil
}

// Close closes the file.
func (g *IGMP6) Close() error { return g.f.Close() }

// Joined reports whether the link named ifname has joined every IPv6
// multicast group in groups.
func (g *IGMP6) Joined(ifname string, groups []net.IP) (bool, error) {
	// A seq_file regenerates its text on a read from offset 0.
	n, err := g.f.ReadAt(g.buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, nserr.New("read", "/proc/net/igmp6", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(g.buf[:n]), "\n") {
		// idx ifname group users flags timer
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == ifname {
			have[f[2]] = true
		}
	}
	for _, gr := range groups {
		if !have[hex.EncodeToString(gr.To16())] {
			return false, nil
		}
	}
	return true, nil
}

// SyncLinks asks the kernel for the link state of the named links of ns
// (ETHTOOL_GLINK), which makes it apply each link's pending carrier change
// now instead of when its link-watch work next runs (up to a second later;
// veth pairs whose ends share an ifindex wait that long). IPv6 does not
// start on a link before that, so a ping sent at once would be lost. The
// ioctl goes through a socket opened in ns for the purpose and closed
// after. A link that is gone is skipped.
func (c *Cache) SyncLinks(ns *nsctx.NS, names ...string) error {
	return c.In(ns, func() error {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nserr.New("socket", "unix dgram", err)
		}
		defer unix.Close(fd)
		for _, name := range names {
			if err := syncLink(fd, name); err != nil {
				return err
			}
		}
		return nil
	})
}

func syncLink(fd int, name string) error {
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	ev := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_GLINK}
	copy(ifr.name[:], name)
	ifr.data = uintptr(unsafe.Pointer(&ev))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&ev)
	if errno != 0 && errno != unix.EOPNOTSUPP && errno != unix.ENODEV {
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
	return nsthread.Join{Fd: ns.Fd(), Type: unix.CLONE_NEWNET, Name: ns.String(), Hold: ns}
}

// Open opens a route-netlink handle in the calling thread's network
// namespace. Callers that are already on a thread inside a namespace (the
// one that just created it) use it with Put to save a thread hop.
func Open() (*Handle, error) {
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nserr.New("socket", "netlink route", err)
	}
	return &Handle{Handle: nh}, nil
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

// Drop closes the handle of the network namespace dev/ino, if any: the
// run has released that namespace (nsctx.Table.OnRelease).
func (c *Cache) Drop(dev, ino uint64) {
	c.mu.Lock()
	h, ok := c.handles[key{dev, ino}]
	delete(c.handles, key{dev, ino})
	c.mu.Unlock()
	if ok {
		h.Close()
	}
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
