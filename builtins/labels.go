package builtins

import (
	"fmt"
	"io"
	"sync"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nsctx"
)

// Labelled namespaces: netns_new() and host() make namespaces without
// moving the current context, and give them a label that names them
// wherever nsh shows a namespace (str(), errors, the REPL prompt). In a
// lab (nsh up) a new network namespace is also a node, named
// lab.prefix + label in /run/netns.

const netnsNewDoc = `Creates a new network namespace labelled label, without moving the current context.
Returns it as nsh.namespace; str() and errors show it by its label,
net:h1, and so does the REPL prompt in it. Use it with ns= (veth(...,
ns=h1)) or setns(h1). Its loopback is up unless lo=False. Like unshare's,
it lives as long as the run holds it, and has no name in /run/netns;
under nsh up it is the lab's node lab.prefix + label, named so in
/run/netns (nsh exec LAB NODE -- CMD). A label is 1 to 64 letters, digits,
'_', '-' or '.', not starting with '.' or '-'. Give each namespace its own:
a plain run does not check (a label names, nsh compares namespaces by
inode), a lab refuses a label it has already used. Example:
  h1 = netns_new("h1")
  h2 = netns_new("h2")
  veth("h1-eth0", "h2-eth0", ns=h1, peer_ns=h2, addr="10.0.0.1/24", peer_addr="10.0.0.2/24")
  ping("10.0.0.2", ns=h1)`

const hostDoc = `Creates new namespaces of the given kinds, labelled label, without moving the current context.
Returns the context they make with the current one (the kinds not given
stay as they are) as nsh.namespaces, for ns= or setns(): a Mininet-style
host. kinds is a list of kind names or CLONE_NEW* constants, or one of
them (see help("kinds")); default ["net"]. A new mount namespace is
recursively private, as unshare()'s. A new network namespace has its loopback
up unless lo=False; hostname= sets the hostname of the new UTS namespace
("uts" must be among the kinds). Each new namespace shows as KIND:LABEL
(net:h1, uts:h1) in str(), errors and the REPL prompt. Under nsh up the
network namespace is the lab's node lab.prefix + label, and its UTS and
IPC namespaces are the node's (nsh exec LAB NODE -- CMD joins them).
Example:
  h1 = host("h1", kinds=["net", "uts"], hostname="h1")
  r = host("r")
  veth("h1-eth0", "r-eth0", ns=h1, peer_ns=r, addr="10.1.0.2/24", peer_addr="10.1.0.1/24")
  run("hostname", ns=h1).stdout   # "h1\n"`

// checkLabel refuses what a label may not be: it is a hostname-like word,
// usable as a file name in /run/netns. (By hand, as labs.CheckName: a
// regexp compiled at package init costs every nsh start.)
func checkLabel(label string) error {
	ok := len(label) >= 1 && len(label) <= 64
	for i := 0; ok && i < len(label); i++ {
		c := label[i]
		word := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
		ok = word || i > 0 && (c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("invalid label %q (1 to 64 letters, digits, '_', '-' or '.', not starting with '.' or '-')", label)
	}
	return nil
}

func netnsNewBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var label string
	lo := true
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "label", &label, "lo?", &lo); err != nil {
		return nil, err
	}
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	ctx, err := st.newLabelled(th, label, unix.CLONE_NEWNET, lo)
	if err != nil {
		return nil, err
	}
	return &Namespace{ns: ctx.Get("net"), st: st}, nil
}

func hostBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var label string
	var kinds, hostname starlark.Value = nil, starlark.None
	lo := true
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "label", &label, "kinds?", &kinds, "lo?", &lo, "hostname?", &hostname); err != nil {
		return nil, err
	}
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	flags := unix.CLONE_NEWNET
	if kinds != nil {
		var list starlark.Tuple
		switch k := kinds.(type) {
		case starlark.String, starlark.Int:
			list = starlark.Tuple{k}
		case starlark.Iterable:
			it := k.Iterate()
			var x starlark.Value
			for it.Next(&x) {
				list = append(list, x)
			}
			it.Done()
		default:
			return nil, fmt.Errorf("%s: kinds must be a list of kinds, not %s", fn.Name(), kinds.Type())
		}
		var err error
		if flags, err = parseKinds(list); err != nil {
			return nil, err
		}
		if flags == 0 {
			return nil, fmt.Errorf("%s: no namespace kind given (e.g. kinds=[\"net\", \"uts\"])", fn.Name())
		}
	}
	var name *string
	if hostname != starlark.None {
		s, ok := starlark.AsString(hostname)
		if !ok {
			return nil, fmt.Errorf("%s: hostname must be a string, not %s", fn.Name(), hostname.Type())
		}
		if len(s) == 0 || len(s) > 64 {
			return nil, fmt.Errorf("%s: hostname %q is not 1 to 64 bytes", fn.Name(), s)
		}
		if err := checkNoNUL("hostname", s); err != nil {
			return nil, err
		}
		if flags&unix.CLONE_NEWUTS == 0 {
			return nil, fmt.Errorf("%s: hostname= needs a new UTS namespace: add \"uts\" to the kinds", fn.Name())
		}
		name = &s
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	ctx, err := st.newLabelled(th, label, flags, lo)
	if err != nil {
		return nil, err
	}
	if name != nil {
		if err := st.setUTSName(th, ctx.Get("uts"), true, *name); err != nil {
			return nil, err
		}
	}
	return &Namespaces{ctx: ctx, st: st}, nil
}

// newLabelled makes namespaces of the kinds in flags from the current
// context, labelled label, and returns the current context with them; the
// current context does not move. In a lab the network namespace is made
// as the node lab.prefix + label (netns()), and the other kinds in it, so
// that they are the node's.
func (st *state) newLabelled(th *starlark.Thread, label string, flags int, lo bool) (nsctx.Context, error) {
	cur := st.current()
	opts := unshareOpts{propagation: "private", lo: lo}
	if st.lab != nil && flags&unix.CLONE_NEWNET != 0 {
		name := st.lab.lab.Prefix + label
		if err := checkNetnsName(name); err != nil {
			return cur, err
		}
		net, opened, err := st.makeNetns(th, name, false, lo)
		if err != nil {
			return cur, err
		}
		if opened {
			return cur, fmt.Errorf("label %q: the lab's network namespace %q exists already (an earlier netns_new, host or netns made it): give each its own label", label, name)
		}
		st.setLabel(label, net)
		cur = cur.With(net)
		if flags &^= unix.CLONE_NEWNET; flags == 0 {
			return cur, nil
		}
	}
	created, err := st.unshareNew(th, cur, flags, &opts, label)
	if err != nil {
		return cur, err
	}
	return cur.With(created...), nil
}

// setLabel labels namespaces.
func (st *state) setLabel(label string, nss ...*nsctx.NS) {
	st.mu.Lock()
	for _, n := range nss {
		st.labels[[2]uint64{n.Dev, n.Ino}] = label
	}
	st.mu.Unlock()
}

// labelOf returns the label of ns, "" if it has none.
func (st *state) labelOf(ns *nsctx.NS) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.labels[[2]uint64{ns.Dev, ns.Ino}]
}

// nsName renders a namespace of any kind: by its label (net:h1), else as
// the kernel does (net:[4026532201]).
func (st *state) nsName(ns *nsctx.NS) string {
	if l := st.labelOf(ns); l != "" {
		return ns.Kind.Name + ":" + l
	}
	return ns.String()
}

// nsWhere names a namespace in an error: as nsLabel does, and nsh's own
// network namespace as the host's, with the usual cause of acting there.
func (st *state) nsWhere(ns *nsctx.NS) string {
	if nsctx.Same(ns, st.tab.Initial.Get(ns.Kind.Name)) && ns.Kind.Name == "net" {
		return "the host's network namespace (did you forget ns=?)"
	}
	return st.nsLabel(ns)
}

// hostNote says once per script run, on w, that a builtin creates a link
// in the host's network namespace (issue: a forgotten ns=).
type hostNote struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

const hostNoteKey = "nsh.builtins.hostnote"

func hostNoteOf(reg *lifecycle.Registry) *hostNote {
	return reg.Shared(hostNoteKey, func() any { return &hostNote{} }).(*hostNote)
}

// SetHostNote makes the builtins of the run of reg that create a link in
// nsh's own network namespace without an explicit ns= (veth, bridge) say
// so once on w: "veth: creating in the host's network namespace; pass ns=
// to build elsewhere". nsh enables it for scripts and turns it off (w nil)
// in the REPL and with --no-host-note.
func SetHostNote(reg *lifecycle.Registry, w io.Writer) {
	n := hostNoteOf(reg)
	n.mu.Lock()
	n.w = w
	n.mu.Unlock()
}

// noteHost prints the host note for builtin fn if the note is on and not
// printed yet in the run, and ns is nsh's own network namespace.
func (st *state) noteHost(fn string, ns *nsctx.NS) {
	if !nsctx.Same(ns, st.tab.Initial.Get("net")) {
		return
	}
	n := hostNoteOf(st.reg)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.w == nil || n.done {
		return
	}
	n.done = true
	fmt.Fprintf(n.w, "nsh: %s: creating in the host's network namespace; pass ns= to build elsewhere (nsh --no-host-note hides this note)\n", fn)
}
