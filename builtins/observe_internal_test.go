package builtins

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestNudState(t *testing.T) {
	for _, c := range []struct {
		s    int
		want string
	}{
		{0, "none"},
		{netlink.NUD_REACHABLE, "reachable"},
		{netlink.NUD_STALE, "stale"},
		{netlink.NUD_INCOMPLETE, "incomplete"},
		{netlink.NUD_PERMANENT | netlink.NUD_NOARP, "noarp|permanent"},
	} {
		if got := nudState(c.s); got != c.want {
			t.Errorf("nudState(%#x) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestTcHandles(t *testing.T) {
	for _, c := range []struct {
		h              uint32
		handle, parent string
	}{
		{netlink.MakeHandle(0x8001, 0), "8001:", "8001:"},
		{netlink.MakeHandle(1, 1), "1:1", "1:1"},
		{netlink.HANDLE_ROOT, "ffff:ffff", "root"},
		{netlink.HANDLE_INGRESS, "ffff:fff1", "ingress"},
		{0, "0:", "0:"},
	} {
		if got := tcHandle(c.h); got != c.handle {
			t.Errorf("tcHandle(%#x) = %q, want %q", c.h, got, c.handle)
		}
		if got := tcParent(c.h); got != c.parent {
			t.Errorf("tcParent(%#x) = %q, want %q", c.h, got, c.parent)
		}
	}
}

func TestParseRouteWant(t *testing.T) {
	for _, c := range []struct {
		in    string
		exact bool
		text  string
	}{
		{"default", true, "default"},
		{"0.0.0.0/0", true, "default"},
		{"::/0", true, "::/0"},
		{"10.0.2.0/24", true, "10.0.2.0/24"},
		{"10.0.2.7/24", true, "10.0.2.0/24"}, // host bits cleared
		{"10.0.2.7/32", true, "10.0.2.7/32"},
		{"10.0.2.7", false, "10.0.2.7"}, // a lookup
		{" fd00::5 ", false, "fd00::5"},
	} {
		w, err := parseRouteWant(c.in)
		if err != nil || w.exact != c.exact || w.text != c.text {
			t.Errorf("parseRouteWant(%q) = %+v, %v; want exact %v, %q", c.in, w, err, c.exact, c.text)
		}
	}
	for _, bad := range []string{"", "10.0.2", "10.0.2.0/33", "10.0.2.0/024", "::ffff:10.0.0.1", "host"} {
		if _, err := parseRouteWant(bad); err == nil {
			t.Errorf("parseRouteWant(%q) accepted", bad)
		}
	}
}

func TestLinkIsUp(t *testing.T) {
	mk := func(oper netlink.LinkOperState, flags net.Flags, raw uint32) netlink.Link {
		return &netlink.Device{LinkAttrs: netlink.LinkAttrs{OperState: oper, Flags: flags, RawFlags: raw}}
	}
	for _, c := range []struct {
		l    netlink.Link
		up   bool
		seen string
	}{
		{mk(netlink.OperUp, net.FlagUp, unix.IFF_UP|unix.IFF_LOWER_UP), true, "operstate up, admin up, carrier"},
		{mk(netlink.OperUnknown, net.FlagUp, unix.IFF_UP|unix.IFF_LOWER_UP), true, "operstate unknown, admin up, carrier"}, // lo
		{mk(netlink.OperUnknown, net.FlagUp, unix.IFF_UP), false, "operstate unknown, admin up, no carrier"},
		{mk(netlink.OperDown, net.FlagUp, unix.IFF_UP), false, "operstate down, admin up, no carrier"},
		{mk(netlink.OperLowerLayerDown, net.FlagUp, unix.IFF_UP), false, "operstate lower-layer-down, admin up, no carrier"},
		{mk(netlink.OperDown, 0, 0), false, "operstate down, admin down, no carrier"},
	} {
		if got := linkIsUp(c.l); got != c.up {
			t.Errorf("linkIsUp(%s) = %v", linkSeen(c.l), got)
		}
		if got := linkSeen(c.l); got != c.seen {
			t.Errorf("linkSeen = %q, want %q", got, c.seen)
		}
	}
	if linkSeen(nil) != "absent" {
		t.Errorf("linkSeen(nil) = %q", linkSeen(nil))
	}
}
