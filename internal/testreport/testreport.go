// Package testreport writes the results of `nsh test` in the three forms
// people read them in: a summary like go test's for a terminal, TAP
// version 13 as kselftest's runner prints it, and a JUnit XML file for CI
// systems (Jenkins, GitLab). It only formats: the runner decides what
// each test's status is.
package testreport

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is the outcome of one test.
type Status string

// The outcomes of a test. XFail is a test marked as expected to fail that
// failed, which is fine; XPass is one that passed instead, which is a
// failure (the mark is stale, or the bug it waited for is gone).
const (
	Pass  Status = "pass"
	Fail  Status = "fail"
	Skip  Status = "skip"
	XFail Status = "xfail"
	XPass Status = "xpass"
)

// OK reports whether s lets the run succeed: pass, skip and xfail do;
// fail and xpass do not.
func (s Status) OK() bool { return s == Pass || s == Skip || s == XFail }

// label is the status as the summary prints it: PASS, FAIL, SKIP, ...
func (s Status) label() string { return strings.ToUpper(string(s)) }

// Result is the outcome of one test function of one file.
type Result struct {
	File     string        // the test file as given/found
	Name     string        // test function name
	Status   Status        // what happened
	Duration time.Duration // how long the test ran, setup and teardown included
	Message  string        // failure text (with file:line), skip or xfail reason
	Output   string        // the test's captured stdout+stderr
}

// id names the test as file:name, or name alone without a file.
func (r Result) id() string {
	if r.File == "" {
		return r.Name
	}
	return r.File + ":" + r.Name
}

// detail is the text that explains r: its message, or for an unexpected
// pass what was expected.
func (r Result) detail() string {
	if r.Status == XPass {
		if r.Message == "" {
			return "passed, but was expected to fail"
		}
		return "passed, but was expected to fail: " + r.Message
	}
	return r.Message
}

// counts tallies results by status.
type counts struct{ pass, fail, skip, xfail, xpass int }

func tally(results []Result) counts {
	var c counts
	for _, r := range results {
		switch r.Status {
		case Pass:
			c.pass++
		case Skip:
			c.skip++
		case XFail:
			c.xfail++
		case XPass:
			c.xpass++
		default:
			c.fail++ // Fail, and a status the runner should not give
		}
	}
	return c
}

// WriteSummary writes results as go test does: a "--- FAIL: file:test_x
// (0.12s)" line for each failed test (fail or xpass) followed by its
// message and output indented by four spaces; with verbose, a line for
// every test ("--- PASS", "--- SKIP", "--- XFAIL", ...) with its message
// and output. The last line is "ok  12 tests (3.21s)" when every test is
// OK, else "FAIL  2 of 12 failed (3.21s)", where the failed count includes
// unexpected passes; skipped tests and expected failures are counted
// before the time: "ok  12 tests, 1 skipped, 2 xfail (3.21s)". Test
// output is written as it was captured.
func WriteSummary(w io.Writer, results []Result, total time.Duration, verbose bool) error {
	var b strings.Builder
	for _, r := range results {
		if !verbose && r.Status.OK() {
			continue
		}
		fmt.Fprintf(&b, "--- %s: %s (%s)\n", r.Status.label(), r.id(), seconds(r.Duration, 2))
		writeIndented(&b, r.detail())
		writeIndented(&b, r.Output)
	}
	c := tally(results)
	var extra []string
	if c.skip > 0 {
		extra = append(extra, fmt.Sprintf("%d skipped", c.skip))
	}
	if c.xfail > 0 {
		extra = append(extra, fmt.Sprintf("%d xfail", c.xfail))
	}
	if c.xpass > 0 {
		extra = append(extra, fmt.Sprintf("%d xpass", c.xpass))
	}
	tail := ""
	if len(extra) > 0 {
		tail = ", " + strings.Join(extra, ", ")
	}
	if failed := c.fail + c.xpass; failed > 0 {
		fmt.Fprintf(&b, "FAIL  %d of %d failed%s (%s)\n", failed, len(results), tail, seconds(total, 2))
	} else {
		fmt.Fprintf(&b, "ok  %s%s (%s)\n", plural(len(results), "test"), tail, seconds(total, 2))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeIndented writes text, without its trailing newlines, each line
// indented by four spaces (empty lines stay empty).
func writeIndented(b *strings.Builder, text string) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return
	}
	for _, line := range strings.Split(text, "\n") {
		if line != "" {
			b.WriteString("    ")
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
}

// seconds renders d as seconds with prec decimals and a trailing s.
func seconds(d time.Duration, prec int) string {
	return fmt.Sprintf("%.*fs", prec, d.Seconds())
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// clean makes s safe for TAP's YAML and for XML 1.0, keeping what it
// said readable: CRLF and lone CR become LF; a byte that is not UTF-8
// becomes the text \xNN; a control character other than tab and newline,
// DEL, a C1 control, U+2028/U+2029 (YAML 1.1 reads NEL and those as line
// breaks; YAML and XML 1.0 forbid or discourage the others) and
// U+FFFE/U+FFFF become \u00NN-style text (an ANSI colour code reads
// \u001b[31m).
func clean(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r':
			b.WriteByte('\n')
		case r == '\t' || r == '\n':
			b.WriteRune(r)
		case r < 0x20 || r >= 0x7f && r <= 0x9f || r == 0x2028 || r == 0x2029 || r == 0xfffe || r == 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
