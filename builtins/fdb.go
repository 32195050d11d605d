package builtins

import (
	"fmt"
	"sort"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
)

const fdbDoc = `Returns the bridge's forwarding database (what "bridge fdb show br NAME" prints),
or, for a bridge port, the entries on that port: a list of
struct(mac, port, vlan, state, learned), read through netlink in the
link's namespace. mac is "aa:bb:cc:dd:ee:ff"; port the name of the port
the address is behind (the bridge's own name for its own addresses); vlan
an int or None; state "reachable", "stale", "permanent", "static", ...;
learned is True for what the bridge learned from traffic (not permanent,
not static). Sorted by port, then mac.
Example:
  s = star(2)                          # load("star.star", "star")
  ping(s.addrs[1], ns=s.hosts[0], count=1)
  macs = [e.mac for e in s.bridge.fdb() if e.learned]
  assert.contains(macs, s.links[0].mac)`

// fdbMethod lists the forwarding database of a bridge, or of one port.
func (l *Link) fdbMethod(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kw); err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	self := nl.Attrs().Index
	_, isBridge := nl.(*netlink.Bridge)
	if !isBridge && nl.Attrs().MasterIndex == 0 {
		return nil, fmt.Errorf("%s: %s is neither a bridge nor a bridge port (its kind is %s)", fn.Name(), quote(nl.Attrs().Name), nl.Type())
	}
	neighs, err := h.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return nil, nserr.New("bridge fdb show", quote(nl.Attrs().Name), err)
	}
	links, err := h.LinkList()
	if err != nil {
		return nil, nserr.New("link show", "in "+l.netns().String(), err)
	}
	names := make(map[int]string, len(links))
	for _, k := range links {
		names[k.Attrs().Index] = k.Attrs().Name
	}
	type entry struct {
		port, mac string
		n         netlink.Neigh
	}
	var es []entry
	for _, n := range neighs {
		mine := n.LinkIndex == self
		if isBridge {
			mine = mine || n.MasterIndex == self
		}
		if !mine || len(n.HardwareAddr) == 0 {
			continue
		}
		es = append(es, entry{names[n.LinkIndex], n.HardwareAddr.String(), n})
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].port != es[j].port {
			return es[i].port < es[j].port
		}
		return es[i].mac < es[j].mac
	})
	out := make([]starlark.Value, len(es))
	for i, e := range es {
		var vlan starlark.Value = starlark.None
		if e.n.Vlan != 0 {
			vlan = starlark.MakeInt(e.n.Vlan)
		}
		state := neighState(e.n.State)
		out[i] = starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
			"mac":     starlark.String(e.mac),
			"port":    starlark.String(e.port),
			"vlan":    vlan,
			"state":   starlark.String(state),
			"learned": starlark.Bool(e.n.State&(unix.NUD_PERMANENT|unix.NUD_NOARP) == 0),
		})
	}
	return starlark.NewList(out), nil
}

// neighState names a neighbour or FDB entry's NUD state as iproute2 does
// ("static" is NUD_NOARP, as bridge fdb prints it).
func neighState(s int) string {
	switch {
	case s&unix.NUD_PERMANENT != 0:
		return "permanent"
	case s&unix.NUD_NOARP != 0:
		return "static"
	case s&unix.NUD_REACHABLE != 0:
		return "reachable"
	case s&unix.NUD_STALE != 0:
		return "stale"
	case s&unix.NUD_DELAY != 0:
		return "delay"
	case s&unix.NUD_PROBE != 0:
		return "probe"
	case s&unix.NUD_FAILED != 0:
		return "failed"
	case s&unix.NUD_INCOMPLETE != 0:
		return "incomplete"
	case s == unix.NUD_NONE:
		return "none"
	}
	return fmt.Sprintf("state 0x%x", s)
}
