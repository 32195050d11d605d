package builtins_test

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/interp"
)

// benchRun executes setup in a fresh run and returns the run, a thread of
// it and the setup's globals.
func benchRun(b *testing.B, setup string) (*interp.Run, *starlark.Thread, starlark.StringDict) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root (CAP_NET_ADMIN)")
	}
	in := interp.New(interp.Config{Builtins: builtins.Table()})
	r := in.NewRun(".", []string{"bench"})
	g, err := r.ExecFile("bench.star", setup)
	if err != nil {
		r.Close()
		b.Fatalf("%s", interp.FormatError(err))
	}
	return r, r.NewThread("bench"), g
}

func benchLoop(b *testing.B, th *starlark.Thread, fn starlark.Value) {
	b.Helper()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := starlark.Call(th, fn, starlark.Tuple{starlark.MakeInt(i)}, nil); err != nil {
			b.Fatalf("%s", interp.FormatError(err))
		}
	}
	b.StopTimer()
}

// BenchmarkVeth: one veth pair per iteration between two namespaces, the
// peer born in its namespace, both ends addressed and up (what a topology
// recipe does per link).
func BenchmarkVeth(b *testing.B) {
	r, th, g := benchRun(b, `
start = namespaces()
x = unshare("net").net
y = unshare("net").net
setns(start)
def one(i):
    veth("nt-b%d" % i, "nt-c%d" % i, ns = x, peer_ns = y,
         addr = "10.%d.%d.1/30" % (100 + i // 16384, (i // 64) % 256),
         peer_addr = "10.%d.%d.2/30" % (100 + i // 16384, (i // 64) % 256))
`)
	defer r.Close()
	benchLoop(b, th, g["one"])
}

// BenchmarkVethBare: the pair alone, no addresses.
func BenchmarkVethBare(b *testing.B) {
	r, th, g := benchRun(b, `
start = namespaces()
x = unshare("net").net
y = unshare("net").net
setns(start)
def one(i):
    veth("nt-b%d" % i, "nt-c%d" % i, ns = x, peer_ns = y)
`)
	defer r.Close()
	benchLoop(b, th, g["one"])
}

// BenchmarkAddr: one address added to a link per iteration.
func BenchmarkAddr(b *testing.B) {
	r, th, g := benchRun(b, `
start = namespaces()
x = unshare("net").net
setns(start)
l, _ = veth("nt-ba", "nt-bb", ns = x, peer_ns = x)
def one(i):
    l.add_addr("10.%d.%d.%d/32" % (1 + i // 65536, (i // 256) % 256, i % 256))
`)
	defer r.Close()
	benchLoop(b, th, g["one"])
}

// BenchmarkVethRawNetlink is BenchmarkVeth without nsh: the same netlink
// requests from Go, for the overhead ratio (issue 7).
func BenchmarkVethRawNetlink(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (CAP_NET_ADMIN)")
	}
	var fds [2]*os.File
	var hs [2]*netlink.Handle
	for i := range fds {
		err := nsthread.Unshare(nil, unix.CLONE_NEWNET, func() error {
			f, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				return err
			}
			h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
			if err != nil {
				f.Close()
				return err
			}
			fds[i], hs[i] = f, h
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		defer fds[i].Close()
		defer hs[i].Close()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x, y := fmt.Sprintf("nt-b%d", i), fmt.Sprintf("nt-c%d", i)
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: x, Flags: net.FlagUp}, PeerName: y, PeerNamespace: netlink.NsFd(fds[1].Fd())}
		if err := hs[0].LinkAdd(v); err != nil {
			b.Fatal(err)
		}
		pfx := fmt.Sprintf("10.%d.%d.", 100+i/16384, (i/64)%256)
		for j, name := range []string{x, y} {
			l, err := hs[j].LinkByName(name)
			if err != nil {
				b.Fatal(err)
			}
			a, _ := netlink.ParseAddr(fmt.Sprintf("%s%d/30", pfx, j+1))
			if err := hs[j].AddrAdd(l, a); err != nil {
				b.Fatal(err)
			}
			if j == 1 {
				if err := hs[j].LinkSetUp(l); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.StopTimer()
}
