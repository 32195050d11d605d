package format

// Fuzz targets for fmt()'s format specs and templates (issue 18, item 3);
// see builtins/fuzz_test.go for the others. `go test` runs them on their
// seed corpora (testdata/fuzz), `make fuzz` for FUZZTIME each.

import (
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// FuzzSpec covers format specs (ParseSpec, then Spec.Format of an int,
// a float and a string): no spec panics, a refused spec is an error that
// quotes it, and what is formatted stays within the width and precision
// bounds (maxWidth). fmt() came after issue 15, so none of its defects
// was here.
func FuzzSpec(f *testing.F) {
	f.Fuzz(func(t *testing.T, spec string, i int64, x float64, s string) {
		sp, err := ParseSpec(spec)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(spec)) {
				t.Fatalf("ParseSpec(%q): error %q does not quote the spec", spec, err)
			}
			return
		}
		if sp.Width > maxWidth || sp.Prec > maxWidth {
			t.Fatalf("ParseSpec(%q) = width %d, precision %d", spec, sp.Width, sp.Prec)
		}
		big := starlark.MakeInt64(i)
		big = big.Mul(big).Mul(big) // up to ~190 bits
		for _, v := range []starlark.Value{starlark.MakeInt64(i), big, starlark.Float(x), starlark.String(s), starlark.True, starlark.None} {
			out, err := sp.Format(v)
			if err != nil {
				if err.Error() == "" {
					t.Fatalf("format(%s, %q): empty error", v, spec)
				}
				continue
			}
			if len(out) > 4*maxWidth+len(v.String())+1024 {
				t.Fatalf("format(%s, %q) is %d bytes", v, spec, len(out))
			}
		}
	})
}

// FuzzTemplate covers fmt()'s templates (Template): fields by position,
// number and name, .attr and [index], conversions and nested specs. No
// template panics and a refusal is a non-empty error. None of issue 15's
// defects was here (fmt() came after it).
func FuzzTemplate(f *testing.F) {
	st := starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{"mbit": starlark.Float(9.5)})
	args := starlark.Tuple{starlark.MakeInt(7), starlark.Float(2.5), starlark.String("s"),
		starlark.Tuple{starlark.MakeInt(1), starlark.MakeInt(2)}, st}
	d := starlark.NewDict(1)
	d.SetKey(starlark.String("k"), starlark.MakeInt(3))
	kwargs := []starlark.Tuple{{starlark.String("name"), starlark.String("x")}, {starlark.String("width"), starlark.MakeInt(6)}, {starlark.String("d"), d}}
	f.Fuzz(func(t *testing.T, tmpl string) {
		out, err := Template(tmpl, args, kwargs)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("Template(%q): empty error", tmpl)
			}
			return
		}
		if len(out) > len(tmpl)*(maxWidth+64)+64 {
			t.Fatalf("Template(%q) is %d bytes", tmpl, len(out))
		}
	})
}
