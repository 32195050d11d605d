package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
)

// utsBuiltin implements hostname() (host=true) and domainname().
func utsBuiltin(host bool) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name starlark.Value = starlark.None
		var target starlark.Value = starlark.None
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name?", &name, "ns?", &target); err != nil {
			return nil, err
		}
		var newName string
		set := false
		if name != starlark.None {
			s, ok := starlark.AsString(name)
			if !ok {
				return nil, fmt.Errorf("name must be a string, not %s", name.Type())
			}
			if err := checkUTSName(s); err != nil {
				return nil, err
			}
			newName, set = s, true
		}
		st, err := stateOf(th)
		if err != nil {
			return nil, err
		}
		ctx, err := st.contextOf(target)
		if err != nil {
			return nil, err
		}
		uts := ctx.Get("uts")
		joins := st.tab.Joins(ctx.With(uts))
		if set {
			return starlark.None, st.setUTSName(th, uts, host, newName)
		}
		out, err := utsName(joins, host)
		if err != nil {
			return nil, err
		}
		return starlark.String(out), nil
	}
}

// checkUTSName refuses a hostname or domainname the kernel would refuse or
// cut short: longer than 64 bytes (__NEW_UTS_LEN: EINVAL), or holding a
// NUL (the kernel keeps what precedes it).
func checkUTSName(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("name %q is longer than 64 bytes", s)
	}
	return checkNoNUL("name", s)
}

// utsName reads the hostname (host) or domainname of the UTS namespace
// joins enter.
func utsName(joins []nsthread.Join, host bool) (string, error) {
	var out string
	err := nsthread.Do(joins, func() error {
		var err error
		out, err = uname(host)
		return err
	})
	return out, err
}

// uname reads the hostname (host) or domainname of the calling thread's
// UTS namespace.
func uname(host bool) (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", nserr.New("uname", "", err)
	}
	if host {
		return unix.ByteSliceToString(u.Nodename[:]), nil
	}
	return unix.ByteSliceToString(u.Domainname[:]), nil
}

// setUTSName sets the hostname (host) or domainname of uts. In a UTS
// namespace that outlives the run (nsh's own, one it joined), the old
// name is restored at the end of the run, and by the reaper if nsh is
// killed, while the name is still the one nsh set; in one unshare() made
// nothing needs restoring.
func (st *state) setUTSName(th *starlark.Thread, uts *nsctx.NS, host bool, name string) error {
	joins := st.tab.Joins(nsctx.Context{}.With(uts))
	where := st.nsName(uts)
	rec := &change.UTSName{Domain: !host, Name: name, Label: where}
	rec.What = fmt.Sprintf("hostname of %s", where)
	if !host {
		rec.What = fmt.Sprintf("domainname of %s", where)
	}
	var reapNS *nsctx.NS // nil: the reaper's own UTS namespace, nsh's
	if !nsctx.Same(uts, st.tab.Initial.Get("uts")) {
		rec.UTS = change.FdPath(uts.Fd())
		reapNS = uts
	}
	set := func(v string) error {
		if host {
			err := unix.Sethostname([]byte(v))
			if err == nil {
				fault.At("uts.set")
			}
			return nserr.New("sethostname", fmt.Sprintf("%q in %s", v, where), err)
		}
		return nserr.New("setdomainname", fmt.Sprintf("%q in %s", v, where), unix.Setdomainname([]byte(v)))
	}
	if !st.madeHere(uts) {
		old, err := utsName(joins, host)
		if err != nil {
			return err
		}
		if old != name {
			rec.Old, rec.Restore = old, true
			file := "/proc/sys/kernel/hostname"
			if !host {
				file = "/proc/sys/kernel/domainname"
			}
			rec.Ahead = func() []reaper.Op { return []reaper.Op{reaper.WriteIf(nil, reapNS, file, old, name)} }
			rec.Undo = func() (bool, error) {
				did := false
				err := nsthread.Do(joins, func() error {
					cur, err := uname(host)
					if err != nil || cur != name {
						return err // changed since: not nsh's to restore
					}
					did = true
					return set(old)
				})
				return did, err
			}
		}
	}
	rec.Apply = func() error { return nsthread.Do(joins, func() error { return set(name) }) }
	_, err := st.ex.Do(th, rec)
	return err
}
