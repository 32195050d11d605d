package main_test

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/leakcheck"
)

// suiteTests counts the tests of the *_test.star files under dir: their
// top-level "def test_" lines.
func suiteTests(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.star"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no *_test.star in %s: %v", dir, err)
	}
	n := 0
	def := regexp.MustCompile(`(?m)^def test_`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += len(def.FindAll(b, -1))
	}
	return n
}

// TestExampleSuite is issue 19's "done means": `nsh test examples/tests -j 4
// --junit out.xml` passes, leaves nothing, and writes JUnit that parses and
// counts every test; the same suite with --tap gives a TAP plan and an ok
// line per test. As root and (make test-rootless) as an unprivileged user.
func TestExampleSuite(t *testing.T) {
	if os.Geteuid() == 0 {
		leakcheck.Check(t)
	}
	want := suiteTests(t, "../../examples/tests")
	junit := filepath.Join(t.TempDir(), "out.xml")
	cmd := exec.Command(nshBin, "test", "-j", "4", "--junit", junit, "examples/tests")
	cmd.Dir = "../.."
	out, errOut, code := runCmd(t, cmd)
	if code != 0 || !summaryOK.MatchString(out) {
		t.Fatalf("nsh test examples/tests -j 4 --junit: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Errors   int `xml:"errors,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil || len(suites.Suites) != 1 {
		t.Fatalf("JUnit file does not parse as one testsuite: %v\n%s", err, b)
	}
	s := suites.Suites[0]
	if s.Tests != want || len(s.Cases) != want || s.Failures != 0 || s.Errors != 0 {
		t.Errorf("JUnit: tests=%d cases=%d failures=%d errors=%d, want %d tests and no failure\n%s", s.Tests, len(s.Cases), s.Failures, s.Errors, want, b)
	}
	for _, c := range s.Cases {
		if c.Skipped != nil {
			t.Logf("skipped: %s: %s", c.Name, c.Skipped.Message)
		}
	}
	if _, err := exec.LookPath("xmllint"); err == nil {
		if b, err := exec.Command("xmllint", "--noout", junit).CombinedOutput(); err != nil {
			t.Errorf("xmllint --noout: %v\n%s", err, b)
		}
	} else {
		t.Log("xmllint not installed (Debian: libxml2-utils): well-formedness checked by encoding/xml only")
	}

	cmd = exec.Command(nshBin, "test", "-j", "4", "--tap", "examples/tests")
	cmd.Dir = "../.."
	out, errOut, code = runCmd(t, cmd)
	plan := regexp.MustCompile(`(?m)^1\.\.(\d+)$`).FindStringSubmatch(out)
	oks := regexp.MustCompile(`(?m)^ok \d+ - `).FindAllString(out, -1)
	if code != 0 || plan == nil || plan[1] != strconv.Itoa(want) || len(oks) != want || strings.Contains(out, "not ok") {
		t.Errorf("--tap: exit %d, want plan 1..%d and %d ok lines\nstdout:\n%s\nstderr:\n%s", code, want, want, out, errOut)
	}
}

// A deliberately failing assert: exit 1, the assert's file:line and both
// values (issue 19's "done means").
func TestNshTestAssertFailure(t *testing.T) {
	out, errOut, code := nshTest(t, "-v", "assertfail")
	if code != 1 || !summaryFAIL.MatchString(out) ||
		!strings.Contains(out, "assertfail/assertfail_test.star:6") ||
		!strings.Contains(out, "got 2, want 3") || !strings.Contains(out, "one and one") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
