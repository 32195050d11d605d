package builtins

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

// TestSignatures checks that every builtin's and method's documented
// signature (its Sig, the first line of its help()) names the parameters
// its code unpacks, in order, with the same optional ones. It reads this
// package's source: each table row with a Sig and an Impl, the function the
// Impl names, and the starlark.UnpackArgs call it makes (itself or in a
// helper it hands its arguments to). Where the code parses some arguments
// by hand (*kinds, *cidrs), the rest is checked by calling the builtin:
// a keyword the Sig does not name is refused, and with no arguments the
// first required one is reported missing.
func TestSignatures(t *testing.T) {
	src := parseSource(t)
	rows := src.rows()
	// Every row of the table is one the source check found.
	found := map[string]bool{}
	for _, r := range rows {
		found[r.sig] = true
	}
	tab := Table()
	for _, f := range tab.Funcs {
		if f.Impl != nil && !found[f.Sig] {
			t.Errorf("%s: no row with Sig %q and an Impl found in the source", f.Name, f.Sig)
		}
	}
	for _, ty := range tab.Types {
		for _, m := range ty.Methods {
			if !found[m.Sig] {
				t.Errorf("%s.%s: no row with Sig %q and an Impl found in the source", ty.Name, m.Name, m.Sig)
			}
		}
	}
	for _, r := range rows {
		t.Run(r.label(), func(t *testing.T) {
			sig, err := parseSig(r.sig)
			if err != nil {
				t.Fatalf("%s: %v", r.pos, err)
			}
			if sig.name != r.name {
				t.Errorf("%s: Sig %q is not of %s", r.pos, r.sig, r.name)
			}
			calls, err := src.unpackCalls(r.impl)
			if err != nil {
				t.Fatalf("%s: %v", r.pos, err)
			}
			if len(calls) > 1 {
				t.Fatalf("%s: %d UnpackArgs calls; the check expects one", r.pos, len(calls))
			}
			var call *unpackCall
			if len(calls) == 1 {
				call = &calls[0]
				t.Logf("%s unpacks %v (keywords only: %v)", call.pos, call.names, call.kwOnly)
			} else {
				t.Logf("parses its arguments by hand")
			}
			for _, msg := range compare(sig, call) {
				t.Errorf("%s: Sig %q: %s", r.pos, r.sig, msg)
			}
			if call == nil || call.kwOnly {
				checkByHand(t, r, sig, call == nil)
			}
		})
	}
}

// A row is a table row with a Sig and an Impl: a doc.Func or a
// doc.MethodOf.
type row struct {
	name, sig string
	impl      ast.Expr
	pos       token.Position
}

// label names a row's subtest: "veth", or "Link.up" for a method.
func (r row) label() string {
	if sel, ok := r.impl.(*ast.SelectorExpr); ok {
		x := sel.X
		if p, ok := x.(*ast.ParenExpr); ok {
			x = p.X
		}
		if st, ok := x.(*ast.StarExpr); ok {
			x = st.X
		}
		if id, ok := x.(*ast.Ident); ok {
			return id.Name + "." + r.name
		}
	}
	return r.name
}

type param struct {
	name     string
	optional bool // has a default
	star     bool // *args
}

func (p param) String() string {
	switch {
	case p.star:
		return "*" + p.name
	case p.optional:
		return p.name + "?"
	}
	return p.name
}

type signature struct {
	name   string
	params []param
}

// parseSig reads "f(a, b=1, *rest, c=None)".
func parseSig(s string) (signature, error) {
	open, ok := strings.CutSuffix(s, ")")
	name, list, ok2 := strings.Cut(open, "(")
	if !ok || !ok2 {
		return signature{}, fmt.Errorf("malformed signature %q", s)
	}
	sig := signature{name: name}
	if strings.TrimSpace(list) == "" {
		return sig, nil
	}
	for _, p := range splitTop(list) {
		p = strings.TrimSpace(p)
		var q param
		q.name, _, q.optional = strings.Cut(p, "=")
		q.name, q.star = strings.CutPrefix(q.name, "*")
		if !token.IsIdentifier(q.name) || (q.star && q.optional) {
			return signature{}, fmt.Errorf("malformed parameter %q in %q", p, s)
		}
		sig.params = append(sig.params, q)
	}
	return sig, nil
}

// splitTop splits a parameter list at commas outside quotes.
func splitTop(s string) []string {
	var out []string
	var quote rune
	start := 0
	for i, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// An unpackCall is a starlark.UnpackArgs call: the names it unpacks, and
// whether it gets only the keyword arguments (positional ones parsed by
// hand).
type unpackCall struct {
	names  []param
	kwOnly bool
	pos    token.Position
}

// compare lists the differences between a signature and the unpack call
// of its code (nil: all arguments parsed by hand).
func compare(sig signature, call *unpackCall) []string {
	star := slices.IndexFunc(sig.params, func(p param) bool { return p.star })
	var msgs []string
	var want []param
	switch {
	case call == nil:
		// By hand: only positional arguments, ending with *rest.
		if star != len(sig.params)-1 {
			msgs = append(msgs, "the code parses its arguments by hand, taking no keywords: the Sig must end with *rest")
		}
		for _, p := range sig.params {
			if p.optional {
				msgs = append(msgs, fmt.Sprintf("%s has a default, but the code parses only positional arguments", p.name))
			}
		}
		return msgs
	case call.kwOnly:
		if star < 0 {
			return []string{fmt.Sprintf("%s unpacks keywords only, so the Sig needs a *rest before them", call.pos)}
		}
		want = sig.params[star+1:]
	default:
		if star >= 0 {
			return []string{fmt.Sprintf("%s unpacks every argument; the code takes no *%s", call.pos, sig.params[star].name)}
		}
		want = sig.params
	}
	have := call.names
	if !slices.EqualFunc(want, have, func(a, b param) bool { return a.name == b.name }) {
		return []string{fmt.Sprintf("names %v, code (%s) unpacks %v", names(want), call.pos, names(have))}
	}
	for i := range want {
		if want[i].optional != have[i].optional {
			what := map[bool]string{true: "optional", false: "required"}
			msgs = append(msgs, fmt.Sprintf("%s is %s, code (%s) has it %s", want[i].name, what[want[i].optional], call.pos, what[have[i].optional]))
		}
	}
	return msgs
}

func names(ps []param) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.name)
	}
	return out
}

// checkByHand calls a builtin whose positional arguments the code parses by
// hand: with no arguments, the first required one is reported missing; and
// when no UnpackArgs reads the keywords (noKeywords), a keyword is refused.
// The calls fail before any syscall, as every builtin validates its
// arguments first.
func checkByHand(t *testing.T, r row, sig signature, noKeywords bool) {
	t.Helper()
	fn := builtinOf(t, r.name, r.sig)
	if fn == nil {
		return
	}
	th := &starlark.Thread{Name: "signature test"}
	if noKeywords {
		kw := []starlark.Tuple{{starlark.String("no_such_keyword"), starlark.None}}
		if _, err := starlark.Call(th, fn, nil, kw); err == nil || !strings.Contains(err.Error(), `unexpected keyword argument "no_such_keyword"`) {
			t.Errorf("%s(no_such_keyword=None): got %v, want an unexpected keyword argument", r.name, err)
		}
	}
	if len(sig.params) > 0 && !sig.params[0].optional && !sig.params[0].star {
		want := "missing argument for " + sig.params[0].name
		if _, err := starlark.Call(th, fn, nil, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s(): got %v, want %q", r.name, err, want)
		}
	}
}

// receivers are values whose methods checkByHand calls: zero values, as the
// calls fail before the method touches its receiver.
var receivers = []starlark.HasAttrs{&Link{}, &Namespace{}, &Namespaces{}, &Mount{}, &Process{}, &Route{}, IDMap{}}

// builtinOf finds the function or method whose Sig is sig.
func builtinOf(t *testing.T, name, sig string) starlark.Callable {
	tab := Table()
	if f, ok := tab.Func(name); ok && f.Sig == sig {
		return starlark.NewBuiltin(name, f.Impl)
	}
	for _, ty := range tab.Types {
		for _, m := range ty.Methods {
			if m.Name != name || m.Sig != sig {
				continue
			}
			for _, v := range receivers {
				if v.Type() == ty.Name {
					x, err := v.Attr(name)
					if err != nil || x == nil {
						t.Fatalf("%s.%s: %v, %v", ty.Name, name, x, err)
					}
					return x.(starlark.Callable)
				}
			}
			t.Errorf("%s.%s parses its arguments by hand: add a %s to receivers", ty.Name, name, ty.Name)
			return nil
		}
	}
	t.Errorf("%s: no function or method with Sig %q", name, sig)
	return nil
}

// source is this package's Go files (not the tests), parsed.
type source struct {
	fset  *token.FileSet
	files []*ast.File
	funcs map[string]*ast.FuncDecl // "f", or "Type.method"
}

func parseSource(t *testing.T) *source {
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	s := &source{fset: token.NewFileSet(), funcs: map[string]*ast.FuncDecl{}}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(s.fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.files = append(s.files, f)
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				s.funcs[funcKey(fd)] = fd
			}
		}
	}
	return s
}

func funcKey(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if st, ok := typ.(*ast.StarExpr); ok {
		typ = st.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// rows finds the composite literals with a Sig string and an Impl.
func (s *source) rows() []row {
	var out []row
	for _, f := range s.files {
		ast.Inspect(f, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			var r row
			for _, e := range cl.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				switch key, _ := kv.Key.(*ast.Ident); {
				case key == nil:
				case key.Name == "Name":
					r.name = stringLit(kv.Value)
				case key.Name == "Sig":
					r.sig = stringLit(kv.Value)
				case key.Name == "Impl":
					r.impl = kv.Value
				}
			}
			if r.sig != "" && r.impl != nil {
				r.pos = s.fset.Position(cl.Pos())
				out = append(out, r)
			}
			return true
		})
	}
	return out
}

func stringLit(e ast.Expr) string {
	if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
		if s, err := strconv.Unquote(bl.Value); err == nil {
			return s
		}
	}
	return ""
}

// unpackCalls finds the UnpackArgs calls an Impl makes: in the function it
// names (for a call such as idmapBuiltin("uid"), in the function that makes
// it), and in the functions of this package it passes its argument tuple or
// keyword list to, a few calls deep.
func (s *source) unpackCalls(impl ast.Expr) ([]unpackCall, error) {
	fd, err := s.resolve(impl)
	if err != nil {
		return nil, err
	}
	var calls []unpackCall
	seen := map[*ast.FuncDecl]bool{}
	var visit func(fd *ast.FuncDecl, depth int) error
	visit = func(fd *ast.FuncDecl, depth int) error {
		if seen[fd] || depth > 3 {
			return nil
		}
		seen[fd] = true
		tuples := tupleParams(fd.Body)
		for p := range tupleParams(fd.Type) {
			tuples[p] = true
		}
		var err error
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || err != nil {
				return err == nil
			}
			if isSel(call.Fun, "starlark", "UnpackPositionalArgs") {
				err = fmt.Errorf("%s: UnpackPositionalArgs is not checked yet; extend this test", s.fset.Position(call.Pos()))
				return false
			}
			if isSel(call.Fun, "starlark", "UnpackArgs") {
				var c unpackCall
				c, err = s.unpackCall(call, tuples)
				calls = append(calls, c)
				return false
			}
			if !passesTuple(call, tuples) {
				return true
			}
			for _, callee := range s.callees(call.Fun) {
				if err = visit(callee, depth+1); err != nil {
					return false
				}
			}
			return true
		})
		return err
	}
	return calls, visit(fd, 0)
}

// resolve finds the declaration an Impl expression names.
func (s *source) resolve(e ast.Expr) (*ast.FuncDecl, error) {
	switch e := e.(type) {
	case *ast.CallExpr: // a function that returns the Impl
		return s.resolve(e.Fun)
	case *ast.Ident:
		if fd := s.funcs[e.Name]; fd != nil {
			return fd, nil
		}
	case *ast.SelectorExpr: // a method expression: (*Link).upMethod
		x := e.X
		if p, ok := x.(*ast.ParenExpr); ok {
			x = p.X
		}
		if st, ok := x.(*ast.StarExpr); ok {
			x = st.X
		}
		if id, ok := x.(*ast.Ident); ok {
			if fd := s.funcs[id.Name+"."+e.Sel.Name]; fd != nil {
				return fd, nil
			}
		}
	}
	return nil, fmt.Errorf("cannot find the function of Impl %s", exprString(e))
}

// callees finds the declarations a call may reach: a function by name, or
// every method of that name.
func (s *source) callees(fun ast.Expr) []*ast.FuncDecl {
	switch f := fun.(type) {
	case *ast.Ident:
		if fd := s.funcs[f.Name]; fd != nil {
			return []*ast.FuncDecl{fd}
		}
	case *ast.SelectorExpr:
		var out []*ast.FuncDecl
		for k, fd := range s.funcs {
			if strings.HasSuffix(k, "."+f.Sel.Name) {
				out = append(out, fd)
			}
		}
		return out
	}
	return nil
}

// tupleParams names the parameters (of a function type, or of the function
// literals in a body) that are a starlark.Tuple or a []starlark.Tuple.
func tupleParams(n ast.Node) map[string]bool {
	out := map[string]bool{}
	ast.Inspect(n, func(n ast.Node) bool {
		ft, ok := n.(*ast.FuncType)
		if !ok || ft.Params == nil {
			return true
		}
		for _, f := range ft.Params.List {
			typ := f.Type
			if at, ok := typ.(*ast.ArrayType); ok {
				typ = at.Elt
			}
			if isSel(typ, "starlark", "Tuple") {
				for _, n := range f.Names {
					out[n.Name] = true
				}
			}
		}
		return true
	})
	return out
}

func passesTuple(call *ast.CallExpr, tuples map[string]bool) bool {
	for _, a := range call.Args {
		if id, ok := a.(*ast.Ident); ok && tuples[id.Name] {
			return true
		}
	}
	return false
}

func (s *source) unpackCall(call *ast.CallExpr, tuples map[string]bool) (unpackCall, error) {
	c := unpackCall{pos: s.fset.Position(call.Pos())}
	if len(call.Args) < 3 {
		return c, fmt.Errorf("%s: UnpackArgs with %d arguments", c.pos, len(call.Args))
	}
	switch a := call.Args[1].(type) {
	case *ast.Ident:
		switch {
		case a.Name == "nil":
			c.kwOnly = true
		case !tuples[a.Name]:
			return c, fmt.Errorf("%s: UnpackArgs of %s, not of the builtin's arguments", c.pos, a.Name)
		}
	default:
		return c, fmt.Errorf("%s: UnpackArgs of %s, not of the builtin's arguments", c.pos, exprString(a))
	}
	optional := false
	for i := 3; i < len(call.Args); i += 2 {
		name := stringLit(call.Args[i])
		if name == "" {
			return c, fmt.Errorf("%s: UnpackArgs parameter %s is not a string literal", c.pos, exprString(call.Args[i]))
		}
		// As UnpackArgs reads them: after an optional parameter, all are.
		base := strings.TrimRight(name, "?")
		optional = optional || base != name
		c.names = append(c.names, param{name: base, optional: optional})
	}
	return c, nil
}

func isSel(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}

func exprString(e ast.Expr) string {
	var b strings.Builder
	ast.Fprint(&b, token.NewFileSet(), e, nil)
	return strings.Join(strings.Fields(b.String()), " ")
}
