package testreport

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteTAP writes results as TAP version 13 (https://testanything.org),
// as kselftest's runner does: "TAP version 13", the plan "1..N", then one
// line per test, "ok 1 - file:test_x" or "not ok 2 - file:test_y". A
// skipped test is "ok 3 - ... # SKIP reason"; an expected failure is
// "not ok 4 - ... # TODO reason", TAP's convention for a failure that
// does not fail the run. An unexpected pass is a plain "not ok" (it fails
// the run), not TAP's "ok ... # TODO", which consumers count as a pass.
// After each failed test comes a YAML diagnostic block, indented by two
// spaces between "---" and "...", with its message, duration_ms and
// output. A "#" or "\" in a test's name is escaped with "\" (TAP 14's
// rule, which TAP 13 consumers read too); text that is not UTF-8 or holds
// control characters is cleaned (see clean).
func WriteTAP(w io.Writer, results []Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "TAP version 13\n1..%d\n", len(results))
	for i, r := range results {
		ok := "ok"
		if !r.Status.OK() || r.Status == XFail {
			ok = "not ok"
		}
		fmt.Fprintf(&b, "%s %d - %s", ok, i+1, tapDescription(r.id()))
		switch r.Status {
		case Skip:
			b.WriteString(tapDirective("SKIP", r.Message))
		case XFail:
			b.WriteString(tapDirective("TODO", r.Message))
		}
		b.WriteByte('\n')
		if r.Status.OK() {
			continue
		}
		b.WriteString("  ---\n")
		yamlField(&b, "message", r.detail())
		fmt.Fprintf(&b, "  duration_ms: %s\n", strconv.FormatFloat(float64(r.Duration.Microseconds())/1000, 'f', 3, 64))
		if r.Output != "" {
			yamlField(&b, "output", r.Output)
		}
		b.WriteString("  ...\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tapDescription makes text fit on a test line: one line, with "\" and
// "#" (which would start a directive) escaped.
func tapDescription(text string) string {
	text = strings.Join(strings.Fields(clean(text)), " ")
	text = strings.ReplaceAll(text, `\`, `\\`)
	return strings.ReplaceAll(text, "#", `\#`)
}

// tapDirective renders " # SKIP reason" (or TODO): the reason on one line.
func tapDirective(kind, reason string) string {
	reason = strings.Join(strings.Fields(clean(reason)), " ")
	if reason == "" {
		return " # " + kind
	}
	return " # " + kind + " " + reason
}

// yamlField writes "  key: value" in a TAP YAML block. Text of several
// lines is a literal block scalar ("|-", its lines indented by four
// spaces) when YAML and TAP read it back unchanged; otherwise, and for
// one line, it is a double-quoted scalar with escapes.
func yamlField(b *strings.Builder, key, text string) {
	text = strings.TrimRight(clean(text), "\n")
	if literalSafe(text) {
		fmt.Fprintf(b, "  %s: |-\n", key)
		for _, line := range strings.Split(text, "\n") {
			if line != "" {
				b.WriteString("    ")
			}
			b.WriteString(line)
			b.WriteByte('\n')
		}
		return
	}
	// clean left only printable text, tabs and newlines: strconv's
	// escapes (\n, \t, \", \\, \uXXXX) are YAML's too.
	fmt.Fprintf(b, "  %s: %s\n", key, strconv.Quote(text))
}

// literalSafe reports whether text of several lines reads back the same
// from a literal block scalar: its first line must set the indentation
// (not be empty, nor start with a blank), and no line may look like the
// end of a TAP YAML block or a YAML document marker.
func literalSafe(text string) bool {
	if !strings.Contains(text, "\n") || text == "" || text[0] == ' ' || text[0] == '\t' || text[0] == '\n' {
		return false
	}
	for _, line := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(line); t == "..." || t == "---" {
			return false
		}
	}
	return true
}
