package doc

import (
	"sort"

	"go.starlark.net/starlark"
)

// Members is the table of a Starlark type: its doc and, one row each, its
// attributes and methods with the Go code behind them. The value's Attr and
// AttrNames and the type's doc row are all derived from it (as
// go.starlark.net derives builtinAttr and builtinAttrNames from its method
// maps), so what a value offers and what help() shows cannot drift.
// T is the receiver type, e.g. *builtins.Link.
type Members[T starlark.Value] struct {
	Name    string // the Type() string, e.g. "nsh.link"
	Doc     string
	Attrs   []AttrOf[T]   // in the order help() lists them
	Methods []MethodOf[T] // in the order help() lists them
}

// AttrOf is one plain attribute of a T: its doc row and its getter.
type AttrOf[T starlark.Value] struct {
	Name, Doc string
	Get       func(recv T) (starlark.Value, error)
}

// MethodOf is one method of a T: its doc row and its implementation, which
// receives the value the method is bound to.
type MethodOf[T starlark.Value] struct {
	Name string // name as called from Starlark
	Sig  string // signature line, e.g. "set_mtu(mtu)"
	Doc  string
	Impl func(recv T, thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)
}

// Attr implements recv's starlark.HasAttrs.Attr: the attribute's value, or
// the method bound to recv; nil, nil when there is no such name.
func (m *Members[T]) Attr(recv T, name string) (starlark.Value, error) {
	for i := range m.Attrs {
		if m.Attrs[i].Name == name {
			return m.Attrs[i].Get(recv)
		}
	}
	for i := range m.Methods {
		if m.Methods[i].Name == name {
			impl := m.Methods[i].Impl
			return NewBuiltin(name, func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
				return impl(recv, th, fn, args, kwargs)
			}).BindReceiver(recv), nil
		}
	}
	return nil, nil
}

// AttrNames implements starlark.HasAttrs.AttrNames: the names of the
// attributes and methods, sorted.
func (m *Members[T]) AttrNames() []string {
	names := make([]string, 0, len(m.Attrs)+len(m.Methods))
	for _, a := range m.Attrs {
		names = append(names, a.Name)
	}
	for _, f := range m.Methods {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names
}

// Type returns the type's row of the doc table.
func (m *Members[T]) Type() Type {
	ty := Type{Name: m.Name, Doc: m.Doc}
	for _, a := range m.Attrs {
		ty.Attrs = append(ty.Attrs, Attr{Name: a.Name, Doc: a.Doc})
	}
	for _, f := range m.Methods {
		ty.Methods = append(ty.Methods, Func{Name: f.Name, Sig: f.Sig, Doc: f.Doc})
	}
	return ty
}
