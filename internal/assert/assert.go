// Package assert implements the assert module predeclared in every nsh
// script, test and REPL session: assert.eq(a, b), assert.fails(fn, regex)
// and their kin. A failed assertion is a *Failure naming the assert call's
// file:line and both values; by default it is the error that stops the
// script, and New lets a Go test harness record it and go on instead.
package assert

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// Failure is a failed assertion: the error an assert function returns.
type Failure struct {
	Func   string          // the function, e.g. "assert.eq"
	Pos    syntax.Position // the call site: the innermost script frame
	Msg    string          // the msg= argument, "" if none
	Detail string          // what was wrong, e.g. "got 3, want 4"
}

// Error renders the failure as "assert.eq failed at test.star:12: got 3,
// want 4", with the msg= text (if any) before the detail.
func (f *Failure) Error() string {
	s := f.Func + " failed"
	if f.Pos.IsValid() {
		s += fmt.Sprintf(" at %s:%d", f.Pos.Filename(), f.Pos.Line)
	}
	s += ": "
	if f.Msg != "" {
		s += f.Msg + ": "
	}
	return s + f.Detail
}

// Short renders the failure without its position, for where the call site
// is printed before it anyway (an error's "file:line:col: " prefix):
// "assert.eq failed: got 3, want 4".
func (f *Failure) Short() string {
	return (&Failure{Func: f.Func, Msg: f.Msg, Detail: f.Detail}).Error()
}

// Module returns the assert module whose failures stop the script: each
// is an error, as fail() is.
func Module() *starlarkstruct.Module { return New(nil) }

// New returns the assert module. With report nil a failure is the assert
// call's error. With report set, a failure is passed to report and the
// call returns None, so the script goes on (a Go test harness records it,
// as go.starlark.net's starlarktest does); inside assert.fails, though, a
// failure is always an error, for assert.fails to catch.
func New(report func(th *starlark.Thread, f *Failure)) *starlarkstruct.Module {
	members := make(starlark.StringDict, len(funcs))
	for _, f := range funcs {
		members[f.name] = builtin(f, report)
	}
	return &starlarkstruct.Module{Name: "assert", Members: members}
}

// check is the body of an assert function: it returns the call's value,
// the detail of a failure ("" if the assertion holds), or an error for a
// call that is wrong in itself (bad arguments, values that cannot be
// compared).
type check func(th *starlark.Thread, name string, args starlark.Tuple, kwargs []starlark.Tuple, msg *starlark.Value) (starlark.Value, string, error)

// fn is one assert function: its implementation and its doc row.
type fn struct {
	name, sig, doc string
	check          check
}

// builtin wraps a check into the module's member, named "assert.NAME".
func builtin(f fn, report func(*starlark.Thread, *Failure)) *starlark.Builtin {
	full := "assert." + f.name
	return starlark.NewBuiltin(full, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var msg starlark.Value = starlark.None
		v, detail, err := f.check(th, full, args, kwargs, &msg)
		if err != nil {
			return nil, prefixed(full, err)
		}
		if detail == "" {
			return v, nil
		}
		fail := &Failure{Func: full, Pos: callSite(th), Msg: msgText(msg), Detail: detail}
		if report != nil && failsDepth(th) == 0 {
			report(th, fail)
			return starlark.None, nil
		}
		return nil, fail
	})
}

// prefixed makes err read "assert.NAME: ..." unless it already does.
func prefixed(name string, err error) error {
	if strings.HasPrefix(err.Error(), name+":") {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// callSite returns the position of the innermost script frame that called
// the builtin running on th (a frame whose file is not "<builtin>").
func callSite(th *starlark.Thread) syntax.Position {
	for d := 1; d < th.CallStackDepth(); d++ {
		if pos := th.CallFrame(d).Pos; pos.IsValid() && pos.Filename() != "<builtin>" {
			return pos
		}
	}
	return syntax.Position{}
}

func msgText(v starlark.Value) string {
	if v == nil || v == starlark.None {
		return ""
	}
	if s, ok := starlark.AsString(v); ok {
		return s
	}
	return v.String()
}

const failsKey = "nsh.assert.fails" // thread local: depth of assert.fails calls

func failsDepth(th *starlark.Thread) int {
	n, _ := th.Local(failsKey).(int)
	return n
}

// pair unpacks the (a, b, msg=None) arguments of a comparison.
func pair(name string, args starlark.Tuple, kwargs []starlark.Tuple, msg *starlark.Value) (a, b starlark.Value, err error) {
	err = starlark.UnpackArgs(name, args, kwargs, "a", &a, "b", &b, "msg?", msg)
	return a, b, err
}

func eqCheck(th *starlark.Thread, name string, args starlark.Tuple, kwargs []starlark.Tuple, msg *starlark.Value) (starlark.Value, string, error) {
	a, b, err := pair(name, args, kwargs, msg)
	if err != nil {
		return nil, "", err
	}
	eq, err := starlark.Equal(a, b)
	if err != nil {
		return nil, "", err
	}
	if eq {
		return starlark.None, "", nil
	}
	got, want := typedReprs(a, b)
	return nil, fmt.Sprintf("got %s, want %s", got, want), nil
}

func neCheck(th *starlark.Thread, name string, args starlark.Tuple, kwargs []starlark.Tuple, msg *starlark.Value) (starlark.Value, string, error) {
	a, b, err := pair(name, args, kwargs, msg)
	if err != nil {
		return nil, "", err
	}
	eq, err := starlark.Equal(a, b)
	if err != nil {
		return nil, "", err
	}
	if !eq {
		return starlark.None, "", nil
	}
	got, want := typedReprs(a, b)
	return nil, fmt.Sprintf("got %s, want anything but %s", got, want), nil
}

// ordered returns the check of one of lt, le, gt, ge.
func ordered(op syntax.Token) check {
	return func(th *starlark.Thread, name string, args starlark.Tuple, kwargs []starlark.Tuple, msg *starlark.Value) (starlark.Value, string, error) {
		a, b, err := pair(name, args, kwargs, msg)
		if err != nil {
			return nil, "", err
		}
		ok, err := starlark.Compare(op, a, b)
		if err != nil {
			return nil, "", err
		}
		if ok {
			return starlark.None, "", nil
		}
		got, want := Reprs(a, b)
		return nil, fmt.Sprintf("got %s, want %s %s", got, op, want), nil
	}
}

// truth returns the check of assert.true (want true) or assert.false.
func truth(want bool) check {
	return func(th *starlark.Thread, name string, args starlark.Tuple, kwargs []starlark.Tuple, msg *starlark.Value) (starlark.Value, string, error) {
		var cond starlark.Value
		if err := starlark.UnpackArgs(name, args, kwargs, "cond", &cond, "msg?", msg); err != nil {
			return nil, "", err
		}
		if bool(cond.Truth()) == want {
			return starlark.None, "", nil
		}
		kind := "true"
		if !want {
			kind = "false"
		}
		return nil, fmt.Sprintf("got %s, want a %s value", Repr(cond), kind), nil
	}
}

func containsCheck(th *starlark.Thread, name string, args starlark.Tuple, kwargs []starlark.Tuple, msg *starlark.Value) (starlark.Value, string, error) {
	var container, x starlark.Value
	if err := starlark.UnpackArgs(name, args, kwargs, "container", &container, "x", &x, "msg?", msg); err != nil {
		return nil, "", err
	}
	in, err := starlark.Binary(syntax.IN, x, container)
	if err != nil {
		return nil, "", err
	}
	if in.Truth() {
		return starlark.None, "", nil
	}
	return nil, fmt.Sprintf("%s does not contain %s", Repr(container), Repr(x)), nil
}

func failsCheck(th *starlark.Thread, name string, args starlark.Tuple, kwargs []starlark.Tuple, msg *starlark.Value) (starlark.Value, string, error) {
	var f starlark.Callable
	var pattern string
	if err := starlark.UnpackArgs(name, args, kwargs, "fn", &f, "regex", &pattern, "msg?", msg); err != nil {
		return nil, "", err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, "", fmt.Errorf("bad regex %q: %v", pattern, err)
	}
	depth := failsDepth(th)
	th.SetLocal(failsKey, depth+1)
	defer th.SetLocal(failsKey, depth)
	v, err := starlark.Call(th, f, nil, nil)
	if err == nil {
		return nil, fmt.Sprintf("fn did not fail (it returned %s)", Repr(v)), nil
	}
	text := ErrorText(err)
	if !re.MatchString(text) {
		got, want := Reprs(starlark.String(text), starlark.String(pattern))
		return nil, fmt.Sprintf("got error %s, want one matching %s", got, want), nil
	}
	return starlark.String(text), "", nil
}

// ErrorText returns the message of an error a Starlark call returned,
// without the backtrace: what assert.fails matches and returns.
func ErrorText(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Msg
	}
	return err.Error()
}
