package topo

import (
	"fmt"
	"strconv"
	"strings"
)

// RecipeOptions change what Recipe writes.
type RecipeOptions struct {
	// Persist writes a recipe that keeps what it builds when run by plain
	// "nsh FILE": links get persist(), sysctls persist=True, and routes
	// and rate limits are added by ip(8) and tc(8) (route() and netem()
	// undo theirs at the end of the run and have no persist()). Without
	// it the recipe is for "nsh up", which keeps everything it builds.
	Persist bool
}

// Default MTUs of the links nsh makes, and of the loopback.
const (
	defaultMTU   = 1500
	loopbackMTU  = 65536
	recipeIndent = "    "
)

// used are the names a recipe calls or that Starlark reserves: no variable
// of the recipe may take one.
var used = strings.Fields(`netns veth bridge link route sysctl run True False None
	and break continue def elif else for if in lambda load not or pass return while
	as assert async await class del except finally from global import is nonlocal raise try with yield`)

// recipe is a recipe being written.
type recipe struct {
	t    *Topology
	opt  RecipeOptions
	b    strings.Builder
	vars map[string]bool         // variable names taken
	nsv  map[string]string       // netns name -> its variable
	lv   map[[2]string]string    // (netns, link) -> variable, for veths and bridges
	made map[[2]string]bool      // links the recipe makes (or finds: lo)
	skip map[[2]string]string    // links it cannot make -> why
	ends map[[2]string][2]string // veth end -> its peer
	lnks map[[2]string]*Link     // every link
}

// Recipe renders the topology as an nsh script that rebuilds it: netns()
// for each namespace, bridge() and veth() for the links, add_addr(),
// set_master(), set_mtu(), route() and sysctl(). What it cannot rebuild
// (links of other kinds, veths whose peer is outside the namespaces read,
// routes of other types) is written as comments that say so. The output
// depends only on the topology: names are sorted.
func (t *Topology) Recipe(opt RecipeOptions) string {
	r := &recipe{t: t, opt: opt, vars: map[string]bool{}, nsv: map[string]string{}, lv: map[[2]string]string{},
		made: map[[2]string]bool{}, skip: map[[2]string]string{}, ends: map[[2]string][2]string{},
		lnks: map[[2]string]*Link{}}
	for _, u := range used {
		r.vars[u] = true
	}
	r.plan()
	r.header()
	r.namespaces()
	r.bridges()
	r.veths()
	r.loopbacks()
	r.others()
	r.routes()
	r.sysctls()
	return r.b.String()
}

func (r *recipe) line(format string, args ...any) { fmt.Fprintf(&r.b, format+"\n", args...) }

// variable returns a fresh variable name made of the parts.
func (r *recipe) variable(parts ...string) string {
	var s strings.Builder
	for i, p := range parts {
		if i > 0 {
			s.WriteByte('_')
		}
		for _, c := range p {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
				s.WriteRune(c)
			default:
				s.WriteByte('_')
			}
		}
	}
	v := s.String()
	if v == "" || v[0] >= '0' && v[0] <= '9' {
		v = "ns_" + v
	}
	base := v
	for i := 2; r.vars[v]; i++ {
		v = base + "_" + strconv.Itoa(i)
	}
	r.vars[v] = true
	return v
}

// plan decides which links the recipe makes and names the variables.
func (r *recipe) plan() {
	for _, n := range r.t.Netns {
		r.nsv[n.Name] = r.variable(n.Name)
	}
	for _, n := range r.t.Netns {
		for _, l := range n.Links {
			k := [2]string{n.Name, l.Name}
			r.lnks[k] = l
			switch l.Kind {
			case "bridge":
				r.made[k] = true
			case "loopback":
				r.made[k] = l.Name == "lo"
				if l.Name != "lo" {
					r.skip[k] = "a loopback link not called lo"
				}
			case "veth":
				p := l.Peer
				switch {
				case p == nil || p.Where == InUnnamed:
					r.skip[k] = "its peer is in a network namespace with no name"
				case p.Where == InHost:
					r.skip[k] = "its peer is in the network namespace nsh export ran in"
				case p.Where == InNamed:
					r.skip[k] = fmt.Sprintf("its peer is in network namespace %q, which was not exported", p.Netns)
				case p.Name == "":
					r.skip[k] = "its peer was not found"
				default:
					r.made[k] = true
					r.ends[k] = [2]string{p.Netns, p.Name}
				}
			default:
				r.skip[k] = fmt.Sprintf("nsh makes veth pairs and bridges, not %s links", l.Kind)
			}
		}
	}
	for _, n := range r.t.Netns {
		for _, l := range n.Links {
			if k := [2]string{n.Name, l.Name}; r.made[k] && l.Kind != "loopback" {
				r.lv[k] = r.variable(n.Name, l.Name)
			}
		}
	}
}

func (r *recipe) header() {
	var names []string
	for _, n := range r.t.Netns {
		names = append(names, n.Name)
	}
	what := "network namespaces"
	if len(names) == 1 {
		what = "network namespace"
	}
	r.line("# Rebuilds the %s %s as \"nsh export\" read them.", what, strings.Join(names, ", "))
	if r.opt.Persist {
		r.line("# Written with --persist: a plain \"nsh FILE\" run keeps what it builds")
		r.line("# (routes and rate limits are added by ip(8) and tc(8): route() and")
		r.line("# netem() have no persist()).")
	} else {
		r.line("# Written for \"nsh up\", which keeps what it builds. A plain \"nsh FILE\" run")
		r.line("# removes its links and routes when it ends, leaving the namespaces empty")
		r.line("# (\"nsh export --persist\" writes a recipe that keeps them).")
	}
	if len(names) == 0 {
		r.line("# There were none.")
	}
}

func (r *recipe) namespaces() {
	if len(r.t.Netns) == 0 {
		return
	}
	r.line("")
	for _, n := range r.t.Netns {
		lo := n.Link("lo")
		arg := ""
		if lo != nil && !lo.Up {
			arg = ", lo=False"
		}
		r.line("%s = netns(%s%s)", r.nsv[n.Name], strconv.Quote(n.Name), arg)
		if len(n.Aliases) > 0 {
			r.line("# also named %s in /run/netns: not rebuilt (a recipe makes one name per namespace)", strings.Join(quoteAll(n.Aliases), ", "))
		}
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// addrArg renders addresses as a veth() argument: one string, or a list.
func addrArg(addrs []string) string {
	if len(addrs) == 1 {
		return strconv.Quote(addrs[0])
	}
	return "[" + strings.Join(quoteAll(addrs), ", ") + "]"
}

// keep writes v.persist() when the recipe is for plain nsh.
func (r *recipe) keep(v string) {
	if r.opt.Persist {
		r.line("%s.persist()", v)
	}
}

func (r *recipe) bridges() {
	first := true
	for _, n := range r.t.Netns {
		for _, l := range n.Links {
			k := [2]string{n.Name, l.Name}
			if l.Kind != "bridge" {
				continue
			}
			if first {
				r.line("")
				first = false
			}
			v := r.lv[k]
			up := ""
			if !l.Up {
				up = ", up=False"
			}
			r.line("%s = bridge(%s, ns=%s%s)", v, strconv.Quote(l.Name), r.nsv[n.Name], up)
			r.keep(v)
			if l.MTU != defaultMTU {
				r.line("%s.set_mtu(%d)", v, l.MTU)
			}
			if len(l.Addrs) > 0 {
				r.line("%s.add_addr(%s)", v, strings.Join(quoteAll(l.Addrs), ", "))
			}
			r.master(n, l)
			r.shape(n, l, v)
		}
	}
}

// shape writes l's rate limit: netem(), or with Persist tc(8), as netem()
// restores the link's qdisc at the end of the run. The tbf made by tc has
// the burst and queue length netem(rate=) would give it.
func (r *recipe) shape(n *Netns, l *Link, v string) {
	if l.Rate == 0 {
		return
	}
	if !r.opt.Persist {
		r.line("%s.netem(rate=%d)", v, l.Rate)
		return
	}
	bytesPerSec := max(l.Rate/8, 1)
	burst := max(min(bytesPerSec/100, 1<<24), uint64(4*(l.MTU+14)))
	limit := min(burst+bytesPerSec/20, 1<<30) // 50 ms of traffic queued
	args := []string{"tc", "qdisc", "replace", "dev", l.Name, "root", "tbf", "rate", fmt.Sprintf("%dbit", l.Rate),
		"burst", strconv.FormatUint(burst, 10), "limit", strconv.FormatUint(limit, 10)}
	r.line("run([%s], ns=%s)", strings.Join(quoteAll(args), ", "), r.nsv[n.Name])
}

// master attaches l to its master, or says why it cannot.
func (r *recipe) master(n *Netns, l *Link) {
	if l.Master == "" {
		return
	}
	m := [2]string{n.Name, l.Master}
	if ml := r.lnks[m]; ml != nil && ml.Kind == "bridge" {
		r.line("%s.set_master(%s)", r.lv[[2]string{n.Name, l.Name}], r.lv[m])
		return
	}
	kind := "?"
	if ml := r.lnks[m]; ml != nil {
		kind = ml.Kind
	}
	r.line("# %s's master %s (%s) is no bridge: not attached", l.Name, l.Master, kind)
}

func (r *recipe) veths() {
	first := true
	for _, n := range r.t.Netns {
		for _, l := range n.Links {
			k := [2]string{n.Name, l.Name}
			pk, ok := r.ends[k]
			if !ok || !(k[0] < pk[0] || k[0] == pk[0] && k[1] <= pk[1]) {
				continue
			}
			if first {
				r.line("")
				first = false
			}
			p := r.lnks[pk]
			pn := r.t.Find(pk[0])
			args := []string{strconv.Quote(l.Name), strconv.Quote(p.Name), "ns=" + r.nsv[n.Name], "peer_ns=" + r.nsv[pn.Name]}
			if len(l.Addrs) > 0 {
				args = append(args, "addr="+addrArg(l.Addrs))
			}
			if len(p.Addrs) > 0 {
				args = append(args, "peer_addr="+addrArg(p.Addrs))
			}
			if l.MTU == p.MTU && l.MTU != defaultMTU {
				args = append(args, "mtu="+strconv.Itoa(l.MTU))
			}
			if !l.Up || !p.Up {
				args = append(args, "up=False")
			}
			v, pv := r.lv[k], r.lv[pk]
			r.call(v+", "+pv+" = veth(", args)
			r.keep(v)
			for _, e := range []struct {
				n *Netns
				l *Link
				v string
			}{{n, l, v}, {pn, p, pv}} {
				if l.MTU != p.MTU && e.l.MTU != defaultMTU {
					r.line("%s.set_mtu(%d)", e.v, e.l.MTU)
				}
				if e.l.Up && (!l.Up || !p.Up) {
					r.line("%s.up()", e.v)
				}
				r.master(e.n, e.l)
				r.shape(e.n, e.l, e.v)
			}
		}
	}
}

// call writes head + args + ")", wrapping the arguments past 80 columns.
func (r *recipe) call(head string, args []string) {
	s := head + strings.Join(args, ", ") + ")"
	if len(s) <= 80 {
		r.line("%s", s)
		return
	}
	line := head
	for i, a := range args {
		sep := ", "
		if i == len(args)-1 {
			sep = ")"
		}
		if len(line)+len(a)+len(sep) > 80 && line != head && strings.TrimSpace(line) != "" {
			r.line("%s", strings.TrimRight(line, " "))
			line = recipeIndent
		}
		line += a + sep
	}
	r.line("%s", line)
}

func (r *recipe) loopbacks() {
	for _, n := range r.t.Netns {
		lo := n.Link("lo")
		if lo == nil || len(lo.Addrs) == 0 && lo.MTU == loopbackMTU && lo.Rate == 0 {
			continue
		}
		r.line("")
		v := r.variable(n.Name, "lo")
		r.line("%s = link(\"lo\", ns=%s)", v, r.nsv[n.Name])
		if len(lo.Addrs) > 0 {
			r.line("%s.add_addr(%s)", v, strings.Join(quoteAll(lo.Addrs), ", "))
		}
		if lo.MTU != loopbackMTU {
			r.line("%s.set_mtu(%d)", v, lo.MTU)
		}
		r.shape(n, lo, v)
	}
}

// others writes what the recipe cannot make, as comments.
func (r *recipe) others() {
	first := true
	for _, n := range r.t.Netns {
		for _, l := range n.Links {
			why, ok := r.skip[[2]string{n.Name, l.Name}]
			if !ok {
				continue
			}
			if first {
				r.line("")
				r.line("# Not rebuilt:")
				first = false
			}
			what := fmt.Sprintf("%s link %s in %s", l.Kind, l.Name, n.Name)
			if len(l.Addrs) > 0 {
				what += " (" + strings.Join(l.Addrs, ", ") + ")"
			}
			r.line("# %s: %s", what, why)
		}
		for _, s := range n.Skipped {
			if first {
				r.line("")
				r.line("# Not rebuilt:")
				first = false
			}
			r.line("# %s in %s: %s", s.What, n.Name, s.Why)
		}
	}
}

func (r *recipe) routes() {
	first := true
	for _, n := range r.t.Netns {
		for _, rt := range n.Routes {
			if first {
				r.line("")
				first = false
			}
			if rt.Dev != "" && !r.made[[2]string{n.Name, rt.Dev}] {
				r.line("# route %s: not rebuilt, as its link %s is not", rt.ipArgs(), rt.Dev)
				continue
			}
			if r.opt.Persist {
				args := quoteAll(append([]string{"ip", rt.family(), "route", "add"}, strings.Fields(rt.ipArgs())...))
				r.line("run([%s], ns=%s)", strings.Join(args, ", "), r.nsv[n.Name])
				continue
			}
			dst := rt.Dst
			if dst == "default" && rt.V6 && rt.Via == "" {
				dst = "::/0" // route() takes "default" without via for IPv4
			}
			args := []string{strconv.Quote(dst)}
			if rt.Via != "" {
				args = append(args, "via="+strconv.Quote(rt.Via))
			}
			if rt.Dev != "" {
				args = append(args, "dev="+strconv.Quote(rt.Dev))
			}
			args = append(args, "ns="+r.nsv[n.Name])
			s := "route(" + strings.Join(args, ", ") + ")"
			if rt.Metric != rt.DefaultMetric() {
				s += fmt.Sprintf("  # metric %d not kept: route() takes none", rt.Metric)
			}
			r.line("%s", s)
		}
	}
}

func (rt Route) family() string {
	if rt.V6 {
		return "-6"
	}
	return "-4"
}

// ipArgs renders the route as the arguments of "ip route add".
func (rt Route) ipArgs() string {
	s := rt.Dst
	if rt.Via != "" {
		s += " via " + rt.Via
	}
	if rt.Dev != "" {
		s += " dev " + rt.Dev
	}
	if rt.Metric != rt.DefaultMetric() {
		s += " metric " + strconv.Itoa(rt.Metric)
	}
	return s
}

func (r *recipe) sysctls() {
	first := true
	for _, n := range r.t.Netns {
		for _, s := range n.Sysctls {
			if first {
				r.line("")
				first = false
			}
			p := ""
			if r.opt.Persist {
				p = ", persist=True"
			}
			r.line("sysctl(%s, %s, ns=%s%s)  # default %s", strconv.Quote(s.Key), strconv.Quote(s.Value), r.nsv[n.Name], p, s.Default)
		}
	}
}
