package builtins

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/mount"
)

// parse calls parseMount with keyword arguments given as name, value pairs.
func parse(kv ...any) (*mount.Request, bool, error) {
	var kwargs []starlark.Tuple
	for i := 0; i < len(kv); i += 2 {
		var v starlark.Value
		switch x := kv[i+1].(type) {
		case string:
			v = starlark.String(x)
		case bool:
			v = starlark.Bool(x)
		case int:
			v = starlark.MakeInt(x)
		case nil:
			v = starlark.None
		}
		kwargs = append(kwargs, starlark.Tuple{starlark.String(kv[i].(string)), v})
	}
	return parseMount("mount", nil, kwargs)
}

// TestParseMount checks the Starlark side of mount(): the arguments reach
// the request, which is checked (internal/mount tests the checks).
func TestParseMount(t *testing.T) {
	r, persist, err := parse("source", "/etc", "target", "/mnt/etc", "bind", true, "readonly", true, "persist", true)
	if err != nil {
		t.Fatal(err)
	}
	if !persist || r.Source != "/etc" || r.Target != "/mnt/etc" || !r.Bind || !r.Readonly || r.Describe() != `--bind -o ro "/etc" "/mnt/etc"` {
		t.Errorf("%+v %v %s", r, persist, r.Describe())
	}
}

func TestParseMountRefusals(t *testing.T) {
	for _, c := range []struct {
		kv   []any
		want string
	}{
		{nil, "missing target"},
		{[]any{"target", "/x", "propagation", "sideways"}, `unknown propagation "sideways"`},
		{[]any{"source", 1, "target", "/x"}, "source must be a string"},
		{[]any{"source", "a\x00b", "target", "/x", "fstype", "tmpfs"}, "NUL"},
		{[]any{"target", "/x", "fstype", "tmp\x00fs"}, "NUL"},
	} {
		_, _, err := parse(c.kv...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse(%v) = %v, want error containing %q", c.kv, err, c.want)
		}
	}
}
