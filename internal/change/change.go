// Package change holds one typed record per kernel change nsh makes (a
// link added, an address, a route, a sysctl written, a hostname set) and
// the one executor that makes them. A record knows how to apply its
// change and in which namespace, its undo at the end of the run, the ops
// the reaper needs to undo it after SIGKILL, and the equivalent command
// lines (iproute2, sysctl(8), hostname(1), mount(8), unshare(1),
// nsenter(1)) of the change and of its undo.
// Builtins build records and hand them to the run's Executor, which
// applies them, registers the undo in the run's lifecycle registry, gives
// the reaper its ops and, under `nsh -x`, prints each change as it is
// made and each undo as it is done.
//
// The kernel calls themselves are closures the builtins set (Effect.Apply,
// Effect.Undo), because they go through the run's netlink handles and keep
// the run's error messages; what a change is, and how a person would
// make it with the standard tools, is the record's typed data.
//
// Every undo of a run is registered by its executor: kernel changes
// through Do, what the run holds that is no kernel change (netlink
// handles, spawner threads, namespace descriptors) through Hold.
//
// Records: links, addresses, routes, qdiscs, sysctl writes, hostname and
// domainname (restored where the UTS namespace outlives the run), the
// naming of network namespaces (netns()), mounts, umounts, the
// directories mount(mkdir=True) and mkdir() make, pivot_root, id map
// writes, the namespaces unshare() makes (and the init of a new PID namespace), the
// context setns() moves to, the processes the run starts and the cgroup
// they are born in (or nsh as their subreaper). The last four are part
// of running the script rather than of what it builds (Effect.Aside).
package change

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"nsh.dev/nsh/internal/reaper"
)

// Record is one kernel change.
type Record interface {
	// Commands are the equivalent command lines of the change.
	Commands() []string
	// UndoCommands are the equivalent command lines of its undo.
	UndoCommands() []string
	effect() *Effect
}

// Effect is what every record carries besides its typed data: how the
// change is applied and undone, and the reaper's ops.
//
// The reaper learns of a change before it is made (write ahead): the ops
// of Ahead, or those Apply gives Intend before its first system call, are
// with the reaper before the kernel makes anything, so a SIGKILL at any
// instant leaves nothing the reaper does not undo. Once Apply returns,
// they are withdrawn (it failed, or nothing is to be undone) or replaced
// by Reap's.
type Effect struct {
	// What names the object in the registry and in teardown errors,
	// e.g. `veth "a"/"b"`.
	What string
	// Apply makes the change. On failure it has undone what it did.
	Apply func() error `json:"-"`
	// Undo undoes the change at the end of the run (or on an explicit
	// release); it reports whether it did anything (false: the object
	// went away by itself, e.g. with its namespace). nil after Apply:
	// nothing is registered.
	Undo func() (bool, error) `json:"-"`
	// Ahead returns the reaper's ops that undo the change if nsh dies
	// while it is being made. They are given before Apply runs, so they
	// must be right whether or not the change was made, and touch only
	// what it makes: a link by the index nsh chose for it and its name
	// (reaper.DelLink), a mount unless the one there before is still
	// there (reaper.UmountNew), a file by its inode, a value only over
	// the one nsh wrote (reaper.WriteIf). nil: nothing to give ahead, or
	// Apply gives it with Intend.
	Ahead func() []reaper.Op `json:"-"`
	// Reap returns the reaper's ops that undo the change after SIGKILL,
	// once it is made; they replace Ahead's. nil: Ahead's stay (or there
	// are none: the kernel reclaims the object, or it is not undone).
	// No ops: the reaper has nothing to do.
	Reap func() []reaper.Op `json:"-"`
	// Kept, set by Apply, marks an object made to outlive the run (a
	// netns with persist=True): nsh does not undo it, but the teardown
	// script of --trace does.
	Kept bool
	// Aside marks a change that is part of running the script rather
	// than of what it builds (a process it starts, the cgroup they are
	// born in, a namespace held only by nsh's descriptor): nsh -x shows
	// its commands, the setup script of --trace has them as comments,
	// and its teardown script leaves out their undo.
	Aside bool

	// intend, set by the executor while Apply runs, gives the reaper ops
	// ahead of a system call of Apply.
	intend func(ops []reaper.Op)
}

// Intend gives the reaper, from inside Apply, ops that undo what Apply is
// about to make, when they depend on what Apply found or chose (an inode,
// an index); the rules of Ahead hold for them. Each call replaces what
// the earlier one gave.
func (b *Effect) Intend(ops ...reaper.Op) {
	if b.intend != nil {
		b.intend(ops)
	}
}

func (b *Effect) effect() *Effect { return b }

// Netns names a network namespace in commands: by its ip-netns name when
// it has one; nsh's own (the host's) is the zero value; any other is held
// only by a descriptor of nsh, reached as /proc/PID/fd/FD.
type Netns struct {
	Name string // ip-netns name
	Fd   int    // nsh's descriptor, when not named and not nsh's own
	// Label is the label the script gave it (netns_new, host), which
	// names it in messages: "net:h1".
	Label string `json:",omitempty"`
}

// Host reports whether n is nsh's own network namespace.
func (n Netns) Host() bool { return n.Name == "" && n.Fd <= 0 }

// path is where an unnamed namespace is opened from.
func (n Netns) path() string { return FdPath(n.Fd) }

// FdPath is the path by which other processes reach nsh's descriptor fd
// (a namespace it holds): /proc/PID/fd/FD.
func FdPath(fd int) string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd) }

// Ref is how `ip link ... netns X` names it: its name or a path.
func (n Netns) Ref() string {
	if n.Name != "" {
		return n.Name
	}
	if n.Host() {
		return "1" // the namespace of PID 1
	}
	return n.path()
}

// IP renders an ip(8) command run in n: `ip -n red link ...`, `ip link
// ...`, or `nsenter --net=/proc/PID/fd/N ip link ...`.
func (n Netns) IP(args string) string {
	switch {
	case n.Name != "":
		return "ip -n " + n.Name + " " + args
	case n.Host():
		return "ip " + args
	}
	return n.Exec("ip " + args)
}

// Exec renders any command run in n: as it is, `ip netns exec red CMD`,
// or `nsenter --net=/proc/PID/fd/N CMD`.
func (n Netns) Exec(cmd string) string {
	switch {
	case n.Name != "":
		return "ip netns exec " + n.Name + " " + cmd
	case n.Host():
		return cmd
	}
	return "nsenter --net=" + n.path() + " " + cmd
}

// TC renders a tc(8) command run in n: `tc -n red qdisc ...`, `tc qdisc
// ...`, or `nsenter --net=/proc/PID/fd/N tc qdisc ...`.
func (n Netns) TC(args string) string {
	if n.Name != "" {
		return "tc -n " + n.Name + " " + args
	}
	return n.Exec("tc " + args)
}

// NetnsAdd names a network namespace (and creates it): "ip netns add".
// Opened, set by Apply, means the name existed and was only opened: no
// change, no command.
type NetnsAdd struct {
	Effect
	Name   string
	LoUp   bool // the loopback is brought up
	Opened bool
}

// Commands renders `ip netns add NAME` and `ip -n NAME link set dev lo
// up`; nothing when the namespace existed.
func (r *NetnsAdd) Commands() []string {
	if r.Opened {
		return nil
	}
	out := []string{"ip netns add " + r.Name}
	if r.LoUp {
		out = append(out, "ip -n "+r.Name+" link set dev lo up")
	}
	return out
}

// UndoCommands renders `ip netns del NAME`.
func (r *NetnsAdd) UndoCommands() []string {
	if r.Opened {
		return nil
	}
	return []string{"ip netns del " + r.Name}
}

// LinkAdd creates a link: a veth pair (Kind "veth", the peer born in
// PeerNS), a bridge (Kind "bridge") or a VXLAN link (Kind "vxlan", with
// VXLAN's fields). NS is where the link is (for a VXLAN link, where it is
// born: its underlay is in Under).
type LinkAdd struct {
	Effect
	Kind   string
	NS     Netns
	Name   string
	Peer   string // veth only
	PeerNS Netns  // veth only
	MTU    int    // 0: the default
	Up     bool   // created up (the veth's first end, the bridge, the VXLAN link)
	VXLAN  *VXLAN `json:",omitempty"` // vxlan only
}

// VXLAN is what a VXLAN link is made of: its VNI and its underlay, which
// is in the network namespace Under (the link itself is born in the
// record's NS, as with `ip link add ... netns NS`).
type VXLAN struct {
	Under      Netns
	VNI        int
	Remote     string `json:",omitempty"` // unicast peer
	Group      string `json:",omitempty"` // multicast group
	Local      string `json:",omitempty"`
	Dev        string `json:",omitempty"` // underlay link
	Port       int    // UDP destination port
	NoLearning bool   `json:",omitempty"`
}

// Commands renders `ip link add name NAME [mtu M] [up] type veth peer
// name P [mtu M] [netns X]` or `ip link add name NAME [up] type bridge`
// (with "name" and "dev" spelled out, a link called "a" is not taken for
// the keyword "address").
//
// A VXLAN link is rendered in its underlay's namespace: `ip link add name
// NAME [mtu M] [up] [netns X] type vxlan id N [remote A | group G] [local
// L] [dev D] dstport P [nolearning]`.
func (r *LinkAdd) Commands() []string {
	s := "link add name " + r.Name
	if r.MTU > 0 {
		s += fmt.Sprintf(" mtu %d", r.MTU)
	}
	if r.Up {
		s += " up"
	}
	if v := r.VXLAN; v != nil {
		if v.Under != r.NS {
			s += " netns " + r.NS.Ref()
		}
		s += fmt.Sprintf(" type vxlan id %d", v.VNI)
		switch {
		case v.Remote != "":
			s += " remote " + v.Remote
		case v.Group != "":
			s += " group " + v.Group
		}
		if v.Local != "" {
			s += " local " + v.Local
		}
		if v.Dev != "" {
			s += " dev " + v.Dev
		}
		s += fmt.Sprintf(" dstport %d", v.Port)
		if v.NoLearning {
			s += " nolearning"
		}
		return []string{v.Under.IP(s)}
	}
	s += " type " + r.Kind
	if r.Kind == "veth" {
		s += " peer name " + r.Peer
		if r.MTU > 0 {
			s += fmt.Sprintf(" mtu %d", r.MTU)
		}
		if r.PeerNS != r.NS {
			s += " netns " + r.PeerNS.Ref()
		}
	}
	return []string{r.NS.IP(s)}
}

// UndoCommands deletes the link (both ends of a veth).
func (r *LinkAdd) UndoCommands() []string {
	return []string{r.NS.IP("link del dev " + r.Name)}
}

// LinkDel deletes a link.
type LinkDel struct {
	Effect
	NS   Netns
	Name string
}

// Commands renders `ip link del dev NAME`.
func (r *LinkDel) Commands() []string { return []string{r.NS.IP("link del dev " + r.Name)} }

// UndoCommands is empty: a deleted link is not made again.
func (r *LinkDel) UndoCommands() []string { return nil }

// LinkSet changes one setting of a link: Up, Down, MTU, Master (a bridge
// name; NoMaster detaches), NetNS (moves it), NewName, or MAC.
type LinkSet struct {
	Effect
	NS       Netns
	Name     string
	Up       bool
	Down     bool
	MTU      int
	Master   string
	NoMaster bool
	MoveTo   *Netns
	NewName  string
	MAC      net.HardwareAddr
}

func (r *LinkSet) setting() string {
	switch {
	case r.Up:
		return "up"
	case r.Down:
		return "down"
	case r.MTU > 0:
		return fmt.Sprintf("mtu %d", r.MTU)
	case r.Master != "":
		return "master " + r.Master
	case r.NoMaster:
		return "nomaster"
	case r.MoveTo != nil:
		return "netns " + r.MoveTo.Ref()
	case r.NewName != "":
		return "name " + r.NewName
	case r.MAC != nil:
		return "address " + r.MAC.String()
	}
	return ""
}

// Commands renders `ip link set dev NAME SETTING`.
func (r *LinkSet) Commands() []string {
	return []string{r.NS.IP("link set dev " + r.Name + " " + r.setting())}
}

// UndoCommands is empty: nsh does not restore a link's settings (a link
// it made is deleted; one it found is left as the script set it).
func (r *LinkSet) UndoCommands() []string { return nil }

// Addr adds (Del false) or removes an address of a link.
type Addr struct {
	Effect
	NS    Netns
	Dev   string
	CIDR  string // "10.0.0.1/24"
	NoDAD bool   // IPv6 without duplicate address detection
	Del   bool
}

func (r *Addr) cmd(del bool) string {
	verb := "add"
	if del {
		verb = "del"
	}
	s := "addr " + verb + " " + r.CIDR + " dev " + r.Dev
	if r.NoDAD && !del {
		s += " nodad"
	}
	return r.NS.IP(s)
}

// Commands renders `ip addr add CIDR dev NAME [nodad]` (or del).
func (r *Addr) Commands() []string { return []string{r.cmd(r.Del)} }

// UndoCommands renders the opposite command. nsh registers no undo for
// an address: it goes with its link or namespace.
func (r *Addr) UndoCommands() []string {
	if r.Del {
		return nil
	}
	return []string{r.cmd(true)}
}

// Route adds (Del false) or removes a route of the main table.
type Route struct {
	Effect
	NS  Netns
	V6  bool
	Dst string // CIDR or "default"
	Via string // gateway, or ""
	Dev string // outgoing link, or ""
	Del bool
}

func (r *Route) cmd(del bool) string {
	s := "route add "
	if del {
		s = "route del "
	}
	if r.V6 {
		s = "-6 " + s
	}
	s += r.Dst
	if r.Via != "" {
		s += " via " + r.Via
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Via == "" && !r.V6 && !del {
		// nsh's route has the kernel's default scope, global; ip gives
		// a route without a gateway scope link unless told.
		s += " scope global"
	}
	return r.NS.IP(s)
}

// Commands renders `ip [-6] route add DST [via GW] [dev DEV] [scope global]`
// (or del).
func (r *Route) Commands() []string { return []string{r.cmd(r.Del)} }

// UndoCommands renders `ip route del ...` for an added route.
func (r *Route) UndoCommands() []string {
	if r.Del {
		return nil
	}
	return []string{r.cmd(true)}
}

// Sysctl writes a kernel parameter; Old is the value it had, read by
// Apply and written back by the undo.
type Sysctl struct {
	Effect
	NS    Netns
	Other string // namespaces joined besides the network one, e.g. "uts:[4026532200]"
	Key   string
	Value string
	Old   string
}

func (r *Sysctl) cmd(v string) string {
	c := r.NS.Exec("sysctl -q -w " + Quote(r.Key+"="+v))
	if r.Other != "" {
		c += "  # in " + r.Other
	}
	return c
}

// Commands renders `sysctl -q -w KEY=VALUE`.
func (r *Sysctl) Commands() []string { return []string{r.cmd(r.Value)} }

// UndoCommands renders `sysctl -q -w KEY=OLD`.
func (r *Sysctl) UndoCommands() []string { return []string{r.cmd(r.Old)} }

// UTSName sets the hostname (Domain false) or the NIS domain name of a
// UTS namespace. In one that outlives the run (Restore), the undo writes
// Old back.
type UTSName struct {
	Effect
	// UTS is the path of the UTS namespace when it is not nsh's own
	// (/proc/PID/fd/N), else "".
	UTS     string
	Label   string // the namespace, "uts:[4026532200]"
	Domain  bool
	Name    string
	Old     string
	Restore bool
}

func (r *UTSName) cmd(name string) string {
	c := "hostname " + Quote(name)
	if r.Domain {
		c = "domainname " + Quote(name)
	}
	if r.UTS != "" {
		c = "nsenter --uts=" + r.UTS + " " + c + "  # " + r.Label
	}
	return c
}

// Commands renders `hostname NAME` or `domainname NAME`, run with
// nsenter --uts= in a namespace that is not nsh's own.
func (r *UTSName) Commands() []string { return []string{r.cmd(r.Name)} }

// UndoCommands renders `hostname OLD` when the name is restored; nothing
// in a UTS namespace the run made (it goes away with its name).
func (r *UTSName) UndoCommands() []string {
	if !r.Restore {
		return nil
	}
	return []string{r.cmd(r.Old)}
}

// Qdisc adds, changes or replaces (Verb) the root qdisc of a link, a tbf
// (Kind "tbf": Rate, Burst, Limit) or a netem (Kind "netem": Delay,
// Jitter, Loss, Rate), or deletes it (Verb "del"). None, set by the Apply
// of a "del", means the link had no root qdisc to delete: no change, no
// command.
type Qdisc struct {
	Effect
	NS     Netns
	Dev    string
	Verb   string // "add", "change", "replace" or "del"
	Handle string // e.g. "1:"; "" leaves it to the kernel
	Kind   string
	Rate   uint64 // bits per second; 0: none (netem)
	Burst  uint32 // bytes (tbf)
	Limit  uint32 // bytes (tbf)
	Delay  time.Duration
	Jitter time.Duration
	Loss   float64 // percent; 0: none
	None   bool
}

// Commands renders `tc qdisc VERB dev DEV root [handle H] tbf rate R
// burst B limit L`, `... netem [delay D [J]] [loss P%] [rate R]`, or `tc
// qdisc del dev DEV root`; nothing for a "del" that found no qdisc.
func (r *Qdisc) Commands() []string {
	if r.Verb == "del" {
		if r.None {
			return nil
		}
		return r.del()
	}
	s := "qdisc " + r.Verb + " dev " + r.Dev + " root"
	if r.Handle != "" {
		s += " handle " + r.Handle
	}
	s += " " + r.Kind
	switch r.Kind {
	case "tbf":
		s += fmt.Sprintf(" rate %s burst %d limit %d", tcRate(r.Rate), r.Burst, r.Limit)
	case "netem":
		if r.Delay > 0 || r.Jitter > 0 {
			s += " delay " + tcTime(r.Delay)
			if r.Jitter > 0 {
				s += " " + tcTime(r.Jitter)
			}
		}
		if r.Loss > 0 {
			s += fmt.Sprintf(" loss %g%%", r.Loss)
		}
		if r.Rate > 0 {
			s += " rate " + tcRate(r.Rate)
		}
	}
	return []string{r.NS.TC(s)}
}

// del renders `tc qdisc del dev DEV root`, which gives the link its
// default qdisc back.
func (r *Qdisc) del() []string {
	return []string{r.NS.TC("qdisc del dev " + r.Dev + " root")}
}

// UndoCommands deletes the root qdisc; nothing for a "del".
func (r *Qdisc) UndoCommands() []string {
	if r.Verb == "del" {
		return nil
	}
	return r.del()
}

// tcRate renders bits per second in tc's units (decimal, as tc reads
// them): "16mbit", "512kbit", "1500bit".
func tcRate(bits uint64) string {
	for _, u := range []struct {
		name string
		mult uint64
	}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if bits >= u.mult && bits%u.mult == 0 {
			return fmt.Sprintf("%d%s", bits/u.mult, u.name)
		}
	}
	return fmt.Sprintf("%dbit", bits)
}

// tcTime renders a duration in tc's units, to the microsecond the kernel
// keeps: "30ms", "1500us".
func tcTime(d time.Duration) string {
	if d%time.Millisecond == 0 {
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return fmt.Sprintf("%dus", d/time.Microsecond)
}

// Quote quotes s for a POSIX shell when it needs it.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.,:/@%+=", c))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
