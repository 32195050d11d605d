// Command rawnet is the limit the topology benchmarks compare against: the
// same chain of network namespaces as bench/chain.star, the ip script and the
// ip -batch file, built with netlink directly and nothing else.
//
//	rawnet setup N      make bn-c0..bn-c<N-1> (bind-mounted on /run/netns, as
//	                    "ip netns add" does) and a veth between neighbours
//	rawnet teardown N   delete them again, as "ip netns del" does
//	rawnet scale N      hold N namespaces, each with a veth to a bridge in a
//	                    hub namespace, in one process; print phase marks
//	rawnet scale N noipv6   the same with IPv6 disabled in every namespace:
//	                    IPv6 DAD, router and MLD multicast from each new
//	                    port is flooded by the bridge to every other port,
//	                    which makes the default case quadratic in N
//	rawnet ping NAME ADDR  send one ICMP echo from netns NAME to ADDR and wait
//	                    a second for the reply (the connectivity check; this
//	                    machine has no ping binary)
//
// Each namespace is made by unshare(2) on the main thread, locked, and is
// then held by file descriptor; each veth is created from a netlink handle
// bound to one namespace with its peer created directly in the other
// (PeerNamespace), so no end ever appears in the host.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const runNetns = "/run/netns"

func main() {
	if len(os.Args) == 4 && os.Args[1] == "ping" {
		if err := ping(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "rawnet:", err)
			os.Exit(1)
		}
		return
	}
	noIPv6 := len(os.Args) == 4 && os.Args[1] == "scale" && os.Args[3] == "noipv6"
	if len(os.Args) != 3 && !noIPv6 {
		fmt.Fprintln(os.Stderr, "usage: rawnet setup|teardown N | scale N [noipv6] | ping NAME ADDR")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 2 {
		fmt.Fprintln(os.Stderr, "rawnet: N must be an integer >= 2")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "setup":
		err = setup(n)
	case "teardown":
		err = teardown(n)
	case "scale":
		err = scale(n, noIPv6)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawnet:", err)
		os.Exit(1)
	}
}

// chainAddr returns the /30 of link i of the chain: .1 on the left end,
// .2 on the right. 10.200.0.0/16 holds 16384 of them.
func chainAddr(i, end int) *netlink.Addr {
	ip := net.IPv4(10, 200, byte(i/64), byte(i%64*4+end)).To4()
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(30, 32)}}
}

// newNetns makes count network namespaces from the calling (locked) thread
// and returns their descriptors; the thread is back in its own netns after.
// With noIPv6, links made later in them get no IPv6 (default.disable_ipv6).
func newNetns(count int, noIPv6 bool) ([]netns.NsHandle, error) {
	origin, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer origin.Close()
	hs := make([]netns.NsHandle, 0, count)
	for range count {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return hs, fmt.Errorf("unshare net: %w", err)
		}
		if noIPv6 {
			// /proc/sys/net is the netns of the thread that opens it.
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0); err != nil {
				return hs, err
			}
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return hs, err
		}
		hs = append(hs, netns.NsHandle(fd))
	}
	if err := netns.Set(origin); err != nil {
		return hs, fmt.Errorf("setns back: %w", err)
	}
	return hs, nil
}

// sharedRunNetns makes /run/netns a shared mount point, as iproute2 does,
// so namespaces bound there appear in every mount namespace.
func sharedRunNetns() error {
	if err := os.MkdirAll(runNetns, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", runNetns, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		if err := unix.Mount(runNetns, runNetns, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		err = unix.Mount("", runNetns, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	return err
}

// persist bind-mounts the namespace held by h on /run/netns/name.
func persist(h netns.NsHandle, name string) error {
	p := filepath.Join(runNetns, name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	f.Close()
	src := fmt.Sprintf("/proc/self/fd/%d", int(h))
	if err := unix.Mount(src, p, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(p)
		return fmt.Errorf("bind %s: %w", p, err)
	}
	return nil
}

// handles opens one netlink handle inside each namespace.
func handles(nss []netns.NsHandle) ([]*netlink.Handle, error) {
	hs := make([]*netlink.Handle, len(nss))
	for i, ns := range nss {
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	return hs, nil
}

func loUp(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}

// vethEnd addresses the end named name in h's namespace and brings it up.
func vethEnd(h *netlink.Handle, name string, a *netlink.Addr) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	if a != nil {
		if err := h.AddrAdd(l, a); err != nil {
			return fmt.Errorf("addr %s on %s: %w", a.IPNet, name, err)
		}
	}
	return h.LinkSetUp(l)
}

func setup(n int) error {
	runtime.LockOSThread()
	if err := sharedRunNetns(); err != nil {
		return err
	}
	// Phase marks on stderr show where the time goes.
	t0 := time.Now()
	phase := func(what string) { fmt.Fprintf(os.Stderr, "phase %s %v\n", what, time.Since(t0)) }
	nss, err := newNetns(n, false)
	if err != nil {
		return err
	}
	phase("unshare")
	for i, ns := range nss {
		if err := persist(ns, fmt.Sprintf("bn-c%d", i)); err != nil {
			return err
		}
	}
	phase("persist")
	hs, err := handles(nss)
	if err != nil {
		return err
	}
	phase("handles")
	defer phase("links")
	for i, h := range hs {
		if err := loUp(h); err != nil {
			return err
		}
		if i == 0 {
			continue
		}
		// Link i-1 joins namespace i-1 ("bn-r") and namespace i ("bn-l").
		left := hs[i-1]
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: "bn-r"},
			PeerName:      "bn-l",
			PeerNamespace: netlink.NsFd(nss[i]),
		}
		if err := left.LinkAdd(v); err != nil {
			return fmt.Errorf("veth in bn-c%d: %w", i-1, err)
		}
		if err := vethEnd(left, "bn-r", chainAddr(i-1, 1)); err != nil {
			return err
		}
		if err := vethEnd(h, "bn-l", chainAddr(i-1, 2)); err != nil {
			return err
		}
	}
	return nil
}

// teardown does what "ip netns del" does for each namespace: detach the
// bind mount and remove the file. The kernel frees each namespace, and the
// veths in it, once its last reference is gone.
func teardown(n int) error {
	var errs []error
	for i := range n {
		p := filepath.Join(runNetns, fmt.Sprintf("bn-c%d", i))
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("umount %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// scale holds n namespaces, each with a veth to a bridge in a hub
// namespace, prints "mark setup" when built, holds them for a moment so the
// harness can count descriptors and RSS, prints "mark hold", and tears down
// by closing everything (the namespaces are never persisted).
func scale(n int, noIPv6 bool) error {
	runtime.LockOSThread()
	t0 := time.Now()
	nss, err := newNetns(n+1, noIPv6)
	if err != nil {
		return err
	}
	// Phase marks on stderr show where the time goes.
	fmt.Fprintf(os.Stderr, "phase netns %d %v\n", n+1, time.Since(t0))
	hub, err := netlink.NewHandleAt(nss[0], unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "bn-hub"}}
	if err := hub.LinkAdd(br); err != nil {
		return err
	}
	if err := hub.LinkSetUp(br); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		h, err := netlink.NewHandleAt(nss[i], unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("bn-h%d", i)
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: name, MasterIndex: br.Index},
			PeerName:      "bn-eth0",
			PeerNamespace: netlink.NsFd(nss[i]),
		}
		if err := hub.LinkAdd(v); err != nil {
			return fmt.Errorf("veth %s: %w", name, err)
		}
		if err := vethEnd(hub, name, nil); err != nil {
			return err
		}
		if err := loUp(h); err != nil {
			return err
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 201, byte(i/256), byte(i%256)).To4(), Mask: net.CIDRMask(16, 32)}}
		if err := vethEnd(h, "bn-eth0", a); err != nil {
			return err
		}
		h.Close() // the limit keeps one descriptor per namespace
		if i%(n/4) == 0 {
			fmt.Fprintf(os.Stderr, "phase veths %d %v\n", i, time.Since(t0))
		}
	}
	fmt.Printf("mark setup %d\n", time.Now().UnixNano())
	time.Sleep(500 * time.Millisecond)
	fmt.Printf("mark hold %d\n", time.Now().UnixNano())
	hub.Close()
	for _, ns := range nss {
		ns.Close()
	}
	return nil
}

// ping sends one ICMP echo request from inside the named netns to addr and
// waits up to a second for the reply.
func ping(name, addr string) error {
	dst := net.ParseIP(addr).To4()
	if dst == nil {
		return fmt.Errorf("ping: %q is not an IPv4 address", addr)
	}
	runtime.LockOSThread() // never unlocked: the thread stays in the netns
	ns, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	if err := netns.Set(ns); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("icmp socket: %w", err)
	}
	defer unix.Close(fd) // read-only use: a close error changes nothing
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	req := []byte{8, 0, 0, 0, 0, 0, 0, 1, 'n', 's', 'h'} // echo request, seq 1
	sum := 0
	for i := 0; i+1 < len(req); i += 2 {
		sum += int(req[i])<<8 | int(req[i+1])
	}
	sum += int(req[len(req)-1]) << 8
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	req[2], req[3] = byte(^sum>>8), byte(^sum)
	to := &unix.SockaddrInet4{Addr: [4]byte(dst)}
	if err := unix.Sendto(fd, req, 0, to); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("ping %s from %s: no reply: %w", addr, name, err)
		}
		// A raw socket delivers the IP header too; the reply is type 0.
		hl := int(buf[0]&0x0f) * 4
		if f, ok := from.(*unix.SockaddrInet4); ok && f.Addr == to.Addr && n >= hl+8 && buf[hl] == 0 {
			fmt.Printf("ping %s from %s: reply\n", addr, name)
			return nil
		}
	}
}
