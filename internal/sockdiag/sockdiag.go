// Package sockdiag lists the TCP and UDP sockets of a network namespace
// through netlink sock_diag (NETLINK_INET_DIAG), as ss(8) does, and finds
// the processes that hold them by their descriptors in /proc.
package sockdiag

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
)

// Diag is a sock_diag socket. It answers for the network namespace it was
// opened in, whichever goroutine asks.
type Diag struct{ h *netlink.Handle }

// Open opens a sock_diag socket in the calling thread's network namespace.
// Close it after use.
func Open() (*Diag, error) {
	h, err := netlink.NewHandle(unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, nserr.New("socket", "netlink sock_diag", err)
	}
	return &Diag{h: h}, nil
}

// Close closes the socket.
func (d *Diag) Close() { d.h.Close() }

// Socket is one TCP or UDP socket.
type Socket struct {
	Proto          string // "tcp" or "udp"
	V6             bool   // an AF_INET6 socket
	State          uint8  // the kernel's TCP_* state (include/net/tcp_states.h)
	Local, Remote  net.IP
	LPort, RPort   int
	Inode          uint32
	UID            uint32
	RQueue, WQueue uint32
}

// The states of include/net/tcp_states.h nsh tests for.
const (
	Established = 1
	Close       = 7 // an unbound or unconnected UDP socket
	Listen      = 10
)

var stateNames = [...]string{1: "estab", 2: "syn-sent", 3: "syn-recv", 4: "fin-wait-1", 5: "fin-wait-2",
	6: "time-wait", 7: "close", 8: "close-wait", 9: "last-ack", 10: "listen", 11: "closing", 12: "new-syn-recv"}

// StateName names the state of s as ss(8) does, in lower case: "listen",
// "estab", "time-wait", ...; a UDP socket with no peer is "unconn".
func (s Socket) StateName() string {
	if s.Proto == "udp" && s.State == Close {
		return "unconn"
	}
	if int(s.State) < len(stateNames) && stateNames[s.State] != "" {
		return stateNames[s.State]
	}
	return fmt.Sprintf("state-%d", s.State)
}

// StateNames lists every name StateName returns, for validating a filter.
func StateNames() []string {
	names := []string{"unconn"}
	for _, n := range stateNames {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// Endpoint renders ip and port as ss does: "10.0.0.1:80", "[::1]:53",
// "*:80" for the wildcard address, "*" for port 0.
func Endpoint(ip net.IP, port int) string {
	host := "*"
	if ip != nil && !ip.IsUnspecified() {
		host = ip.String()
		if ip.To4() == nil {
			host = "[" + host + "]"
		}
	}
	p := "*"
	if port != 0 {
		p = strconv.Itoa(port)
	}
	return host + ":" + p
}

// List returns the sockets of proto ("tcp" or "udp"), IPv4 and IPv6. A
// namespace without IPv6 has no IPv6 sockets; that is no error. A dump
// the kernel interrupted (the table changed meanwhile) is asked again.
func (d *Diag) List(proto string) ([]Socket, error) {
	var out []Socket
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		var socks []*netlink.Socket
		var err error
		for try := 0; try < 5; try++ {
			if proto == "tcp" {
				socks, err = d.h.SocketDiagTCP(fam)
			} else {
				socks, err = d.h.SocketDiagUDP(fam)
			}
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			if fam == unix.AF_INET6 && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EAFNOSUPPORT)) {
				continue
			}
			return nil, nserr.New("sock_diag", proto+familySuffix(fam), err)
		}
		for _, s := range socks {
			out = append(out, Socket{
				Proto: proto, V6: s.Family == unix.AF_INET6, State: s.State,
				Local: clone(s.ID.Source), Remote: clone(s.ID.Destination),
				LPort: int(s.ID.SourcePort), RPort: int(s.ID.DestinationPort),
				Inode: s.INode, UID: s.UID, RQueue: s.RQueue, WQueue: s.WQueue,
			})
		}
	}
	return out, nil
}

func familySuffix(fam uint8) string {
	if fam == unix.AF_INET6 {
		return "6"
	}
	return ""
}

func clone(ip net.IP) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return append(net.IP(nil), v4...)
	}
	return append(net.IP(nil), ip...)
}

// Owners maps socket inodes to the pids of the processes that hold a
// descriptor of them, found by reading the links /proc/PID/fd/* of the
// proc mounted at procRoot ("/proc"): only processes visible there are
// found. Processes that exit meanwhile or whose descriptors cannot be
// read (another user's, without privilege) are skipped. Only the inodes
// in want are looked for; pids are in increasing order.
func Owners(procRoot string, want map[uint32]bool) (map[uint32][]int, error) {
	out := map[uint32][]int{}
	if len(want) == 0 {
		return out, nil
	}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, nserr.New("read", procRoot, err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := procRoot + "/" + e.Name() + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not ours to read
		}
		seen := map[uint32]bool{}
		for _, fd := range fds {
			target, err := os.Readlink(dir + "/" + fd.Name())
			if err != nil {
				continue
			}
			ino, ok := socketInode(target)
			if ok && want[ino] && !seen[ino] {
				seen[ino] = true
				out[ino] = append(out[ino], pid)
			}
		}
	}
	for _, pids := range out {
		slices.Sort(pids)
	}
	return out, nil
}

// socketInode reads "socket:[12345]".
func socketInode(target string) (uint32, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok || !strings.HasSuffix(s, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 32)
	return uint32(n), err == nil
}
