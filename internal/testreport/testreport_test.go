package testreport

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// mix is a run with every status, multi-line messages and output, and
// names and text that TAP and XML must escape.
func mix() []Result {
	return []Result{
		{File: "net_test.star", Name: "test_ping", Status: Pass, Duration: 120 * time.Millisecond, Output: "PING ok\n"},
		{File: "net_test.star", Name: "test_route", Status: Fail, Duration: 1500 * time.Millisecond,
			Message: "assert.eq failed at net_test.star:12: routes: got 3, want 4",
			Output:  "adding route\nlink <veth0> & \"peer\"\n"},
		{File: "net_test.star", Name: "test_ipv6", Status: Skip, Duration: 3 * time.Millisecond, Message: "IPv6 is disabled"},
		{File: "bridge_test.star", Name: "test_flood", Status: XFail, Duration: 40 * time.Millisecond, Message: "bug #42: floods twice"},
		{File: "bridge_test.star", Name: "test_learn", Status: XPass, Duration: 50 * time.Millisecond, Message: "issue 7"},
		{File: "dns_test.star", Name: "test_timeout", Status: Fail, Duration: 60 * time.Second,
			Message: "test timed out after 60s\n  waiting for port 53\n...\n---",
			Output:  "  starting dnsmasq\n  listening on port 53\n"},
	}
}

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it):\n--- got\n%s--- want\n%s", name, t.Name(), got, want)
	}
}

func TestStatusOK(t *testing.T) {
	for s, ok := range map[Status]bool{Pass: true, Skip: true, XFail: true, Fail: false, XPass: false} {
		if s.OK() != ok {
			t.Errorf("%s.OK() = %v", s, s.OK())
		}
	}
}

func TestSummary(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSummary(&b, mix(), 61720*time.Millisecond, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.txt", b.String())
	b.Reset()
	if err := WriteSummary(&b, mix(), 61720*time.Millisecond, true); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary_verbose.txt", b.String())
}

func TestSummaryLastLine(t *testing.T) {
	for _, c := range []struct {
		results []Result
		want    string
	}{
		{nil, "ok  0 tests (1.00s)\n"},
		{[]Result{{Name: "test_a", Status: Pass}}, "ok  1 test (1.00s)\n"},
		{[]Result{{Name: "test_a", Status: Pass}, {Name: "test_b", Status: Skip}, {Name: "test_c", Status: XFail}}, "ok  3 tests, 1 skipped, 1 xfail (1.00s)\n"},
		{[]Result{{Name: "test_a", Status: Pass}, {Name: "test_b", Status: XPass}}, "--- XPASS: test_b (0.00s)\n    passed, but was expected to fail\nFAIL  1 of 2 failed, 1 xpass (1.00s)\n"},
	} {
		var b bytes.Buffer
		if err := WriteSummary(&b, c.results, time.Second, false); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("got %q, want %q", b.String(), c.want)
		}
	}
}

var tapLine = regexp.MustCompile(`^(ok|not ok) (\d+) - (\S.*?)( # (SKIP|TODO)( .*)?)?$`)

func TestTAP(t *testing.T) {
	var b bytes.Buffer
	results := mix()
	if err := WriteTAP(&b, results); err != nil {
		t.Fatal(err)
	}
	golden(t, "results.tap", b.String())
	checkTAP(t, b.String(), results)
}

// checkTAP reads TAP text line by line as a consumer does: the version,
// the plan, one test line per result in order with the right ok, number,
// description and directive, and YAML blocks only after failures, each
// indented and closed.
func checkTAP(t *testing.T, text string, results []Result) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 2 || lines[0] != "TAP version 13" || lines[1] != "1.."+strconv.Itoa(len(results)) {
		t.Fatalf("header %q", lines[:min(2, len(lines))])
	}
	n := 0
	var blocks []string
	var blockOf []Result
	for i := 2; i < len(lines); i++ {
		line := lines[i]
		if !utf8.ValidString(line) {
			t.Errorf("line %d is not UTF-8: %q", i+1, line)
		}
		for _, c := range line {
			if c < 0x20 && c != '\t' {
				t.Errorf("line %d holds a control character: %q", i+1, line)
			}
		}
		m := tapLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d is not a test line: %q", i+1, line)
			continue
		}
		r := results[n]
		n++
		if num, _ := strconv.Atoi(m[2]); num != n {
			t.Errorf("line %d: test number %d, want %d", i+1, num, n)
		}
		wantOK := r.Status == Pass || r.Status == Skip
		if (m[1] == "ok") != wantOK {
			t.Errorf("line %d: %q for a %s test", i+1, m[1], r.Status)
		}
		if strings.Contains(strings.ReplaceAll(m[3], `\#`, ""), "#") {
			t.Errorf("line %d: unescaped # in the description %q", i+1, m[3])
		}
		wantDir := map[Status]string{Skip: "SKIP", XFail: "TODO"}[r.Status]
		if m[5] != wantDir {
			t.Errorf("line %d: directive %q for a %s test", i+1, m[5], r.Status)
		}
		if i+1 < len(lines) && lines[i+1] == "  ---" {
			if r.Status.OK() {
				t.Errorf("line %d: a YAML block after a %s test", i+2, r.Status)
			}
			j := i + 2
			for ; j < len(lines) && lines[j] != "  ..."; j++ {
				if lines[j] != "" && !strings.HasPrefix(lines[j], "  ") {
					t.Errorf("line %d: YAML line not indented: %q", j+1, lines[j])
				}
			}
			if j == len(lines) {
				t.Fatalf("YAML block from line %d is not closed", i+2)
			}
			block := strings.Join(lines[i+2:j], "\n")
			if !strings.Contains(block, "  message: ") || !strings.Contains(block, "  duration_ms: ") {
				t.Errorf("YAML block lacks message or duration_ms:\n%s", block)
			}
			blocks = append(blocks, block)
			blockOf = append(blockOf, r)
			i = j
		} else if !r.Status.OK() {
			t.Errorf("line %d: no YAML block after a %s test", i+1, r.Status)
		}
	}
	if n != len(results) {
		t.Errorf("%d test lines, want %d", n, len(results))
	}
	checkYAML(t, blocks, blockOf)
}

// checkYAML parses the TAP YAML blocks with a YAML parser, when python3
// with PyYAML is installed, and checks that message and output read back
// as the text written (cleaned).
func checkYAML(t *testing.T, blocks []string, results []Result) {
	t.Helper()
	if exec.Command("python3", "-c", "import yaml").Run() != nil {
		t.Log("python3 with PyYAML is not installed: the YAML blocks are checked line by line only")
		return
	}
	in, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	const prog = `import json, sys, textwrap, yaml
print(json.dumps([yaml.safe_load(textwrap.dedent(b)) for b in json.load(sys.stdin)]))`
	cmd := exec.Command("python3", "-c", prog)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyYAML cannot read the blocks: %v\n%s", err, strings.Join(blocks, "\n---\n"))
	}
	var docs []map[string]any
	if err := json.Unmarshal(out, &docs); err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		r := results[i]
		if msg := strings.TrimRight(clean(r.detail()), "\n"); d["message"] != msg {
			t.Errorf("%s: YAML message %q, want %q", r.Name, d["message"], msg)
		}
		if o := strings.TrimRight(clean(r.Output), "\n"); o != "" && d["output"] != o {
			t.Errorf("%s: YAML output %q, want %q", r.Name, d["output"], o)
		}
		if ms, ok := d["duration_ms"].(float64); !ok || ms != float64(r.Duration.Microseconds())/1000 {
			t.Errorf("%s: duration_ms %v", r.Name, d["duration_ms"])
		}
	}
}

// The parsed form of a JUnit file: what CI systems read.
type parsedSuites struct {
	XMLName  xml.Name      `xml:"testsuites"`
	Tests    string        `xml:"tests,attr"`
	Failures string        `xml:"failures,attr"`
	Errors   string        `xml:"errors,attr"`
	Time     string        `xml:"time,attr"`
	Suites   []parsedSuite `xml:"testsuite"`
}

type parsedSuite struct {
	Name      string       `xml:"name,attr"`
	Tests     string       `xml:"tests,attr"`
	Failures  string       `xml:"failures,attr"`
	Errors    string       `xml:"errors,attr"`
	Skipped   string       `xml:"skipped,attr"`
	Time      string       `xml:"time,attr"`
	Timestamp string       `xml:"timestamp,attr"`
	Hostname  string       `xml:"hostname,attr"`
	Cases     []parsedCase `xml:"testcase"`
}

type parsedCase struct {
	Classname string         `xml:"classname,attr"`
	Name      string         `xml:"name,attr"`
	Time      string         `xml:"time,attr"`
	Failures  []parsedDetail `xml:"failure"`
	Errors    []parsedDetail `xml:"error"`
	Skipped   []parsedDetail `xml:"skipped"`
	SystemOut string         `xml:"system-out"`
}

type parsedDetail struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

var (
	decimal   = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,3})?$`)
	timestamp = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$`)
)

func junit(t *testing.T, results []Result) string {
	t.Helper()
	var b bytes.Buffer
	start := time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)
	if err := WriteJUnit(&b, "examples/tests", results, start, 61720*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestJUnit(t *testing.T) {
	results := mix()
	text := junit(t, results)
	host, _ := os.Hostname()
	golden(t, "results.xml", strings.Replace(text, `hostname="`+clean(host)+`"`, `hostname="HOST"`, 1))
	s := checkJUnit(t, text, results)
	// What each status becomes.
	c := s.Cases
	if len(c[1].Failures) != 1 || c[1].Failures[0].Type != "failure" || c[1].Failures[0].Message != results[1].Message || c[1].Failures[0].Text != results[1].Message || c[1].SystemOut != results[1].Output {
		t.Errorf("fail: %+v", c[1])
	}
	if len(c[2].Skipped) != 1 || c[2].Skipped[0].Message != "IPv6 is disabled" {
		t.Errorf("skip: %+v", c[2])
	}
	if len(c[3].Skipped) != 1 || c[3].Skipped[0].Type != "xfail" || c[3].Skipped[0].Message != "xfail: bug #42: floods twice" {
		t.Errorf("xfail: %+v", c[3])
	}
	if len(c[4].Failures) != 1 || c[4].Failures[0].Type != "xpass" || !strings.Contains(c[4].Failures[0].Message, "expected to fail: issue 7") {
		t.Errorf("xpass: %+v", c[4])
	}
	if c[5].Failures[0].Message != "test timed out after 60s" || c[5].Time != "60.000" {
		t.Errorf("timeout: %+v", c[5])
	}
}

// checkJUnit parses text back and checks it against the rules of the JUnit
// schemas CI systems use (Jenkins' junit-10.xsd, GitLab's parser): the
// attributes each element must have, decimals for times, the timestamp's
// form, and counts that agree with the test cases.
func checkJUnit(t *testing.T, text string, results []Result) parsedSuite {
	t.Helper()
	if !strings.HasPrefix(text, `<?xml version="1.0" encoding="UTF-8"?>`+"\n") {
		t.Errorf("no XML declaration: %.60q", text)
	}
	var doc parsedSuites
	if err := xml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, text)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d test suites, want 1", len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name == "" || s.Hostname == "" || !timestamp.MatchString(s.Timestamp) || !decimal.MatchString(s.Time) || !decimal.MatchString(doc.Time) {
		t.Errorf("suite attributes: name %q hostname %q timestamp %q time %q, testsuites time %q", s.Name, s.Hostname, s.Timestamp, s.Time, doc.Time)
	}
	var fails, errs, skips int
	for i, c := range s.Cases {
		if c.Name == "" || c.Classname == "" || !decimal.MatchString(c.Time) {
			t.Errorf("testcase %d: name %q classname %q time %q", i, c.Name, c.Classname, c.Time)
		}
		if len(c.Failures)+len(c.Errors)+len(c.Skipped) > 1 {
			t.Errorf("testcase %s: more than one of failure, error, skipped", c.Name)
		}
		fails += len(c.Failures)
		errs += len(c.Errors)
		skips += len(c.Skipped)
		if i < len(results) && (c.Name != clean(results[i].Name) || c.Classname != clean(results[i].File)) {
			t.Errorf("testcase %d is %s.%s, want %s.%s", i, c.Classname, c.Name, results[i].File, results[i].Name)
		}
	}
	want := map[string][2]string{
		"tests":               {s.Tests, strconv.Itoa(len(s.Cases))},
		"failures":            {s.Failures, strconv.Itoa(fails)},
		"errors":              {s.Errors, strconv.Itoa(errs)},
		"skipped":             {s.Skipped, strconv.Itoa(skips)},
		"testsuites tests":    {doc.Tests, s.Tests},
		"testsuites failures": {doc.Failures, s.Failures},
		"testsuites errors":   {doc.Errors, s.Errors},
		"testcases":           {strconv.Itoa(len(s.Cases)), strconv.Itoa(len(results))},
	}
	for what, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", what, v[0], v[1])
		}
	}
	xmllint(t, text)
	return s
}

// xmllint checks that text is well-formed XML with libxml2's own parser,
// when xmllint (Debian's libxml2-utils) is installed.
func xmllint(t *testing.T, text string) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		t.Log("xmllint is not installed (Debian package libxml2-utils): well-formedness checked by encoding/xml only")
		return
	}
	path := filepath.Join(t.TempDir(), "results.xml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--noout", path).CombinedOutput(); err != nil {
		t.Errorf("xmllint: %v\n%s", err, out)
	}
}

// TestXmllint fails the check on a file that is not well-formed, so that
// the check above is known to check something (skipped without xmllint).
func TestXmllint(t *testing.T) {
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint is not installed (Debian package libxml2-utils)")
	}
	path := filepath.Join(t.TempDir(), "bad.xml")
	if err := os.WriteFile(path, []byte("<a>\x1b</a>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(bin, "--noout", path).Run(); err == nil {
		t.Error("xmllint accepts a control character: the well-formedness check would check nothing")
	}
}

// Test output can hold anything: bytes that are not UTF-8, NUL, ANSI
// escapes, CR, characters XML 1.0 forbids. The three writers still give
// valid UTF-8, a TAP stream a consumer reads line by line, and
// well-formed XML that says what the output held.
func TestHostileText(t *testing.T) {
	nasty := "a\x00b\x1b[31mred\x1b[0m\r\nbad \xff\xfe byte\x7f \u0085nel \ufffe \u2028 ]]> <x> & \"q\" 'a' #3 \\"
	results := []Result{
		{File: "we\x01ird#_test.star", Name: "test_\xff", Status: Fail, Message: nasty, Output: nasty},
		{File: "ok_test.star", Name: "test_ok", Status: Pass, Output: nasty},
		{File: "s_test.star", Name: "test_s", Status: Skip, Message: "why\x00 # not"},
		{File: "x_test.star", Name: "test_x", Status: XFail, Message: nasty},
	}
	var tap bytes.Buffer
	if err := WriteTAP(&tap, results); err != nil {
		t.Fatal(err)
	}
	checkTAP(t, tap.String(), results)
	text := junit(t, results)
	if !utf8.ValidString(text) {
		t.Errorf("JUnit output is not UTF-8")
	}
	for _, c := range text {
		if c < 0x20 && c != '\n' && c != '\t' || c == 0xfffe || c == 0xffff {
			t.Errorf("JUnit output holds %U", c)
		}
	}
	s := checkJUnit(t, text, results)
	want := `a\u0000b\u001b[31mred\u001b[0m` + "\n" + `bad \xff\xfe byte\u007f \u0085nel \ufffe \u2028 ]]> <x> & "q" 'a' #3 \`
	if got := s.Cases[0].Failures[0].Text; got != want {
		t.Errorf("failure text read back\n%q\nwant\n%q", got, want)
	}
	if s.Cases[1].SystemOut != want || s.Cases[0].Classname != `we\u0001ird#_test.star` || s.Cases[0].Name != `test_\xff` {
		t.Errorf("read back: %q %q %q", s.Cases[1].SystemOut, s.Cases[0].Classname, s.Cases[0].Name)
	}
	if !strings.Contains(tap.String(), `not ok 1 - we\\u0001ird\#_test.star:test_\\xff`) || !strings.Contains(tap.String(), `ok 3 - s_test.star:test_s # SKIP why\u0000 # not`) {
		t.Errorf("TAP:\n%s", tap.String())
	}
	var sum bytes.Buffer
	if err := WriteSummary(&sum, results, time.Second, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "--- FAIL: we\x01ird#_test.star:test_\xff (0.00s)\n    a\x00b") {
		t.Errorf("summary does not keep the output as captured:\n%q", sum.String())
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain text\twith tab\n": "plain text\twith tab\n",
		"crlf\r\nline":           "crlf\nline",
		"progress 10%\rprogress": "progress 10%\nprogress",
		"\xc3(":                  `\xc3(`,
		"é ü 日本":                 "é ü 日本",
		"\x1b[1m":                `\u001b[1m`,
		"\u009b":                 `\u009b`,
		"\U0001F600":             "\U0001F600",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
