package assert

import (
	"go.starlark.net/syntax"

	"nsh.dev/nsh/internal/doc"
)

// funcs are the module's functions with their docs, in the order help()
// shows them (doc.Join sorts them by name).
var funcs = []fn{
	{"eq", "assert.eq(a, b, msg=None)", `Fails unless a == b.
a is the value the script got, b the one it wants:
  assert.eq(len(routes()), 3, msg="routes after link up")
fails with "t.star:7:10: assert.eq failed: routes after link up: got
2, want 3". Values of different types show their types; a long value is cut
around its first difference.`, eqCheck},
	{"ne", "assert.ne(a, b, msg=None)", `Fails if a == b.
  assert.ne(host("h1").net, host("h2").net)`, neCheck},
	{"true", "assert.true(cond, msg=None)", `Fails unless cond is true (in Starlark's sense: not False, None, 0 or empty).
  assert.true(ping("10.0.0.2").ok, msg="h1 reaches h2")`, truth(true)},
	{"false", "assert.false(cond, msg=None)", `Fails unless cond is false (False, None, 0 or empty).
  assert.false(a.is_up, msg="a after a.down()")`, truth(false)},
	{"contains", "assert.contains(container, x, msg=None)", `Fails unless x in container.
container is a list, tuple, set, dict (its keys) or string (x a substring):
  assert.contains(p.stdout, "3 packets received")`, containsCheck},
	{"fails", "assert.fails(fn, regex, msg=None)", `Calls fn(), which must fail with an error matching regex; returns the error text.
regex is Go's RE2 syntax, searched for anywhere in the error's message
(without the traceback):
  err = assert.fails(lambda: veth("bad name!", "x"), "whitespace")
If fn returns instead, the failure says "fn did not fail (it returned X)";
if its error does not match, it shows the error and the regex. A failed
assertion inside fn is an error like any other, so assert.fails can check
one.`, failsCheck},
	{"lt", "assert.lt(a, b, msg=None)", `Fails unless a < b.
  assert.lt(len(ping("10.0.0.2", count=20).errors), 2)`, ordered(syntax.LT)},
	{"le", "assert.le(a, b, msg=None)", `Fails unless a <= b.
  assert.le(p.avg, 5.0, msg="mean rtt in ms")`, ordered(syntax.LE)},
	{"gt", "assert.gt(a, b, msg=None)", `Fails unless a > b.
  assert.gt(transfer("10.0.0.2", ns).mbit, 90)`, ordered(syntax.GT)},
	{"ge", "assert.ge(a, b, msg=None)", `Fails unless a >= b.
  assert.ge(ping("10.0.0.2", count=20).received, 19)`, ordered(syntax.GE)},
}

// Topic is the help text of the assert module itself: help(assert).
const Topic = `assert: checks for scripts and tests; a failed check stops the script.
  assert.eq(a, b)  assert.ne(a, b)  assert.true(cond)  assert.false(cond)
  assert.contains(container, x)  assert.fails(fn, regex)
  assert.lt(a, b)  assert.le(a, b)  assert.gt(a, b)  assert.ge(a, b)
Each takes an optional msg= printed with the failure. A failure is an error
naming the assert call's file:line and both values, e.g.
  test.star:12:10: assert.eq failed: got 3, want 4
(a script exits 1; nsh test reports the test failed). help(assert.eq) and
the others print the doc of one. A script may define its own global named
assert, which hides this module in that file.`

// Table returns the doc rows of the module: one function row per assert
// function, named "assert.eq" and so on, so that help(assert.eq) and nsh
// doc find them, and the "assert" topic. The rows have no Impl, so
// doc.Table.Globals does not predeclare them: the module itself is
// predeclared as "assert" (see Module).
func Table() doc.Table {
	t := doc.Table{Topic: map[string]string{"assert": Topic}}
	for _, f := range funcs {
		t.Funcs = append(t.Funcs, doc.Func{Name: "assert." + f.name, Sig: f.sig, Doc: f.doc})
	}
	return t
}
