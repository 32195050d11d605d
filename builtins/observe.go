package builtins

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/sockdiag"
)

// observeTable holds the builtins that read a network namespace's state
// for tests: its neighbour table and its sockets. link.stats() and
// link.qdiscs() are methods of nsh.link (link.go) implemented here.
func observeTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "neighbors", Sig: "neighbors(ns=None)", Impl: neighborsBuiltin, Doc: `Lists the neighbour table (ARP and NDP) of a network namespace.
Returns a list of nsh.neighbor (link, addr, lladdr, state, router), as
"ip neigh" shows it: entries without link-layer resolution (NOARP:
multicast, point-to-point) are left out. ns is a target as for setns()
(default: the current context). Read through netlink.
  ping("10.0.0.2", ns=h1)
  for n in neighbors(ns=h1): print(n)   # 10.0.0.2 dev h1-eth0 lladdr 0a:... reachable
  assert.true([n for n in neighbors(ns=h1) if n.addr == "10.0.0.2" and n.state == "reachable"])`},
			{Name: "sockets", Sig: "sockets(ns=None, proto=None, state=None)", Impl: socketsBuiltin, Doc: `Lists the TCP and UDP sockets of a network namespace, like "ss -tuanp".
Returns a list of nsh.socket (proto, state, local, remote, pids, ...).
proto keeps "tcp" or "udp" only; state keeps one state, named as ss does
in lower case: "listen", "estab", "unconn" (a UDP socket without a peer),
"syn-sent", "syn-recv", "fin-wait-1", "fin-wait-2", "time-wait",
"close-wait", "last-ack", "closing", "close". ns is a target as for
setns() (default: the current context). The sockets are listed through
netlink sock_diag from inside the namespace; their owners are found by
reading the descriptors in /proc/PID/fd of every process, so only
processes visible in nsh's own PID namespace are found (a process in a
PID namespace nsh made is visible; pids are as nsh sees them), and a
socket no process holds (time-wait) has no pids.
  srv = spawn("busybox nc -l -p 8080", ns=h1)
  wait_port(8080, ns=h1)
  for s in sockets(ns=h1, state="listen"): print(s)  # tcp listen *:8080 *:* pids [4242]`},
		},
		Types: []doc.Type{linkStatsType.Type(), qdiscType.Type(), neighborType.Type(), socketType.Type()},
	}
}

var linkStatsType = recordType("nsh.link_stats", `The counters of a link (link.stats()), as "ip -s link" shows them.
str() reads "rx 5 packets 434 bytes 0 dropped 0 errors, tx 5 packets 434
bytes 0 dropped 0 errors".`, []doc.Attr{
	{Name: "rx_packets", Doc: "packets received"},
	{Name: "rx_bytes", Doc: "bytes received"},
	{Name: "rx_dropped", Doc: "received packets dropped (no buffer, filtered...)"},
	{Name: "rx_errors", Doc: "receive errors"},
	{Name: "tx_packets", Doc: "packets sent"},
	{Name: "tx_bytes", Doc: "bytes sent"},
	{Name: "tx_dropped", Doc: "packets dropped on sending"},
	{Name: "tx_errors", Doc: "send errors"},
	{Name: "multicast", Doc: "multicast packets received"},
	{Name: "collisions", Doc: "collisions"},
})

const linkStatsDoc = `Returns the link's counters now, as nsh.link_stats.
rx_/tx_ packets, bytes, dropped and errors, multicast and collisions,
read by netlink in the link's namespace (as "ip -s link" shows them).
Each call reads them again: compare two readings to see traffic.
  before = a.stats()
  ping("10.0.0.2", ns=h1, count=3)
  assert.true(a.stats().tx_packets >= before.tx_packets + 3)`

func (l *Link) statsMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kw); err != nil {
		return nil, err
	}
	_, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	s := nl.Attrs().Statistics
	if s == nil {
		s = &netlink.LinkStatistics{}
	}
	u := func(n uint64) starlark.Value { return starlark.MakeUint64(n) }
	return &record{t: &linkStatsType, fields: map[string]starlark.Value{
		"rx_packets": u(s.RxPackets), "rx_bytes": u(s.RxBytes), "rx_dropped": u(s.RxDropped), "rx_errors": u(s.RxErrors),
		"tx_packets": u(s.TxPackets), "tx_bytes": u(s.TxBytes), "tx_dropped": u(s.TxDropped), "tx_errors": u(s.TxErrors),
		"multicast": u(s.Multicast), "collisions": u(s.Collisions),
	}, str: fmt.Sprintf("rx %d packets %d bytes %d dropped %d errors, tx %d packets %d bytes %d dropped %d errors",
		s.RxPackets, s.RxBytes, s.RxDropped, s.RxErrors, s.TxPackets, s.TxBytes, s.TxDropped, s.TxErrors)}, nil
}

var qdiscType = recordType("nsh.qdisc", `One tc queueing discipline of a link with its statistics (link.qdiscs()),
as "tc -s qdisc show dev X" shows it. str() reads "tbf 8001: root: sent
1049 bytes 12 packets, dropped 0, overlimits 3, requeues 0, backlog 0b 0p".`, []doc.Attr{
	{Name: "kind", Doc: `the qdisc's kind: "tbf", "netem", "htb", "noqueue", "pfifo_fast", ...`},
	{Name: "handle", Doc: `its handle as tc writes it, "8001:"`},
	{Name: "parent", Doc: `its parent: "root", "ingress", or a class such as "1:1"`},
	{Name: "bytes", Doc: "bytes it sent"},
	{Name: "packets", Doc: "packets it sent"},
	{Name: "drops", Doc: "packets it dropped"},
	{Name: "overlimits", Doc: "times it held a packet back over its limit (a rate limit's throttling)"},
	{Name: "requeues", Doc: "packets requeued"},
	{Name: "backlog", Doc: "bytes queued now"},
	{Name: "qlen", Doc: "packets queued now"},
})

const linkQdiscsDoc = `Lists the link's tc qdiscs with their statistics, as nsh.qdisc values.
Each has kind, handle, parent and the counters bytes, packets, drops,
overlimits, requeues, backlog and qlen, read by netlink in the link's
namespace (as "tc -s qdisc show dev X" shows them). The emulation of
netem() shows here: a tbf qdisc for a rate, a netem one for delay or loss.
  a.netem(rate="10mbit")
  transfer("10.0.0.2", h2, ns=h1, size=1 << 20)
  q = a.qdiscs()[0]; print(q)   # tbf 8001: root: sent ... overlimits ...`

// tcHandle renders a qdisc handle as tc does: "8001:", "1:1".
func tcHandle(h uint32) string {
	major, minor := netlink.MajorMinor(h)
	if minor == 0 {
		return fmt.Sprintf("%x:", major)
	}
	return fmt.Sprintf("%x:%x", major, minor)
}

// tcParent renders a qdisc's parent: "root", "ingress" or a class.
func tcParent(p uint32) string {
	switch p {
	case netlink.HANDLE_ROOT:
		return "root"
	case netlink.HANDLE_INGRESS:
		return "ingress"
	}
	return tcHandle(p)
}

func (l *Link) qdiscsMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kw); err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	qs, err := h.QdiscList(nl)
	if err != nil {
		return nil, nserr.New("qdisc show", fmt.Sprintf("dev %q in %s", nl.Attrs().Name, l.st.nsWhere(l.netns())), err)
	}
	out := make([]starlark.Value, 0, len(qs))
	for _, q := range qs {
		a := q.Attrs()
		s := a.Statistics
		var basic netlink.GnetStatsBasic
		var queue netlink.GnetStatsQueue
		if s != nil && s.Basic != nil {
			basic = *s.Basic
		}
		if s != nil && s.Queue != nil {
			queue = *s.Queue
		}
		handle, parent := tcHandle(a.Handle), tcParent(a.Parent)
		out = append(out, &record{t: &qdiscType, fields: map[string]starlark.Value{
			"kind": starlark.String(q.Type()), "handle": starlark.String(handle), "parent": starlark.String(parent),
			"bytes": starlark.MakeUint64(basic.Bytes), "packets": starlark.MakeUint64(uint64(basic.Packets)),
			"drops": starlark.MakeUint64(uint64(queue.Drops)), "overlimits": starlark.MakeUint64(uint64(queue.Overlimits)),
			"requeues": starlark.MakeUint64(uint64(queue.Requeues)), "backlog": starlark.MakeUint64(uint64(queue.Backlog)),
			"qlen": starlark.MakeUint64(uint64(queue.Qlen)),
		}, str: fmt.Sprintf("%s %s %s: sent %d bytes %d packets, dropped %d, overlimits %d, requeues %d, backlog %db %dp",
			q.Type(), handle, parent, basic.Bytes, basic.Packets, queue.Drops, queue.Overlimits, queue.Requeues, queue.Backlog, queue.Qlen)})
	}
	return starlark.NewList(out), nil
}

var neighborType = recordType("nsh.neighbor", `An entry of a neighbour table (neighbors()). str() reads like "ip neigh":
"10.0.0.2 dev h1-eth0 lladdr 0a:1b:2c:3d:4e:5f reachable".`, []doc.Attr{
	{Name: "link", Doc: "name of the link it was learnt on"},
	{Name: "addr", Doc: "the neighbour's IP address"},
	{Name: "lladdr", Doc: `its link-layer (MAC) address, "aa:bb:cc:dd:ee:ff"; None while unresolved`},
	{Name: "state", Doc: `the kernel's NUD state in words: "reachable", "stale", "delay", "probe", "incomplete", "failed", "permanent", "none"; several joined by "|"`},
	{Name: "router", Doc: "True when the neighbour said it is a router (IPv6)"},
	{Name: "family", Doc: `"ipv4" or "ipv6"`},
})

var nudNames = []struct {
	bit  int
	name string
}{
	{netlink.NUD_INCOMPLETE, "incomplete"}, {netlink.NUD_REACHABLE, "reachable"}, {netlink.NUD_STALE, "stale"},
	{netlink.NUD_DELAY, "delay"}, {netlink.NUD_PROBE, "probe"}, {netlink.NUD_FAILED, "failed"},
	{netlink.NUD_NOARP, "noarp"}, {netlink.NUD_PERMANENT, "permanent"},
}

// nudState names a neighbour state in words.
func nudState(s int) string {
	var names []string
	for _, n := range nudNames {
		if s&n.bit != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

func neighborsBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var nsv starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "ns?", &nsv); err != nil {
		return nil, err
	}
	st, ns, h, err := netHandle(th, nsv)
	if err != nil {
		return nil, err
	}
	ns4, err := h.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		return nil, nserr.New("neigh show", st.nsWhere(ns), err)
	}
	ns6, err := h.NeighList(0, netlink.FAMILY_V6)
	if err != nil {
		return nil, nserr.New("neigh show", st.nsWhere(ns), err)
	}
	names := map[int]string{}
	out := []starlark.Value{}
	for _, n := range append(ns4, ns6...) {
		if n.State&netlink.NUD_NOARP != 0 || n.IP == nil {
			continue
		}
		dev, ok := names[n.LinkIndex]
		if !ok {
			dev = linkName(h, n.LinkIndex)
			names[n.LinkIndex] = dev
		}
		var lladdr starlark.Value = starlark.None
		str := fmt.Sprintf("%s dev %s", n.IP, dev)
		if len(n.HardwareAddr) > 0 {
			lladdr = starlark.String(n.HardwareAddr.String())
			str += " lladdr " + n.HardwareAddr.String()
		}
		router := n.Flags&netlink.NTF_ROUTER != 0
		if router {
			str += " router"
		}
		state := nudState(n.State)
		fam := "ipv4"
		if n.IP.To4() == nil {
			fam = "ipv6"
		}
		out = append(out, &record{t: &neighborType, fields: map[string]starlark.Value{
			"link": starlark.String(dev), "addr": starlark.String(n.IP.String()), "lladdr": lladdr,
			"state": starlark.String(state), "router": starlark.Bool(router), "family": starlark.String(fam),
		}, str: str + " " + state})
	}
	return starlark.NewList(out), nil
}

var socketType = recordType("nsh.socket", `A TCP or UDP socket of a network namespace (sockets()). str() reads like
a line of "ss -tuanp": "tcp listen *:8080 *:* pids [4242]".`, []doc.Attr{
	{Name: "proto", Doc: `"tcp" or "udp"`},
	{Name: "family", Doc: `"ipv4" or "ipv6" (an IPv6 socket may also take IPv4: "*:80" on ::)`},
	{Name: "state", Doc: `"listen", "estab", "unconn", "time-wait", ... (see sockets())`},
	{Name: "local", Doc: `local address and port as ss writes them: "10.0.0.1:80", "[::1]:53", "*:80" (any address)`},
	{Name: "remote", Doc: `remote address and port: "10.0.0.2:41234", "*:*" (none)`},
	{Name: "local_addr", Doc: `local address ("0.0.0.0" or "::" for any)`},
	{Name: "local_port", Doc: "local port, an int"},
	{Name: "remote_addr", Doc: "remote address, None without a peer"},
	{Name: "remote_port", Doc: "remote port, an int (0 without a peer)"},
	{Name: "pids", Doc: "pids of the processes holding it (visible to nsh), in increasing order"},
	{Name: "uid", Doc: "uid of its owner (as seen in the namespace's user namespace)"},
	{Name: "inode", Doc: "its inode (socket:[INODE] in /proc/PID/fd)"},
	{Name: "recv_q", Doc: "bytes received not yet read (listen: connections not yet accepted)"},
	{Name: "send_q", Doc: "bytes sent not yet acknowledged (listen: the backlog)"},
})

func socketsBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var nsv, protov, statev starlark.Value = starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "ns?", &nsv, "proto?", &protov, "state?", &statev); err != nil {
		return nil, err
	}
	protos := []string{"tcp", "udp"}
	if protov != starlark.None {
		p, ok := starlark.AsString(protov)
		if !ok || (p != "tcp" && p != "udp") {
			return nil, fmt.Errorf("sockets: proto must be \"tcp\", \"udp\" or None, not %s", protov)
		}
		protos = []string{p}
	}
	state := ""
	if statev != starlark.None {
		s, ok := starlark.AsString(statev)
		if !ok || !slices.Contains(sockdiag.StateNames(), s) {
			return nil, fmt.Errorf("sockets: state must be one of %s, or None, not %s", strings.Join(sockdiag.StateNames(), ", "), statev)
		}
		state = s
	}
	st, ns, err := netArg(th, nsv)
	if err != nil {
		return nil, err
	}
	diag, err := openDiag(st, ns)
	if err != nil {
		return nil, fmt.Errorf("sockets: %w", err)
	}
	defer diag.Close()
	var socks []sockdiag.Socket
	for _, p := range protos {
		s, err := diag.List(p)
		if err != nil {
			return nil, fmt.Errorf("sockets in %s: %w", st.nsWhere(ns), err)
		}
		for _, x := range s {
			if state == "" || x.StateName() == state {
				socks = append(socks, x)
			}
		}
	}
	want := map[uint32]bool{}
	for _, s := range socks {
		if s.Inode != 0 {
			want[s.Inode] = true
		}
	}
	owners, err := sockdiag.Owners("/proc", want)
	if err != nil {
		return nil, fmt.Errorf("sockets: %w", err)
	}
	out := make([]starlark.Value, 0, len(socks))
	for _, s := range socks {
		out = append(out, socketValue(s, owners[s.Inode]))
	}
	return starlark.NewList(out), nil
}

// socketValue is the nsh.socket of s, held by pids.
func socketValue(s sockdiag.Socket, pids []int) *record {
	fam := "ipv4"
	if s.V6 {
		fam = "ipv6"
	}
	pv := make([]starlark.Value, len(pids))
	for i, p := range pids {
		pv[i] = starlark.MakeInt(p)
	}
	local, remote := sockdiag.Endpoint(s.Local, s.LPort), sockdiag.Endpoint(s.Remote, s.RPort)
	var raddr starlark.Value = starlark.None
	if s.Remote != nil && !s.Remote.IsUnspecified() {
		raddr = starlark.String(s.Remote.String())
	}
	str := fmt.Sprintf("%s %s %s %s", s.Proto, s.StateName(), local, remote)
	if len(pids) > 0 {
		str += fmt.Sprintf(" pids %v", pids)
	}
	return &record{t: &socketType, fields: map[string]starlark.Value{
		"proto": starlark.String(s.Proto), "family": starlark.String(fam), "state": starlark.String(s.StateName()),
		"local": starlark.String(local), "remote": starlark.String(remote),
		"local_addr": starlark.String(ipOrAny(s.Local, s.V6)), "local_port": starlark.MakeInt(s.LPort),
		"remote_addr": raddr, "remote_port": starlark.MakeInt(s.RPort),
		"pids": starlark.NewList(pv), "uid": starlark.MakeUint64(uint64(s.UID)), "inode": starlark.MakeUint64(uint64(s.Inode)),
		"recv_q": starlark.MakeUint64(uint64(s.RQueue)), "send_q": starlark.MakeUint64(uint64(s.WQueue)),
	}, str: str}
}

// ipOrAny renders ip, or the wildcard address of the family when unset.
func ipOrAny(ip net.IP, v6 bool) string {
	if ip == nil {
		if v6 {
			return "::"
		}
		return "0.0.0.0"
	}
	return ip.String()
}
