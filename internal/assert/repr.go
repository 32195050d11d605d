package assert

import (
	"fmt"
	"unicode/utf8"

	"go.starlark.net/starlark"
)

// MaxRepr is the longest repr a failure shows whole, in bytes; a longer
// one is cut to about this length around what matters.
const MaxRepr = 200

// Repr returns v's Starlark repr, shortened when longer than MaxRepr to
// its head and tail around " ... ", followed by its length: "[1, 2, 3,
// ... 998, 999] (4890 bytes)".
func Repr(v starlark.Value) string {
	s := v.String()
	if len(s) <= MaxRepr {
		return s
	}
	head := runeCut(s, MaxRepr*2/3)
	tail := runeCut(s, len(s)-MaxRepr/4)
	return fmt.Sprintf("%s ... %s (%d bytes)", s[:head], s[tail:], len(s))
}

// Reprs returns the reprs of two values a failure compares. A repr longer
// than MaxRepr is cut to a window around the first byte where the two
// differ, "..." marking what was cut, and followed by its length and that
// offset.
func Reprs(a, b starlark.Value) (string, string) {
	sa, sb := a.String(), b.String()
	if len(sa) > MaxRepr || len(sb) > MaxRepr {
		i := 0
		for i < len(sa) && i < len(sb) && sa[i] == sb[i] {
			i++
		}
		sa, sb = window(sa, i), window(sb, i)
	}
	return sa, sb
}

// typedReprs is Reprs with, when a and b are of different types, each
// followed by its type: got 1 (int), want "1" (string).
func typedReprs(a, b starlark.Value) (string, string) {
	sa, sb := Reprs(a, b)
	if a.Type() != b.Type() {
		sa += " (" + a.Type() + ")"
		sb += " (" + b.Type() + ")"
	}
	return sa, sb
}

// window cuts s to about MaxRepr bytes showing offset i, where it first
// differs from what it is compared with, with some context before it.
func window(s string, i int) string {
	if len(s) <= MaxRepr {
		return s
	}
	start := 0
	if i > MaxRepr/3 {
		start = runeCut(s, i-MaxRepr/4)
	}
	end := runeCut(s, min(len(s), start+MaxRepr*3/4))
	out := s[start:end]
	if start > 0 {
		out = "..." + out
	}
	if end < len(s) {
		out += "..."
	}
	if i < len(s) && i > 0 {
		return fmt.Sprintf("%s (%d bytes, differing from byte %d)", out, len(s), i)
	}
	return fmt.Sprintf("%s (%d bytes)", out, len(s))
}

// runeCut moves offset i of s back to the start of the UTF-8 sequence it
// falls in, so that s[:i] and s[i:] are both valid where s is.
func runeCut(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	for j := i; j > 0 && j > i-utf8.UTFMax; j-- {
		if utf8.RuneStart(s[j]) {
			return j
		}
	}
	return i
}
