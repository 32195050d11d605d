package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"nsh.dev/nsh/internal/rootless"
	"nsh.dev/nsh/internal/testrun"
)

const testUsage = `usage: nsh test [flags] [PATH...]

Runs the tests of *_test.star files: every function defined at the top
level of such a file whose name starts with test_, in file order, each in
a process of its own with a private /run/netns (README, "Testing network
software"). A directory PATH is searched recursively; the default is ".".

flags:
  -run REGEX       run only the tests whose NAME or FILE:NAME REGEX matches
  -v               print each test's output and its PASS/FAIL line as it ends
  -j N             run N tests at once (default 1)
  -timeout D       fail a test that runs longer than D (default 60s): it
                   gets SIGTERM, then SIGKILL 5s later
  --fail-fast      start no more tests after the first failure
  --shell-on-fail  open the REPL in a failed test, everything it made still
                   alive; leaving it (Ctrl-D) tears down (needs a terminal;
                   forces -j 1)
  --tap            write TAP 13 to stdout instead of the summary
  --junit FILE     write a JUnit XML report to FILE as well
  --rootless, --no-rootless   as for scripts

exit status: 0 when every test passed, was skipped or failed as expected
(xfail); 1 otherwise; 2 on bad usage or when PATH holds no test file.
`

// testCmd is nsh test: it parses the flags and hands the run to
// internal/testrun.
func testCmd(args []string) int {
	opts := testrun.Options{Jobs: 1, Timeout: testrun.DefaultTimeout}
	mode := rootless.ModeFromEnv()
	bad := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "nsh test: "+format+"\n", a...)
		fmt.Fprint(os.Stderr, testUsage)
		return 2
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		needVal := func() (string, bool) {
			if hasVal {
				return val, true
			}
			if i+1 < len(args) {
				i++
				return args[i], true
			}
			return "", false
		}
		if a == "--" {
			opts.Paths = append(opts.Paths, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") {
			opts.Paths = append(opts.Paths, a)
			continue
		}
		// -flag and --flag are the same.
		switch strings.TrimLeft(name, "-") {
		case "h", "help":
			fmt.Print(testUsage)
			return 0
		case "run":
			v, ok := needVal()
			if !ok {
				return bad("-run needs a regular expression")
			}
			re, err := regexp.Compile(v)
			if err != nil {
				return bad("-run %q: %v", v, err)
			}
			opts.Run = re
		case "v":
			opts.Verbose = true
		case "j":
			v, ok := needVal()
			n, err := strconv.Atoi(v)
			if !ok || err != nil || n < 1 {
				return bad("-j needs a number of tests at least 1, not %q", v)
			}
			opts.Jobs = n
		case "timeout":
			v, ok := needVal()
			d, err := time.ParseDuration(v)
			if !ok || err != nil || d <= 0 {
				return bad("-timeout needs a positive duration such as 30s or 2m, not %q", v)
			}
			opts.Timeout = d
		case "fail-fast", "failfast":
			opts.FailFast = true
		case "shell-on-fail":
			opts.ShellOnFail = true
		case "tap":
			opts.TAP = true
		case "junit":
			v, ok := needVal()
			if !ok || v == "" {
				return bad("--junit needs a file name")
			}
			opts.JUnit = v
		case "rootless":
			mode = rootless.On
		case "no-rootless":
			mode = rootless.Off
		default:
			return bad("unknown flag %q", a)
		}
	}
	if opts.ShellOnFail && !term.IsTerminal(int(os.Stdin.Fd())) {
		return bad("--shell-on-fail needs a terminal on stdin, for the REPL")
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nsh test: finding nsh's own binary: %v\n", err)
		return 1
	}
	opts.Exe = exe
	if outer, code := rootless.Enter(mode); outer {
		return code
	}
	return testrun.Main(opts)
}
