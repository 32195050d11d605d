package builtins

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
)

// Namespace is the Starlark value of one namespace, held open by the run.
type Namespace struct {
	ns *nsctx.NS
	st *state
}

var (
	_ starlark.HasAttrs   = (*Namespace)(nil)
	_ starlark.Comparable = (*Namespace)(nil)
)

// String renders the namespace by its label (net:h1, see netns_new), else
// as the kernel does: net:[4026531840].
func (n *Namespace) String() string { return n.st.nsName(n.ns) }

// Type returns "nsh.namespace".
func (n *Namespace) Type() string { return "nsh.namespace" }

// Freeze is a no-op: a Namespace is immutable.
func (n *Namespace) Freeze() {}

// Truth is always true.
func (n *Namespace) Truth() starlark.Bool { return true }

// Hash hashes the inode.
func (n *Namespace) Hash() (uint32, error) { return uint32(n.ns.Ino ^ n.ns.Ino>>32), nil }

// CompareSameType compares namespaces by device and inode.
func (n *Namespace) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	m := y.(*Namespace)
	switch op {
	case syntax.EQL:
		return nsctx.Same(n.ns, m.ns), nil
	case syntax.NEQ:
		return !nsctx.Same(n.ns, m.ns), nil
	}
	return false, fmt.Errorf("%s %s %s not supported", n.Type(), op, y.Type())
}

var namespaceType = doc.Members[*Namespace]{
	Name: "nsh.namespace",
	Doc: `One namespace, held open by the run (str() is its label, net:h1, if netns_new() or
host() gave it one, else the kernel's notation, net:[4026531840]).
Two values of the same namespace compare equal. The run holds a namespace
while anything of the run refers to it: a value (kept in a variable or a
list), the current context or a saved one, a link, mount or process in it;
then it lets it go. A namespace nsh created lives as long as the run holds
it or something else keeps it alive: a process inside it, or a bind mount
made with persist().`,
	Attrs: []doc.AttrOf[*Namespace]{
		{Name: "kind", Doc: `"mnt", "uts", "ipc", "pid", "net", "user", "cgroup" or "time"`,
			Get: func(n *Namespace) (starlark.Value, error) { return starlark.String(n.ns.Kind.Name), nil }},
		{Name: "inode", Doc: "the namespace's inode number (as in /proc/PID/ns/KIND)",
			Get: func(n *Namespace) (starlark.Value, error) { return starlark.MakeUint64(n.ns.Ino), nil }},
		{Name: "dev", Doc: "device number of the nsfs the inode lives on",
			Get: func(n *Namespace) (starlark.Value, error) { return starlark.MakeUint64(n.ns.Dev), nil }},
		{Name: "label", Doc: "the label netns_new() or host() gave it, else None",
			Get: func(n *Namespace) (starlark.Value, error) {
				if s := n.st.labelOf(n.ns); s != "" {
					return starlark.String(s), nil
				}
				return starlark.None, nil
			}},
		{Name: "name", Doc: "the ip-netns name of a net namespace opened or created by name, else None",
			Get: func(n *Namespace) (starlark.Value, error) {
				if s := n.st.nameOf(n.ns); s != "" {
					return starlark.String(s), nil
				}
				return starlark.None, nil
			}},
		{Name: "initial", Doc: "True if this is the namespace of its kind nsh was started in",
			Get: func(n *Namespace) (starlark.Value, error) {
				return starlark.Bool(nsctx.Same(n.ns, n.st.tab.Initial.Get(n.ns.Kind.Name))), nil
			}},
		{Name: "owner", Doc: `the user namespace that owns it (for a user namespace, its parent);
None when that is outside nsh's reach (e.g. the host's, seen from rootless nsh)`,
			Get: (*Namespace).owner},
	},
	Methods: []doc.MethodOf[*Namespace]{
		{Name: "persist", Sig: "persist(path)", Impl: (*Namespace).persist, Doc: `Bind-mounts the namespace on path so it outlives the script, like
unshare --net=FILE. The file is created if missing. The bind mount is made in
the current context's mount namespace and is not undone at the end of the
run; remove it with umount(path). The parent mount of path must not be
shared (the kernel refuses with EINVAL); /run/netns-style directories that
are their own mount work.`},
	},
}

// AttrNames lists the attributes and methods.
func (n *Namespace) AttrNames() []string { return namespaceType.AttrNames() }

// Attr returns an attribute or a bound method.
func (n *Namespace) Attr(name string) (starlark.Value, error) { return namespaceType.Attr(n, name) }

// owner opens the owning user namespace (NS_GET_USERNS).
func (n *Namespace) owner() (starlark.Value, error) {
	fd, err := unix.IoctlRetInt(n.ns.Fd(), unix.NS_GET_USERNS)
	if errors.Is(err, unix.EPERM) {
		return starlark.None, nil // owned by an ancestor of nsh's user namespace
	}
	if err != nil {
		return nil, nserr.New("ioctl NS_GET_USERNS", n.st.nsName(n.ns), err)
	}
	defer unix.Close(fd)
	o, err := n.st.tab.Open(fmt.Sprintf("/proc/self/fd/%d", fd), "user")
	if err != nil {
		return nil, err
	}
	return &Namespace{ns: o, st: n.st}, nil
}

// Namespaces is the Starlark value of a context: one namespace per kind.
type Namespaces struct {
	ctx nsctx.Context
	st  *state
}

var (
	_ starlark.HasAttrs   = (*Namespaces)(nil)
	_ starlark.Comparable = (*Namespaces)(nil)
)

// String lists the namespaces that differ from those nsh started in.
func (n *Namespaces) String() string {
	var parts []string
	for i, k := range nsthread.Kinds {
		if !nsctx.Same(n.ctx[i], n.st.tab.Initial[i]) {
			parts = append(parts, n.st.nsName(n.ctx[i]))
		}
		_ = k
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "namespaces(initial)"
	}
	return "namespaces(" + strings.Join(parts, ", ") + ")"
}

// Type returns "nsh.namespaces".
func (n *Namespaces) Type() string { return "nsh.namespaces" }

// Freeze is a no-op: a Namespaces is immutable.
func (n *Namespaces) Freeze() {}

// Truth is always true.
func (n *Namespaces) Truth() starlark.Bool { return true }

// Hash combines the inodes.
func (n *Namespaces) Hash() (uint32, error) {
	var h uint32
	for _, ns := range n.ctx {
		h = h*31 + uint32(ns.Ino)
	}
	return h, nil
}

// CompareSameType compares contexts kind by kind.
func (n *Namespaces) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	m := y.(*Namespaces)
	switch op {
	case syntax.EQL:
		return n.ctx.Equal(m.ctx), nil
	case syntax.NEQ:
		return !n.ctx.Equal(m.ctx), nil
	}
	return false, fmt.Errorf("%s %s %s not supported", n.Type(), op, y.Type())
}

var namespacesType = doc.Members[*Namespaces]{
	Name: "nsh.namespaces",
	Doc: `A context: one namespace of each kind, as returned by namespaces(), unshare(),
setns() and host(). Its attributes are the eight kinds. str() lists the kinds that
differ from the namespaces nsh started in. For pid and time, the namespace is
the one new processes are started in (pid_for_children, time_for_children).`,
	Attrs: []doc.AttrOf[*Namespaces]{
		kindAttr("mnt", "mount namespace"), kindAttr("uts", "hostname/domainname"), kindAttr("ipc", "SysV IPC and POSIX message queues"),
		kindAttr("pid", "PID namespace of new processes"), kindAttr("net", "network namespace"), kindAttr("user", "user namespace"),
		kindAttr("cgroup", "cgroup namespace"), kindAttr("time", "time namespace of new processes"),
		{Name: "changed", Doc: "list of the kinds that differ from the namespaces nsh started in",
			Get: func(n *Namespaces) (starlark.Value, error) {
				var out []starlark.Value
				for i, k := range nsthread.Kinds {
					if !nsctx.Same(n.ctx[i], n.st.tab.Initial[i]) {
						out = append(out, starlark.String(k.Name))
					}
				}
				return starlark.NewList(out), nil
			}},
	},
}

// kindAttr is the attribute of a context that is its namespace of a kind.
func kindAttr(kind, text string) doc.AttrOf[*Namespaces] {
	return doc.AttrOf[*Namespaces]{Name: kind, Doc: text, Get: func(n *Namespaces) (starlark.Value, error) {
		if ns := n.ctx.Get(kind); ns != nil {
			return &Namespace{ns: ns, st: n.st}, nil
		}
		return nil, nil
	}}
}

// AttrNames lists the kinds and changed.
func (n *Namespaces) AttrNames() []string { return namespacesType.AttrNames() }

// Attr returns the namespace of a kind, or changed.
func (n *Namespaces) Attr(name string) (starlark.Value, error) { return namespacesType.Attr(n, name) }
