package format

import (
	"fmt"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
)

// Template formats a template as Python's str.format: "{}" takes the next
// positional argument, "{0}" the first, "{name}" a keyword argument; a
// field may go on with .attr and [index] ("{r.mbit}", "{0[1]}"), a
// conversion (!s, !r) and a spec after ':' ("{:>8.1f}"), in which nested
// fields give values ("{:{width}}"). "{{" and "}}" are literal braces.
func Template(tmpl string, args starlark.Tuple, kwargs []starlark.Tuple) (string, error) {
	t := &templater{args: args, kwargs: map[string]starlark.Value{}}
	for _, kv := range kwargs {
		t.kwargs[string(kv[0].(starlark.String))] = kv[1]
	}
	return t.run(tmpl, 0)
}

type templater struct {
	args   starlark.Tuple
	kwargs map[string]starlark.Value
	next   int  // next automatic index
	manual bool // a field was numbered by hand
	auto   bool // a field was numbered automatically
}

func (t *templater) run(tmpl string, depth int) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		switch {
		case c == '{' && strings.HasPrefix(tmpl[i:], "{{"):
			b.WriteByte('{')
			i += 2
		case c == '}' && strings.HasPrefix(tmpl[i:], "}}"):
			b.WriteByte('}')
			i += 2
		case c == '}':
			return "", fmt.Errorf("single '}' at offset %d in %q (write }} for a brace)", i, tmpl)
		case c == '{':
			end, err := fieldEnd(tmpl, i)
			if err != nil {
				return "", err
			}
			s, err := t.field(tmpl[i+1:end], depth)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			i = end + 1
		default:
			j := strings.IndexAny(tmpl[i:], "{}")
			if j < 0 {
				j = len(tmpl) - i
			}
			b.WriteString(tmpl[i : i+j])
			i += j
		}
	}
	return b.String(), nil
}

// fieldEnd returns the index of the '}' closing the field opened at i,
// skipping fields nested in its spec.
func fieldEnd(tmpl string, i int) (int, error) {
	depth := 0
	for j := i; j < len(tmpl); j++ {
		switch tmpl[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return j, nil
			}
		}
	}
	return 0, fmt.Errorf("unclosed '{' at offset %d in %q (write {{ for a brace)", i, tmpl)
}

func (t *templater) field(f string, depth int) (string, error) {
	name, spec, hasSpec := strings.Cut(f, ":")
	name, conv, hasConv := strings.Cut(name, "!")
	if hasConv && conv != "s" && conv != "r" {
		return "", fmt.Errorf("unknown conversion !%s in {%s} (want !s or !r)", conv, f)
	}
	v, err := t.lookup(name, f)
	if err != nil {
		return "", err
	}
	if hasConv {
		if conv == "r" {
			v = starlark.String(v.String())
		} else if _, ok := v.(starlark.String); !ok {
			v = starlark.String(v.String())
		}
	}
	if hasSpec && strings.Contains(spec, "{") {
		if depth > 0 {
			return "", fmt.Errorf("fields nest too deeply in {%s}", f)
		}
		if spec, err = t.run(spec, depth+1); err != nil {
			return "", err
		}
	}
	s, err := Value(v, spec)
	if err != nil {
		return "", fmt.Errorf("{%s}: %v", f, err)
	}
	return s, nil
}

// lookup resolves a field name: "", a number or an identifier, then any
// .attr and [index] parts.
func (t *templater) lookup(name, field string) (starlark.Value, error) {
	i := strings.IndexAny(name, ".[")
	if i < 0 {
		i = len(name)
	}
	first, rest := name[:i], name[i:]
	var v starlark.Value
	// As in Python, a field is numbered only by digits: "-1" and "+1"
	// are keyword names, as any other.
	n, err := strconv.Atoi(first)
	numbered := err == nil && strings.Trim(first, "0123456789") == ""
	switch {
	case first == "":
		if t.manual {
			return nil, fmt.Errorf("cannot switch from manual field numbering to automatic in {%s}", field)
		}
		t.auto = true
		if t.next >= len(t.args) {
			return nil, fmt.Errorf("{%s} wants positional argument %d but there are %d", field, t.next, len(t.args))
		}
		v = t.args[t.next]
		t.next++
	case numbered:
		if t.auto {
			return nil, fmt.Errorf("cannot switch from automatic field numbering to manual in {%s}", field)
		}
		t.manual = true
		if n >= len(t.args) {
			return nil, fmt.Errorf("{%s} wants positional argument %d but there are %d", field, n, len(t.args))
		}
		v = t.args[n]
	default:
		var ok bool
		if v, ok = t.kwargs[first]; !ok {
			return nil, fmt.Errorf("{%s}: no keyword argument %s", field, first)
		}
	}
	for rest != "" {
		switch rest[0] {
		case '.':
			j := strings.IndexAny(rest[1:], ".[") + 1
			if j == 0 {
				j = len(rest)
			}
			attr := rest[1:j]
			rest = rest[j:]
			ha, ok := v.(starlark.HasAttrs)
			if !ok {
				return nil, fmt.Errorf("{%s}: %s has no attributes", field, v.Type())
			}
			x, err := ha.Attr(attr)
			if err != nil {
				return nil, fmt.Errorf("{%s}: %v", field, err)
			}
			if x == nil {
				return nil, fmt.Errorf("{%s}: %s has no .%s", field, v.Type(), attr)
			}
			v = x
		case '[':
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				return nil, fmt.Errorf("{%s}: missing ']'", field)
			}
			key := rest[1:j]
			rest = rest[j+1:]
			var k starlark.Value = starlark.String(key)
			if n, err := strconv.Atoi(key); err == nil {
				k = starlark.MakeInt(n)
			}
			x, err := index(v, k)
			if err != nil {
				return nil, fmt.Errorf("{%s}: %v", field, err)
			}
			v = x
		default:
			return nil, fmt.Errorf("{%s}: unexpected %q after the field name", field, rest)
		}
	}
	return v, nil
}

func index(v, k starlark.Value) (starlark.Value, error) {
	switch x := v.(type) {
	case starlark.Mapping:
		r, found, err := x.Get(k)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("key %s not in %s", k.String(), v.Type())
		}
		return r, nil
	case starlark.Indexable:
		i, ok := k.(starlark.Int)
		if !ok {
			return nil, fmt.Errorf("%s index must be an int, not %s", v.Type(), k.String())
		}
		n, _ := i.Int64()
		if n < 0 || n >= int64(x.Len()) {
			return nil, fmt.Errorf("index %d out of range [0:%d]", n, x.Len())
		}
		return x.Index(int(n)), nil
	}
	return nil, fmt.Errorf("%s is not indexable", v.Type())
}
