package interp

import (
	"slices"
	"testing"
)

// The REPL's Tab knows the assert module: its functions after "assert.",
// and their keyword arguments from the doc rows.
func TestCompleteAssert(t *testing.T) {
	c := testCompleter(t)
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`assert.f`, []string{"fails", "false"}},
		{`assert.eq(1, 2, m`, []string{"msg="}},
		{`assert.fails(lambda: 1, "x", m`, []string{"msg="}},
	} {
		got := complete(c, tc.line)
		if len(got) > len(tc.want) {
			got = got[:len(tc.want)] // names follow the keywords
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Tab after %s: %q, want %q", tc.line, got, tc.want)
		}
	}
}
