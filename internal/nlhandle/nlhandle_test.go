package nlhandle_test

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nsthread"
)

func TestHandlePerNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates a network namespace)")
	}
	tab, err := nsctx.NewTable()
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	var fresh *nsctx.NS
	err = nsthread.Unshare(nil, unix.CLONE_NEWNET, func() error {
		ns, err := tab.OpenThreadSelf(unix.CLONE_NEWNET)
		if err == nil {
			fresh = ns[0]
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	hops := nsthread.NewNetRunner()
	defer hops.Close()
	c := nlhandle.New(tab.Initial.Get("net"), hops)
	h, err := c.Get(fresh)
	if err != nil {
		t.Fatal(err)
	}
	// Opened inside the fresh namespace: only its loopback is there,
	// whatever goroutine asks.
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Errorf("links seen through the handle: %d, want only lo", len(links))
	}
	if h2, _ := c.Get(fresh); h2 != h {
		t.Errorf("a second Get opened a second handle")
	}
	hi, err := c.Get(tab.Initial.Get("net"))
	if err != nil || hi == h {
		t.Fatalf("initial namespace handle: %v (same as fresh: %v)", err, hi == h)
	}
	// In runs inside the namespace.
	var ino uint64
	err = c.In(fresh, func() error {
		var st unix.Stat_t
		err := unix.Stat("/proc/thread-self/ns/net", &st)
		ino = st.Ino
		return err
	})
	if err != nil || ino != fresh.Ino {
		t.Errorf("In ran in net inode %d (%v), want %d", ino, err, fresh.Ino)
	}
	if err := c.SyncLinks(fresh, "lo", "no-such-link"); err != nil {
		t.Errorf("SyncLinks(lo, no-such-link): %v", err)
	}
	// No link has joined a made-up group.
	g, err := c.OpenIGMP6(fresh)
	if err != nil || g == nil {
		t.Fatalf("OpenIGMP6: %v, %v", g, err)
	}
	if ok, err := g.Joined("lo", []net.IP{net.ParseIP("ff02::1:ff12:3456")}); ok || err != nil {
		t.Errorf("Joined(lo, ff02::1:ff12:3456) = %v, %v; want false", ok, err)
	}
	if ok, err := g.Joined("lo", nil); !ok || err != nil {
		t.Errorf("Joined(lo, no groups) = %v, %v; want true", ok, err)
	}
	g.Close()
	c.Close()
	if _, err := c.Get(fresh); err == nil {
		t.Errorf("Get after Close succeeded")
	}
}
