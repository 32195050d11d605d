// Package nlhandle keeps one netlink handle per network namespace for a run.
// A handle's sockets are opened on a thread that has joined the namespace
// (netlink.NewHandle opens them in the calling thread's netns), after which
// the handle works from any goroutine: requests go to the namespace its
// sockets were born in. The cache is keyed by the namespace's device and
// inode and is closed once, at the end of the run.
package nlhandle

import (
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
)

type key struct{ dev, ino uint64 }

// Cache holds the run's handles, one per network namespace.
type Cache struct {
	mu      sync.Mutex
	handles map[key]*netlink.Handle
	closed  bool
	// initial is the network namespace every unpinned thread of the
	// process is in; its handle is opened without a thread hop.
	initial *nsctx.NS
}

// New returns an empty cache. initial is the network namespace nsh runs in.
func New(initial *nsctx.NS) *Cache {
	return &Cache{handles: map[key]*netlink.Handle{}, initial: initial}
}

func keyOf(ns *nsctx.NS) key { return key{ns.Dev, ns.Ino} }

// Get returns the handle of ns, opening it inside ns on first use.
func (c *Cache) Get(ns *nsctx.NS) (*netlink.Handle, error) {
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
		err = nsthread.Do([]nsthread.Join{Join(ns)}, func() error {
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

// Join is the setns step that enters ns, for code that must open other
// sockets (ICMP, TCP) inside a network namespace.
func Join(ns *nsctx.NS) nsthread.Join {
	return nsthread.Join{Fd: ns.Fd(), Type: unix.CLONE_NEWNET, Name: ns.String()}
}

// Open opens a route-netlink handle in the calling thread's network
// namespace. Callers that are already on a thread inside a namespace (the
// one that just created it) use it with Put to save a thread hop.
func Open() (*netlink.Handle, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	return h, nserr.New("socket", "netlink route", err)
}

// Put stores h as the handle of ns and returns the handle the cache keeps:
// h, or the one another caller stored first (h is then closed); nil once
// the cache is closed.
func (c *Cache) Put(ns *nsctx.NS, h *netlink.Handle) *netlink.Handle {
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
