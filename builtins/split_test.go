package builtins

import (
	"reflect"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"echo hi", []string{"echo", "hi"}, false},
		{"  a   b\tc\n", []string{"a", "b", "c"}, false},
		{`a 'b c' "d e"`, []string{"a", "b c", "d e"}, false},
		{`a\ b c\\d`, []string{"a b", `c\d`}, false},
		{`"x\"y" '\n' "\$HOME" "a\b"`, []string{`x"y`, `\n`, `$HOME`, `a\b`}, false},
		{`''`, []string{""}, false},
		{`a""b`, []string{"ab"}, false},
		{"", nil, false},
		{`a\`, []string{`a\`}, false},
		{`\`, []string{`\`}, false},
		{"a \\\n b", []string{"a", "b"}, false},
		{"a\\\nb", []string{"ab"}, false},
		{`'open`, nil, true},
		{`"open`, nil, true},
	} {
		got, err := splitCommand(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}
