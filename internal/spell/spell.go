// Package spell suggests the name a user probably meant: the candidate
// nearest to a misspelt name by edit distance, ignoring case and
// underscores. It is go.starlark.net's internal/spell (which gives
// "has no .foo field or method (did you mean .food?)" for attributes), in
// our words, for what the interpreter does not check: undefined
// predeclared names and sysctl keys.
package spell

import (
	"strings"
	"unicode"
)

// Nearest returns the candidate nearest to x, or "" when none differs from
// it in fewer than half of its characters.
func Nearest(x string, candidates []string) string {
	fx := fold(x)
	best, bestD := "", (len(fx)+1)/2
	for _, c := range candidates {
		if c == x {
			continue
		}
		if d := distance(fx, fold(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func fold(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// distance is the edit distance between a and b in bytes, a swap of two
// neighbours counting as one edit (optimal string alignment), so that
// "pnig" is one edit from "ping".
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1) // row i-2
	prev := make([]int, len(b)+1)  // row i-1
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j-1]+cost, prev[j]+1, cur[j-1]+1)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
