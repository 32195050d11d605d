package builtins

import (
	"fmt"
	"os"
	"strings"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
	"nsh.dev/nsh/internal/spell"
)

func sysctlTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "sysctl", Sig: "sysctl(key, value=None, ns=None, persist=False)", Impl: sysctlBuiltin, Doc: `Reads, or writes when value is given, a kernel parameter such as ip_forward.
Returns its value as a string (after a write, the value read back). key
is "net.ipv4.ip_forward" or "net/ipv4/conf/h1-eth0/forwarding" (use the
slash form when a part contains a dot). The parameter is read and written
from a thread inside ns's namespaces (a target as for setns(); default the
current context): net.* parameters belong to a network namespace, and
/proc/sys/net shows the namespace of the thread that opens it. A write is
undone at the end of the run (the old value is written back) unless
persist=True or ns is a network namespace this run created (what is set
there lives and dies with it).
Example: sysctl("net.ipv4.ip_forward", 1, ns=router)`},
		},
	}
}

// validSysctlKey reports whether key reads like a sysctl name: dotted
// ("net.ipv4.ip_forward") or a path under /proc/sys ("net/ipv4/conf/eth0.1/
// forwarding"), of letters, digits and _.:@+- only, with no empty path
// component and beginning with a letter, digit or underscore.
func validSysctlKey(key string) bool {
	if key == "" || key[len(key)-1] == '/' || strings.Contains(key, "//") {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case i > 0 && strings.IndexByte(".:@+-/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// sysctlPath maps a key to its file under /proc/sys.
func sysctlPath(key string) (string, error) {
	if !validSysctlKey(key) {
		return "", fmt.Errorf("malformed sysctl key %q (want e.g. net.ipv4.ip_forward)", key)
	}
	rel := key
	if !strings.Contains(key, "/") {
		rel = strings.ReplaceAll(key, ".", "/")
	}
	for _, part := range strings.Split(rel, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("malformed sysctl key %q", key)
		}
	}
	return "/proc/sys/" + rel, nil
}

func sysctlBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var key string
	var value, nsv starlark.Value = starlark.None, starlark.None
	persist := false
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "key", &key, "value?", &value, "ns?", &nsv, "persist?", &persist); err != nil {
		return nil, err
	}
	path, err := sysctlPath(key)
	if err != nil {
		return nil, err
	}
	var newVal string
	set := value != starlark.None
	if set {
		switch v := value.(type) {
		case starlark.String:
			newVal = string(v)
		case starlark.Int:
			newVal = v.String()
		case starlark.Bool:
			newVal = "0"
			if v {
				newVal = "1"
			}
		default:
			return nil, fmt.Errorf("sysctl value must be a string, int or bool, not %s", value.Type())
		}
		// The kernel stops reading a string parameter at a NUL.
		if err := checkNoNUL("sysctl value", newVal); err != nil {
			return nil, err
		}
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	persist = persist && st.lab == nil // a lab restores it at nsh down
	ctx := st.current()
	if nsv != starlark.None {
		if l, ok := nsv.(*Link); ok {
			ctx = ctx.With(l.netns())
		} else if ctx, _, err = resolveTarget(st, nsv); err != nil {
			return nil, err
		}
	}
	joins := sysctlJoins(st, ctx)
	var old, now string
	if !set {
		err = st.doIn(joins, func() error {
			var err error
			now, err = readSysctl(key, path)
			return err
		})
		if err != nil {
			return nil, err
		}
		return starlark.String(now), nil
	}
	rec := &change.Sysctl{NS: st.netnsRef(ctx.Get("net")), Key: key, Value: newVal}
	for _, j := range joins {
		if j.Type != unix.CLONE_NEWNET {
			rec.Other = strings.TrimSpace(rec.Other + " " + j.Name)
		}
	}
	rec.What = fmt.Sprintf("sysctl %s=%s", key, newVal)
	// The reaper reads /proc/sys from its own (nsh's initial) namespaces
	// but the network and UTS ones: it cannot restore a parameter of an
	// IPC namespace nsh joined. In a namespace the run made, nothing is
	// restored.
	var net, uts *nsctx.NS
	created := st.createdHere(ctx.Get("net"))
	reapable := !created
	for _, j := range joins {
		switch j.Type {
		case unix.CLONE_NEWNET:
			net = ctx.Get("net")
		case unix.CLONE_NEWUTS:
			uts = ctx.Get("uts")
		default:
			reapable = false
		}
	}
	rec.Apply = func() error {
		err := st.doIn(joins, func() error {
			var err error
			if old, err = readSysctl(key, path); err != nil {
				return err
			}
			if reapable && old != newVal {
				// Written ahead: put back only over the value nsh writes.
				rec.Intend(reaper.WriteIf(net, uts, path, old, newVal))
			}
			if err := writeSysctl(key, path, newVal); err != nil {
				return err
			}
			fault.At("sysctl.written")
			now, err = readSysctl(key, path)
			return err
		})
		if err != nil {
			return err
		}
		rec.Old = old
		if persist || old == now || created {
			return nil
		}
		rec.Undo = func() (bool, error) {
			return true, st.doIn(joins, func() error { return writeSysctl(key, path, old) })
		}
		if reapable {
			rec.Reap = func() []reaper.Op { return []reaper.Op{reaper.WriteIf(net, uts, path, old, now)} }
		}
		return nil
	}
	if _, err := st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	return starlark.String(now), nil
}

// sysctlJoins enters the namespaces whose parameters /proc/sys shows per
// namespace (net, uts, ipc), not the mount namespace: /proc/sys is read
// through nsh's own /proc.
func sysctlJoins(st *state, ctx nsctx.Context) []nsthread.Join {
	var out []nsthread.Join
	for _, j := range st.tab.Joins(ctx) {
		if j.Type == unix.CLONE_NEWNET || j.Type == unix.CLONE_NEWUTS || j.Type == unix.CLONE_NEWIPC {
			out = append(out, j)
		}
	}
	return out
}

// doIn runs fn after joins on a pinned thread, or right here when there is
// nothing to join (every unpinned thread is in nsh's own namespaces). When
// joins are network namespaces only, the pinned thread is the caller's (see
// nsthread.NetRunner).
func (st *state) doIn(joins []nsthread.Join, fn func() error) error {
	if len(joins) == 0 {
		return fn()
	}
	return netOf(st).maker.Do(joins, fn)
}

func readSysctl(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return "", noSysctl(key, path)
		}
		return "", nserr.New("read", path, err)
	}
	return strings.TrimRight(string(b), "\n"), nil
}

func writeSysctl(key, path, val string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return noSysctl(key, path)
		}
		return nserr.New("open", path, err)
	}
	_, err = f.WriteString(val)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nserr.New("write", fmt.Sprintf("%q to %s", val, path), err)
	}
	return nil
}

// noSysctl is the error for a key with no file under /proc/sys, with the
// nearest existing key when one is near ("net.ipv4.ip_fowrard": did you
// mean net.ipv4.ip_forward?). It runs where the key was looked up, so it
// sees the same namespace's /proc/sys/net.
func noSysctl(key, path string) error {
	msg := fmt.Sprintf("no sysctl %q (%s does not exist", key, path)
	if s := nearestSysctl(key); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return nserr.Explain(unix.ENOENT, "%s)", msg)
}

// nearestSysctl corrects the first part of key that names nothing under
// /proc/sys to the nearest entry of its directory, if the key so corrected
// exists; it returns the corrected key in key's own form (dotted or
// slashed), or "".
func nearestSysctl(key string) string {
	sep := "."
	if strings.Contains(key, "/") {
		sep = "/"
	}
	parts := strings.Split(key, sep)
	dir := "/proc/sys"
	for i, p := range parts {
		next := dir + "/" + p
		if _, err := os.Lstat(next); err == nil {
			dir = next
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return ""
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			if sep == "/" || !strings.Contains(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		n := spell.Nearest(p, names)
		if n == "" {
			return ""
		}
		fixed := append(append(append([]string(nil), parts[:i]...), n), parts[i+1:]...)
		if _, err := os.Lstat("/proc/sys/" + strings.Join(fixed, "/")); err != nil {
			return ""
		}
		return strings.Join(fixed, sep)
	}
	return ""
}
