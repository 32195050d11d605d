// Package testreport writes the results of nsh test. This file is a crude
// stand-in written by the runner's helper (h1a) so the runner builds; the
// lead deletes it when merging the real implementation, whose API it keeps.
package testreport

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is a test's outcome.
type Status string

// The outcomes: xfail is an expected failure (ok), xpass an unexpected pass.
const (
	Pass  Status = "pass"
	Fail  Status = "fail"
	Skip  Status = "skip"
	XFail Status = "xfail"
	XPass Status = "xpass"
)

// Result is one test's result.
type Result struct {
	File     string        // the test file as given/found
	Name     string        // test function name
	Status   Status        // its outcome
	Duration time.Duration // how long it ran
	Message  string        // failure text (with file:line), skip or xfail reason
	Output   string        // the test's captured stdout+stderr
}

// OK reports whether s is pass, skip or xfail.
func (s Status) OK() bool { return s == Pass || s == Skip || s == XFail }

// WriteSummary writes a go test–like summary (stand-in).
func WriteSummary(w io.Writer, results []Result, total time.Duration, verbose bool) error {
	n := map[Status]int{}
	ok := true
	for _, r := range results {
		n[r.Status]++
		if !r.Status.OK() {
			ok = false
		}
		if verbose || !r.Status.OK() {
			fmt.Fprintf(w, "--- %s: %s:%s (%.2fs)\n", strings.ToUpper(string(r.Status)), r.File, r.Name, r.Duration.Seconds())
			if r.Message != "" {
				fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(r.Message, "\n", "\n    "))
			}
			if !r.Status.OK() && r.Output != "" {
				fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(strings.TrimRight(r.Output, "\n"), "\n", "\n    "))
			}
		}
	}
	word := "ok"
	if !ok {
		word = "FAIL"
	}
	_, err := fmt.Fprintf(w, "%s\t%d tests, %d passed, %d failed, %d skipped, %d xfail, %d xpass\t%.3fs\n",
		word, len(results), n[Pass], n[Fail], n[Skip], n[XFail], n[XPass], total.Seconds())
	return err
}

// WriteTAP writes TAP 13 (stand-in).
func WriteTAP(w io.Writer, results []Result) error {
	fmt.Fprintf(w, "TAP version 13\n1..%d\n", len(results))
	for i, r := range results {
		not := ""
		if !r.Status.OK() {
			not = "not "
		}
		dir := ""
		switch r.Status {
		case Skip:
			dir = " # SKIP " + r.Message
		case XFail:
			dir = " # TODO " + r.Message
		}
		if _, err := fmt.Fprintf(w, "%sok %d - %s:%s%s\n", not, i+1, r.File, r.Name, dir); err != nil {
			return err
		}
	}
	return nil
}

// WriteJUnit writes JUnit XML (stand-in).
func WriteJUnit(w io.Writer, suite string, results []Result, start time.Time, total time.Duration) error {
	type failure struct {
		Message string `xml:"message,attr"`
	}
	type tc struct {
		Name    string   `xml:"name,attr"`
		Class   string   `xml:"classname,attr"`
		Time    string   `xml:"time,attr"`
		Failure *failure `xml:"failure,omitempty"`
		Skipped *failure `xml:"skipped,omitempty"`
	}
	type ts struct {
		XMLName xml.Name `xml:"testsuite"`
		Name    string   `xml:"name,attr"`
		Tests   int      `xml:"tests,attr"`
		Time    string   `xml:"time,attr"`
		Cases   []tc     `xml:"testcase"`
	}
	s := ts{Name: suite, Tests: len(results), Time: fmt.Sprintf("%.3f", total.Seconds())}
	for _, r := range results {
		c := tc{Name: r.Name, Class: r.File, Time: fmt.Sprintf("%.3f", r.Duration.Seconds())}
		switch {
		case r.Status == Skip:
			c.Skipped = &failure{r.Message}
		case !r.Status.OK():
			c.Failure = &failure{r.Message}
		}
		s.Cases = append(s.Cases, c)
	}
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", " ")
	return enc.Encode(s)
}
