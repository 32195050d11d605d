package builtins

import (
	"sort"
	"testing"

	"go.starlark.net/starlark"
)

// TestTypesDocumented checks that every attribute and method a value
// offers is in its type's doc row, and nothing more, so help() cannot drift.
func TestTypesDocumented(t *testing.T) {
	values := map[string]starlark.HasAttrs{
		"nsh.mount":      &Mount{},
		"nsh.namespace":  &Namespace{},
		"nsh.namespaces": &Namespaces{},
	}
	tab := Table()
	for name, v := range values {
		ty, ok := tab.Type(name)
		if !ok {
			t.Errorf("type %s has no doc row", name)
			continue
		}
		var documented []string
		for _, a := range ty.Attrs {
			documented = append(documented, a.Name)
		}
		for _, m := range ty.Methods {
			documented = append(documented, m.Name)
		}
		sort.Strings(documented)
		have := append([]string(nil), v.AttrNames()...)
		sort.Strings(have)
		if len(have) != len(documented) {
			t.Errorf("%s: attributes %v, documented %v", name, have, documented)
			continue
		}
		for i := range have {
			if have[i] != documented[i] {
				t.Errorf("%s: attributes %v, documented %v", name, have, documented)
				break
			}
		}
	}
}
