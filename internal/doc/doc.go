// Package doc holds the table that describes nsh's builtins: one row per
// function or type, carrying its name, signature, doc text and Go
// implementation. The interpreter builds its predeclared names from it and
// help(), `nsh doc` and the generated reference all read the same rows.
package doc

import (
	"fmt"
	"slices"
	"strings"

	"go.starlark.net/starlark"
)

// Impl is the Go implementation of a builtin function or method.
type Impl = func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// Func describes one builtin function or method.
type Func struct {
	Name string // name as called from Starlark
	Sig  string // signature line, e.g. "veth(name, peer, ns=None)"
	Doc  string // help text: first line a summary, then details
	Impl Impl   // nil for methods (their type's Members table binds them) and a module's members (assert.eq)
}

// Type describes a Starlark type that wraps a kernel object.
type Type struct {
	Name    string // the Type() string, e.g. "nsh.link"
	Doc     string
	Attrs   []Attr // plain attributes
	Methods []Func // methods, with a nil Impl (see Members)
}

// Attr describes a plain attribute of a type.
type Attr struct{ Name, Doc string }

// Table is the set of builtins one family (or all of nsh) offers.
type Table struct {
	Funcs  []Func
	Types  []Type
	Consts map[string]starlark.Value // predeclared constants, e.g. CLONE_NEWNET
	Topic  map[string]string         // doc of constants and other topics by name
}

// Join concatenates tables; a name defined twice is a programming error.
func Join(tables ...Table) Table {
	var nf, nt, nc, np int
	for _, t := range tables {
		nf, nt, nc, np = nf+len(t.Funcs), nt+len(t.Types), nc+len(t.Consts), np+len(t.Topic)
	}
	out := Table{
		Funcs:  make([]Func, 0, nf),
		Types:  make([]Type, 0, nt),
		Consts: make(map[string]starlark.Value, nc),
		Topic:  make(map[string]string, np),
	}
	for _, t := range tables {
		out.Funcs = append(out.Funcs, t.Funcs...)
		out.Types = append(out.Types, t.Types...)
		for k, v := range t.Consts {
			out.Consts[k] = v
		}
		for k, v := range t.Topic {
			out.Topic[k] = v
		}
	}
	slices.SortFunc(out.Funcs, func(a, b Func) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(out.Funcs); i++ {
		if out.Funcs[i].Name == out.Funcs[i-1].Name {
			panic("doc: builtin defined twice: " + out.Funcs[i].Name)
		}
	}
	return out
}

// Globals returns the predeclared names the table defines.
func (t Table) Globals() starlark.StringDict {
	g := make(starlark.StringDict, len(t.Funcs)+len(t.Consts)+8)
	for _, f := range t.Funcs {
		if f.Impl != nil {
			g[f.Name] = NewBuiltin(f.Name, f.Impl)
		}
	}
	for k, v := range t.Consts {
		g[k] = v
	}
	return g
}

// NewBuiltin wraps impl so that its errors read "name: message" while still
// unwrapping to the original error (errno included).
func NewBuiltin(name string, impl Impl) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		v, err := impl(th, b, args, kw)
		if err != nil {
			if !strings.HasPrefix(err.Error(), b.Name()+": ") {
				err = &namedError{name: b.Name(), err: err}
			}
			return nil, err
		}
		return v, nil
	})
}

type namedError struct {
	name string
	err  error
}

func (e *namedError) Error() string { return e.name + ": " + e.err.Error() }
func (e *namedError) Unwrap() error { return e.err }

// Func returns the row of the named function.
func (t Table) Func(name string) (Func, bool) {
	for _, f := range t.Funcs {
		if f.Name == name {
			return f, true
		}
	}
	return Func{}, false
}

// Type returns the row of the named type; "nsh.link" and "link" both match
// a type named "nsh.link", as does its capitalised short name "Link".
func (t Table) Type(name string) (Type, bool) {
	for _, ty := range t.Types {
		short := strings.TrimPrefix(ty.Name, "nsh.")
		if ty.Name == name || strings.EqualFold(short, name) {
			return ty, true
		}
	}
	return Type{}, false
}

// Method returns the row of method name of the type named typ.
func (t Table) Method(typ, name string) (Func, bool) {
	ty, ok := t.Type(typ)
	if !ok {
		return Func{}, false
	}
	for _, m := range ty.Methods {
		if m.Name == name {
			return m, true
		}
	}
	return Func{}, false
}

// FormatFunc renders a function's help text.
func FormatFunc(f Func) string {
	return f.Sig + "\n\n" + indent(strings.TrimSpace(f.Doc)) + "\n"
}

// FormatType renders a type's help text with its attributes and methods.
func FormatType(ty Type) string {
	var b strings.Builder
	fmt.Fprintf(&b, "type %s\n\n%s\n", ty.Name, indent(strings.TrimSpace(ty.Doc)))
	if len(ty.Attrs) > 0 {
		b.WriteString("\nattributes:\n")
		for _, a := range ty.Attrs {
			fmt.Fprintf(&b, "  %-14s %s\n", a.Name, a.Doc)
		}
	}
	if len(ty.Methods) > 0 {
		b.WriteString("\nmethods:\n")
		for _, m := range ty.Methods {
			fmt.Fprintf(&b, "  %-30s %s\n", m.Sig, Summary(m.Doc))
		}
	}
	return b.String()
}

// Summary returns the first sentence of a doc text, on one line.
func Summary(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if i := strings.Index(text+" ", ". "); i >= 0 {
		return text[:i+1]
	}
	return text
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "    " + l
		}
	}
	return strings.Join(lines, "\n")
}
