package builtins

import (
	"fmt"
	"os"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
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
			if len(s) > 64 {
				return nil, fmt.Errorf("name %q is longer than 64 bytes", s)
			}
			if err := checkNoNUL("name", s); err != nil {
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
			rec := &change.UTSName{Domain: !host, Name: newName, Label: uts.String()}
			if !nsctx.Same(uts, st.tab.Initial.Get("uts")) {
				rec.UTS = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), uts.Fd())
			}
			rec.Apply = func() error {
				return nsthread.Do(joins, func() error {
					if host {
						return nserr.New("sethostname", fmt.Sprintf("%q in %s", newName, uts), unix.Sethostname([]byte(newName)))
					}
					return nserr.New("setdomainname", fmt.Sprintf("%q in %s", newName, uts), unix.Setdomainname([]byte(newName)))
				})
			}
			if _, err := st.ex.Do(th, rec); err != nil {
				return nil, err
			}
			return starlark.None, nil
		}
		var out string
		err = nsthread.Do(joins, func() error {
			var u unix.Utsname
			if err := unix.Uname(&u); err != nil {
				return nserr.New("uname", "", err)
			}
			if host {
				out = unix.ByteSliceToString(u.Nodename[:])
			} else {
				out = unix.ByteSliceToString(u.Domainname[:])
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return starlark.String(out), nil
	}
}
