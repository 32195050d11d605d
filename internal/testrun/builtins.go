package testrun

import (
	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
)

// SkipError is the error skip() returns: it ends the test (or, called at
// the top of a test file, every test of the file) as skipped.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// marks is what a test said about itself through xfail().
type marks struct {
	xfail  bool
	reason string
}

// Table returns the builtins nsh test predeclares in test files, skip and
// xfail, for `nsh doc`; a test's run gets its own (see table).
func Table() doc.Table { return table(nil) }

// table returns skip and xfail; xfail records into m (nil: for docs only).
func table(m *marks) doc.Table {
	return doc.Table{Funcs: []doc.Func{
		{
			Name: "skip",
			Sig:  "skip(reason)",
			Doc: `Ends the running test as skipped, with the reason (nsh test only).
Predeclared in *_test.star files run by "nsh test", not in plain scripts.
Called in a test or in setup(), it skips that test; at the top of the file,
every test of the file. nsh's teardown still runs, and so does teardown()
if setup() had returned.
  def test_ipv6():
      if not run(["test", "-d", "/proc/sys/net/ipv6"], check=False).ok:
          skip("no IPv6 in this kernel")
      ...`,
			Impl: skipBuiltin,
		},
		{
			Name: "xfail",
			Sig:  "xfail(reason)",
			Doc: `Marks the running test as expected to fail, with the reason (nsh test only).
Predeclared in *_test.star files run by "nsh test". The test goes on; if it
then fails, it is reported as xfail (an expected failure, which counts as
ok); if it passes, as xpass, which counts as a failure (as pytest's
strict xfail): the known bug was fixed, so remove the mark.
  def test_frag_over_tunnel():
      xfail("known bug: PMTU discovery over the tunnel, issue 42")
      ...`,
			Impl: func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
				var reason string
				if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "reason", &reason); err != nil {
					return nil, err
				}
				if m != nil {
					m.xfail, m.reason = true, reason
				}
				return starlark.None, nil
			},
		},
	}}
}

func skipBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var reason string
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "reason", &reason); err != nil {
		return nil, err
	}
	return nil, &SkipError{Reason: reason}
}
