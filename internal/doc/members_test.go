package doc_test

import (
	"errors"
	"slices"
	"testing"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
)

// box is a value whose attributes come from a Members table.
type box struct{ n int }

func (b *box) String() string                           { return "box" }
func (b *box) Type() string                             { return "test.box" }
func (b *box) Freeze()                                  {}
func (b *box) Truth() starlark.Bool                     { return true }
func (b *box) Hash() (uint32, error)                    { return 0, nil }
func (b *box) Attr(name string) (starlark.Value, error) { return boxType.Attr(b, name) }
func (b *box) AttrNames() []string                      { return boxType.AttrNames() }

var boxType = doc.Members[*box]{
	Name: "test.box",
	Doc:  "A box.",
	Attrs: []doc.AttrOf[*box]{
		{Name: "n", Doc: "the number", Get: func(b *box) (starlark.Value, error) { return starlark.MakeInt(b.n), nil }},
		{Name: "bad", Doc: "fails", Get: func(b *box) (starlark.Value, error) { return nil, errors.New("no bad") }},
	},
	Methods: []doc.MethodOf[*box]{
		{Name: "inc", Sig: "inc(by=1)", Doc: "Adds by.", Impl: func(b *box, th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			by := 1
			if err := starlark.UnpackArgs(fn.Name(), args, kw, "by?", &by); err != nil {
				return nil, err
			}
			b.n += by
			return starlark.None, nil
		}},
	},
}

func TestMembers(t *testing.T) {
	b := &box{n: 1}
	if got := b.AttrNames(); !slices.Equal(got, []string{"bad", "inc", "n"}) {
		t.Errorf("AttrNames = %v", got)
	}
	if v, err := b.Attr("n"); err != nil || v != starlark.MakeInt(1) {
		t.Errorf("n = %v, %v", v, err)
	}
	if v, err := b.Attr("nope"); v != nil || err != nil {
		t.Errorf("nope = %v, %v; want nil, nil (no such attribute)", v, err)
	}
	if _, err := b.Attr("bad"); err == nil {
		t.Error("a getter's error is lost")
	}
	// A method is bound to its receiver, and its errors are named after it.
	inc, _ := b.Attr("inc")
	fn := inc.(*starlark.Builtin)
	if fn.Receiver() != b || fn.Name() != "inc" {
		t.Errorf("inc is %v bound to %v", fn.Name(), fn.Receiver())
	}
	th := &starlark.Thread{}
	if _, err := starlark.Call(th, fn, starlark.Tuple{starlark.MakeInt(2)}, nil); err != nil || b.n != 3 {
		t.Errorf("inc(2): %v, n = %d", err, b.n)
	}
	if _, err := starlark.Call(th, fn, starlark.Tuple{starlark.String("x")}, nil); err == nil || err.Error() != "inc: for parameter by: got string, want int" {
		t.Errorf("inc(\"x\"): %v", err)
	}
	// The doc row lists attributes and methods in table order.
	ty := boxType.Type()
	if ty.Name != "test.box" || ty.Doc != "A box." || len(ty.Attrs) != 2 || ty.Attrs[0] != (doc.Attr{Name: "n", Doc: "the number"}) ||
		len(ty.Methods) != 1 || ty.Methods[0].Sig != "inc(by=1)" || ty.Methods[0].Doc != "Adds by." || ty.Methods[0].Impl != nil {
		t.Errorf("Type() = %+v", ty)
	}
}
