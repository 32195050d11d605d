package testreport

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The JUnit XML elements, in the shape Jenkins' junit-10.xsd and GitLab's
// parser accept (Ant's format, as go-junit-report and pytest write it).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Hostname  string      `xml:"hostname,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string      `xml:"classname,attr"`
	Name      string      `xml:"name,attr"`
	Time      string      `xml:"time,attr"`
	Failure   *junitCause `xml:"failure,omitempty"`
	Skipped   *junitCause `xml:"skipped,omitempty"`
	SystemOut *junitText  `xml:"system-out,omitempty"`
}

// junitCause is a <failure> or <skipped>; its text is CDATA, so that
// a failure's lines read as lines (encoding/xml writes a newline in
// character data as &#xA;).
type junitCause struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

// junitText is <system-out>, as CDATA. encoding/xml splits a "]]>" in
// it; clean has removed what XML 1.0 forbids, which CDATA cannot escape.
type junitText struct {
	Text string `xml:",cdata"`
}

// WriteJUnit writes results as a JUnit XML file: <testsuites> holding one
// <testsuite> named suite ("nsh test" if empty) with the counts (tests,
// failures, errors, skipped), its time in seconds, its start as timestamp
// (UTC, "2006-01-02T15:04:05", the XSD's form) and the hostname. Each test
// is a <testcase classname="FILE" name="test_x" time="0.120">:
//   - fail: <failure message="FIRST LINE" type="failure">message</failure>
//   - skip: <skipped message="reason"/>
//   - xfail: <skipped type="xfail" message="xfail: reason"/>, as pytest
//     writes it: CI shows it apart from the passes, and it fails nothing
//   - xpass: <failure type="xpass">, since it fails the run
//
// A test's output is its <system-out>. errors is always 0: a test that
// cannot run is reported by the runner as a failure. Text that is not
// UTF-8 or holds characters XML 1.0 forbids is cleaned (see clean).
func WriteJUnit(w io.Writer, suite string, results []Result, start time.Time, total time.Duration) error {
	if suite == "" {
		suite = "nsh test"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	c := tally(results)
	s := junitSuite{
		Name:      clean(suite),
		Tests:     len(results),
		Failures:  c.fail + c.xpass,
		Skipped:   c.skip + c.xfail,
		Time:      xmlSeconds(total),
		Timestamp: start.UTC().Format("2006-01-02T15:04:05"),
		Hostname:  clean(host),
		Cases:     make([]junitCase, 0, len(results)),
	}
	for _, r := range results {
		tc := junitCase{
			Classname: clean(r.File),
			Name:      clean(r.Name),
			Time:      xmlSeconds(r.Duration),
		}
		if r.Output != "" {
			tc.SystemOut = &junitText{clean(r.Output)}
		}
		switch r.Status {
		case Pass:
		case Skip:
			tc.Skipped = &junitCause{Message: clean(r.Message)}
		case XFail:
			tc.Skipped = &junitCause{Type: "xfail", Message: clean(strings.TrimSpace("xfail: " + r.Message))}
		case XPass:
			tc.Failure = &junitCause{Type: "xpass", Message: firstLine(r.detail()), Text: clean(r.detail())}
		default:
			tc.Failure = &junitCause{Type: "failure", Message: firstLine(r.Message), Text: clean(r.Message)}
		}
		s.Cases = append(s.Cases, tc)
	}
	doc := junitSuites{Name: s.Name, Tests: s.Tests, Failures: s.Failures, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// xmlSeconds renders d as seconds with millisecond precision, as JUnit's
// time attribute wants it: "0.120".
func xmlSeconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// firstLine is the message attribute of a failure: the first line of
// text, cleaned and cut to 200 bytes (the whole text is the element's).
func firstLine(text string) string {
	text = clean(strings.TrimSpace(text))
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if len(text) > 200 {
		cut := 200
		for cut > 0 && text[cut]&0xc0 == 0x80 {
			cut--
		}
		text = text[:cut] + "..."
	}
	return text
}
