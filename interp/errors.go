package interp

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"nsh.dev/nsh/internal/assert"
	"nsh.dev/nsh/internal/spell"
)

// FormatError renders an error the way a compiler would: the position of
// the innermost script line first ("file.star:12:5: veth: ..."), then, when
// the error passed through nested calls, the Starlark backtrace.
func FormatError(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		frames := scriptFrames(ee.CallStack)
		msg := percentHint(ee.Msg)
		if len(frames) == 0 {
			return msg
		}
		pos := frames[len(frames)-1].Pos
		// A failed assert names its call site; printed right after it,
		// say it once ("t.star:6:14: assert.eq failed: got 2, want 3").
		var af *assert.Failure
		if errors.As(ee.Unwrap(), &af) && af.Pos.Filename() == pos.Filename() && af.Pos.Line == pos.Line {
			msg = strings.Replace(msg, af.Error(), af.Short(), 1)
		}
		out := fmt.Sprintf("%s: %s", pos, msg)
		if len(frames) > 1 {
			lines := make([]string, len(frames))
			for i, f := range frames {
				lines[i] = fmt.Sprintf("  %s: in %s", f.Pos, f.Name)
			}
			out += "\nTraceback (most recent call last):\n" + strings.Join(foldRepeats(lines), "\n")
		}
		return out
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s: syntax error: %s", se.Pos, se.Msg)
	}
	var rl resolve.ErrorList
	if errors.As(err, &rl) {
		var lines []string
		for _, e := range rl {
			lines = append(lines, fmt.Sprintf("%s: %s", e.Pos, e.Msg))
		}
		return strings.Join(lines, "\n")
	}
	return err.Error()
}

// suggestUndefined adds "(did you mean NAME?)" to the resolver's
// "undefined: X" errors in err, the nearest of names. go.starlark.net
// suggests only the module's own globals; names are what it does not
// see: the predeclared names (builtins such as ping) and, in the REPL,
// the session's globals. The errors are changed in place.
func suggestUndefined(err error, names func() []string) {
	var rl resolve.ErrorList
	if !errors.As(err, &rl) {
		return
	}
	var cands []string
	for i, e := range rl {
		name, ok := strings.CutPrefix(e.Msg, "undefined: ")
		if !ok || strings.Contains(name, " ") {
			continue // not undefined, or already with a suggestion
		}
		if cands == nil {
			cands = names()
			sort.Strings(cands)
		}
		if n := spell.Nearest(name, cands); n != "" {
			rl[i].Msg += fmt.Sprintf(" (did you mean %s?)", n)
		}
	}
}

// percentHint adds to Starlark's "unknown conversion %." (or %5, %-, %+,
// %#, % ) that fmt() has what % lacks: width, precision, flags.
func percentHint(msg string) string {
	const prefix = "unknown conversion %"
	if i := strings.Index(msg, prefix); i >= 0 && i+len(prefix) < len(msg) {
		if c := msg[i+len(prefix)]; c == '.' || c == '-' || c == '+' || c == '#' || c == ' ' || c >= '0' && c <= '9' {
			return msg + ` (Starlark's % has no width, precision or flags: use fmt("{:.1f}", x); see help(fmt))`
		}
	}
	return msg
}

// scriptFrames drops the frames of builtins (their position is
// "<builtin>"), leaving the script lines.
func scriptFrames(stack starlark.CallStack) []starlark.CallFrame {
	var out []starlark.CallFrame
	for _, f := range stack {
		if f.Pos.Filename() == "<builtin>" {
			continue
		}
		out = append(out, f)
	}
	return out
}

// maxCycle is the longest run of lines foldRepeats looks for repeats of
// (a recursion through that many functions).
const maxCycle = 8

// foldRepeats shortens a backtrace of a deep recursion, as Python does: a
// line repeated more than 3 times in a row is kept 3 times and followed by
// "[Previous line repeated N more times]"; a block of up to maxCycle
// lines (a mutual recursion) repeated 3 times or more is kept once and
// followed by "[Previous K lines repeated N more times]". A recursion
// 100,000 deep (go.starlark.net's limit) prints a few lines, not 100,000.
func foldRepeats(lines []string) []string {
	var out []string
	for i := 0; i < len(lines); {
		bestK, bestReps := 0, 1
		for k := 1; k <= maxCycle && i+2*k <= len(lines); k++ {
			reps := 1
			for i+(reps+1)*k <= len(lines) && equalLines(lines[i:i+k], lines[i+reps*k:i+(reps+1)*k]) {
				reps++
			}
			if reps >= 3 && reps*k > bestReps*bestK {
				bestK, bestReps = k, reps
			}
		}
		switch {
		case bestK == 0:
			out = append(out, lines[i])
			i++
		case bestK == 1:
			out = append(out, lines[i], lines[i], lines[i])
			if bestReps > 3 {
				out = append(out, fmt.Sprintf("  [Previous line repeated %d more times]", bestReps-3))
			}
			i += bestReps
		default:
			out = append(out, lines[i:i+bestK]...)
			out = append(out, fmt.Sprintf("  [Previous %d lines repeated %d more times]", bestK, bestReps-1))
			i += bestK * bestReps
		}
	}
	return out
}

func equalLines(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
