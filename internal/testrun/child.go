package testrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/keeper"
	"nsh.dev/nsh/internal/netnsdir"
	"nsh.dev/nsh/internal/testreport"
	"nsh.dev/nsh/interp"
)

// ChildVerb is the hidden first argument with which nsh test re-executes
// nsh to run one test: nsh ChildVerb FILE NAME [--shell].
const ChildVerb = "__nsh-test-child"

// reportFD is the descriptor the child writes its reports to, one JSON
// object per line (see report).
const reportFD = 3

// report is one line the child writes to the runner: an event, or the
// test's result (the last line).
type report struct {
	// Event "shell": the REPL of --shell-on-fail opened (the runner stops
	// the test's timer).
	Event   string            `json:"event,omitempty"`
	Status  testreport.Status `json:"status,omitempty"`
	Message string            `json:"message,omitempty"`
}

// Child runs one test in this process, which the runner started in a
// mount namespace of its own, and reports its result on descriptor 3. cfg
// is the interpreter's configuration for scripts; Child adds skip and
// xfail. args are FILE NAME, then --shell to open the REPL on a failure.
// It returns the process's exit status: 0 once a result is reported.
func Child(args []string, cfg interp.Config) int {
	out := os.NewFile(reportFD, "report")
	if len(args) < 2 || out == nil {
		fmt.Fprintf(os.Stderr, "nsh: %s is nsh test's; not for direct use\n", ChildVerb)
		return 2
	}
	unix.CloseOnExec(reportFD) // for nothing the test starts
	file, name := args[0], args[1]
	shell := len(args) > 2 && args[2] == "--shell"
	send := func(r report) {
		b, _ := json.Marshal(r)
		out.Write(append(b, '\n'))
	}
	status, msg := runTest(file, name, shell, cfg, func() { send(report{Event: "shell"}) })
	send(report{Status: status, Message: msg})
	return 0
}

// runTest runs the test and says how it went.
func runTest(file, name string, shell bool, cfg interp.Config, onShell func()) (testreport.Status, string) {
	// The test's named network namespaces are its own: a private, empty
	// /run/netns in this mount namespace (as a rootless lab's).
	if err := keeper.PrepareRun(); err != nil {
		return testreport.Fail, fmt.Sprintf("giving the test a /run/netns of its own: %v", err)
	}
	var m marks
	cfg.Builtins = doc.Join(cfg.Builtins, table(&m))
	in := interp.New(cfg)
	src, err := interp.ReadScript(file, false)
	if err != nil {
		return testreport.Fail, err.Error()
	}
	r := in.NewRun(LoadRoot(file), []string{file})
	// Signals (the runner's SIGTERM at a timeout) cancel the test and
	// tear down from the start, even of a test of plain Starlark.
	r.Registry.Guard()

	var failures []string
	fail := func(err error) { failures = append(failures, interp.FormatError(err)) }
	var skipped *SkipError
	ran := false // the test function was called and returned
	globals, err := r.ExecFile(file, src)
	setupDone := false
	if err == nil {
		var arg starlark.Value = starlark.None
		if fn, ok := globals["setup"].(starlark.Callable); ok {
			arg, err = r.Call(file, fn, nil)
			setupDone = err == nil
		} else {
			setupDone = true
		}
		if err == nil {
			err = callTest(r, file, name, globals, arg)
			ran = true
		}
	}
	if err != nil {
		if !errors.As(err, &skipped) {
			fail(err)
		}
	}
	if shell && len(failures) > 0 && r.Signal() == 0 {
		onShell()
		fmt.Fprintf(os.Stderr, "--- FAIL: %s:%s\n%s\nnsh test: the REPL, in the failed test's context with everything it made; Ctrl-D tears down\n", file, name, failures[0])
		if rerr := r.REPL(globals, os.Stdin); rerr != nil && !interp.IsExit(rerr) {
			fmt.Fprintf(os.Stderr, "nsh test: REPL: %v\n", rerr)
		}
	}
	if fn, ok := globals["teardown"].(starlark.Callable); ok && setupDone {
		if _, err := r.Call(file, fn, nil); err != nil {
			fail(fmt.Errorf("teardown(): %w", err))
		}
	}
	var leaks []string
	if err := r.Teardown(); err != nil {
		leaks = append(leaks, "nsh's teardown failed to undo: "+err.Error())
	}
	// What the test kept (netns(NAME) persists by default) would outlive it.
	if ents, err := os.ReadDir(netnsdir.Dir); err == nil {
		for _, e := range ents {
			leaks = append(leaks, fmt.Sprintf("named netns %q is left in the test's /run/netns (persisted: make it with persist=False, or netns_delete it)", e.Name()))
		}
	}
	if sig := r.Signal(); sig != 0 && len(failures) == 0 {
		failures = append(failures, "interrupted by "+sig.String())
	}

	var status testreport.Status
	var msg string
	switch {
	case skipped != nil && len(failures) == 0:
		status, msg = testreport.Skip, skipped.Reason
	case len(failures) > 0 && m.xfail:
		// The reason, and how it failed (its first line).
		first, _, _ := strings.Cut(failures[0], "\n")
		status, msg = testreport.XFail, m.reason+": "+first
	case len(failures) > 0:
		status, msg = testreport.Fail, strings.Join(failures, "\n")
	case m.xfail && ran:
		status, msg = testreport.XPass, m.reason // testreport says it passed
	default:
		status = testreport.Pass
	}
	if len(leaks) > 0 {
		status = testreport.Fail
		msg = strings.TrimPrefix(msg+"\nleaked: "+strings.Join(leaks, "\nleaked: "), "\n")
	}
	return status, msg
}

// callTest calls the test function name of globals, with setup()'s value
// if it takes one parameter.
func callTest(r *interp.Run, file, name string, globals starlark.StringDict, arg starlark.Value) error {
	fn, ok := globals[name].(*starlark.Function)
	if !ok {
		return fmt.Errorf("%s: no test function %s after running the file", file, name)
	}
	var args starlark.Tuple
	switch fn.NumParams() {
	case 0:
	case 1:
		args = starlark.Tuple{arg}
	default:
		return fmt.Errorf("%s: %s takes %d parameters: a test takes none, or one (setup()'s value)", fn.Position(), name, fn.NumParams())
	}
	_, err := r.Call(file, fn, args)
	return err
}
