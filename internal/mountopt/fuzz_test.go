package mountopt

// Fuzz target for mount option strings (issue 18, item 3); see
// builtins/fuzz_test.go for the others. `go test` runs it on its seed
// corpus (testdata/fuzz), `make fuzz` for FUZZTIME.

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse covers mount(options=...) (Parse): no input panics, a refusal
// names the option, and the data string given to mount(2) reads back as
// the same options, so the kernel is handed the options nsh parsed (a
// comma the user quoted or escaped stays inside its option). None of
// issue 15's defects was in this parser (its item 13, a NUL, is refused
// by mount() before Parse).
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Parse(s)
		if err != nil {
			msg := err.Error()
			if msg == "" || !strings.Contains(msg, "option ") && !strings.Contains(msg, strconv.Quote(s)) {
				t.Fatalf("Parse(%q): error %q names no option", s, msg)
			}
			return
		}
		for _, d := range o.Data {
			if d == "" || strings.HasPrefix(d, "=") {
				t.Fatalf("Parse(%q): data option %q", s, d)
			}
			if _, ok := flags[d]; ok {
				t.Fatalf("Parse(%q): flag %q left in the data", s, d)
			}
		}
		back, err := Parse(o.DataString())
		if err != nil || !reflect.DeepEqual(back.Data, o.Data) || back.Flags != 0 {
			t.Fatalf("Parse(%q) data %q: mount(2) gets %q, which reads as %q (flags %#x), %v", s, o.Data, o.DataString(), back.Data, back.Flags, err)
		}
		if o.Flags&o.Clear != 0 {
			t.Fatalf("Parse(%q): flags %#x both set and cleared (%#x)", s, o.Flags, o.Clear)
		}
	})
}
