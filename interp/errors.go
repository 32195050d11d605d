package interp

import (
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// FormatError renders an error the way a compiler would: the position of
// the innermost script line first ("file.star:12:5: veth: ..."), then, when
// the error passed through nested calls, the Starlark backtrace.
func FormatError(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		frames := scriptFrames(ee.CallStack)
		msg := ee.Msg
		if len(frames) == 0 {
			return msg
		}
		out := fmt.Sprintf("%s: %s", frames[len(frames)-1].Pos, msg)
		if len(frames) > 1 {
			var b strings.Builder
			b.WriteString("\nTraceback (most recent call last):\n")
			for _, f := range frames {
				fmt.Fprintf(&b, "  %s: in %s\n", f.Pos, f.Name)
			}
			out += strings.TrimRight(b.String(), "\n")
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
