// GOMAXPROCS is not updated while nsh runs: the runtime then starts no
// goroutine for that at every start.

//go:debug updatemaxprocs=0

// Command nsh is a shell for Linux namespaces whose language is Starlark.
//
//	nsh [flags] FILE.star [ARG...]   run a script
//	nsh [flags] -c CODE [ARG...]     run a one-liner
//	nsh [flags] - [ARG...]           run a script read from stdin
//	nsh [flags]                      REPL on a terminal, else script from stdin
//	nsh doc [NAME]                   print the reference
//	nsh test [flags] [PATH...]       run the tests of *_test.star files
//	nsh export [--persist] [NETNS...] print a recipe rebuilding named netns
//	nsh graph --netns [--mermaid] [NETNS...]  draw them (DOT or Mermaid)
package main

import (
	"errors"
	"fmt"
	"go.starlark.net/starlark"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/term"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/doc"
	_ "nsh.dev/nsh/internal/keeper" // rootless labs: C that runs before the Go runtime
	"nsh.dev/nsh/internal/rootless"
	_ "nsh.dev/nsh/internal/startup" // cheaper Go runtime start: C that runs before it
	"nsh.dev/nsh/internal/testrun"
	"nsh.dev/nsh/interp"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: nsh [flags] [FILE.star | -c CODE | -] [ARG...]
       nsh doc [NAME]
       nsh test [flags] [PATH...]                 (nsh test -h)
       nsh up|down|ls|status|exec|gc|attach ...   (labs; see below)
       nsh export [--persist] [NETNS...]
       nsh graph [--mermaid] LAB | --netns [NETNS...]

nsh runs Starlark scripts that create and enter Linux namespaces (mnt, uts,
ipc, pid, net, user, cgroup, time), veth links, mounts and processes, and
tears down everything a script created when it ends, fails or is
interrupted, unless it was persisted. Started by a user other than root, nsh
first re-enters itself in a new user namespace where that user is root
(rootless mode), so namespaces, veth pairs and tmpfs/proc mounts work
unprivileged; what touches the host's own objects fails with an error
that says so.

  nsh FILE.star ARG...   run FILE.star; argv is ["FILE.star", ARG...]
  nsh -c CODE ARG...     run CODE; argv is ["-c", ARG...]
  nsh - ARG...           run the script read from stdin; argv is ["-", ARG...]
  nsh                    start the REPL when stdin is a terminal, else run stdin
  nsh doc [NAME]         print the reference of NAME (a builtin, type, method
                         such as link.up, or topic), or the index; for a
                         word that names nothing, the builtins, types and
                         topics whose doc mentions it ("nsh doc persist")
  nsh test [PATH...]     run the test functions (test_*) of the *_test.star
                         files under PATH, each in a context of its own;
                         "nsh test -h" lists its flags
  nsh export [--persist] [NETNS...]
                         print a Starlark recipe that rebuilds the named
                         network namespaces (all of /run/netns if none):
                         links, veth pairs, bridges, addresses, routes and
                         sysctls that differ from a fresh namespace's;
                         for "nsh up", or with --persist for plain nsh
  nsh graph --netns [--mermaid] [NETNS...]
                         print them as a Graphviz DOT graph, or Mermaid

doc, test, export, graph and the lab commands are verbs only as the first
argument: run a script named like one as ./export.

flags:
  -c CODE        run CODE instead of a file
  -x             print each kernel change on stderr as it is made, as the
                 equivalent command with the script line that made it
                 ("+ two.star:12: ip -n red addr add 10.0.0.1/24 dev a"),
                 and each undo at teardown ("- ip -n red link del dev a")
  --trace FILE   write the run's kernel changes to FILE as a shell script of
                 the equivalent commands, and the commands that undo them to
                 FILE's teardown script (FILE without .sh, plus .teardown.sh)
  -i             after the script (or -c CODE) ends, stay in the REPL with
                 everything it built still alive; leaving the REPL tears it down
  --rootless     enter a new user namespace first (mapped to root inside),
                 even when started as root; the default for non-root users
  --no-rootless  never do that (also NSH_ROOTLESS=0; NSH_ROOTLESS=1 = --rootless)
  --max-memory SIZE
                 cancel the script with an error when nsh's Go heap passes
                 SIZE (e.g. 512MiB, 4GiB; 0 or none: no limit); default 2GiB
  --no-host-note never say that veth() or bridge() without ns= builds in the
                 host's network namespace (a script says it once, on stderr,
                 when the context is still the one nsh started in; the REPL
                 never does); also NSH_NO_HOST_NOTE=1
  --max-steps N  cancel each thread (the script, each loaded module, the
                 REPL session) after N Starlark steps; default: no limit,
                 as a script that loops forever (with sleeps) is legitimate
  -h, --help     print this help
  --version      print the version

exit status: 0 success; 1 script error or fail(); 2 bad usage; the code given
to exit(code); 128+N when ended by signal N (130 for Ctrl-C).
`

type options struct {
	rootless    rootless.Mode
	maxMemory   uint64
	maxSteps    uint64
	code        *string
	interactive bool
	noHostNote  bool
	trace       bool
	traceFile   string
	script      string
	args        []string
}

// init keeps the main goroutine, and so the interpreter, on the main
// thread: children started in nsh's own namespaces are cloned from there,
// with no spawner thread to start (see internal/spawn).
func init() { runtime.LockOSThread() }

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && args[0] == testrun.ChildVerb {
		// One test of nsh test, in the runner's (rootless) user namespace.
		return testrun.Child(args[1:], scriptConfig())
	}
	if len(args) > 0 && args[0] == "underlay-addr" {
		return underlayAddrCmd(args[1:]) // for nsh up --host, hidden
	}
	if code, done := multiCmd(args); done {
		return code
	}
	if code, done := rootlessLab(args); done {
		return code
	}
	if len(args) > 0 {
		switch args[0] {
		case "doc":
			return docCmd(args[1:])
		case "test":
			return testCmd(args[1:])
		case "export":
			return exportCmd(args[1:])
		case "graph":
			return graphCmd(args[1:])
		}
	}
	if len(args) > 0 {
		if verb := labVerbs[args[0]]; verb != nil {
			return verb(args[1:])
		}
	}
	opts, code, done := parseArgs(args)
	if done {
		return code
	}
	if outer, code := rootless.Enter(opts.rootless); outer {
		return code
	}
	cfg := scriptConfig()
	cfg.MaxMemory, cfg.MaxSteps = opts.maxMemory, opts.maxSteps
	if opts.trace {
		cfg.Trace = os.Stderr
	}
	closeTrace := func() error { return nil }
	if opts.traceFile != "" {
		setup := &lazyFile{path: opts.traceFile}
		teardown := &lazyFile{path: teardownPath(opts.traceFile)}
		closeTrace = func() error { return errors.Join(setup.Close(), teardown.Close()) }
		cfg.TraceSetup, cfg.TraceTeardown = setup, teardown
	}
	in := interp.New(cfg)

	var src any
	var name string
	argv := []string{}
	switch {
	case opts.code != nil:
		name, src = "-c", *opts.code
		argv = append(argv, "-c")
	case opts.script == "-" || (opts.script == "" && !term.IsTerminal(int(os.Stdin.Fd())) && !opts.interactive):
		b, err := interp.ReadScriptFrom(os.Stdin, "the script on stdin")
		if err != nil {
			fmt.Fprintf(os.Stderr, "nsh: reading stdin: %v\n", err)
			return 2
		}
		name, src = "<stdin>", b
		argv = append(argv, "-")
	case opts.script != "":
		b, err := interp.ReadScript(opts.script, true)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nsh: %v\n", err)
			return 2
		}
		name, src = opts.script, b
		argv = append(argv, opts.script)
	}
	argv = append(argv, opts.args...)

	root := "."
	if opts.script != "" && opts.script != "-" {
		root = filepath.Dir(opts.script)
	}
	r := in.NewRun(root, argv)
	var err error
	if src != nil {
		if !opts.noHostNote {
			builtins.SetHostNote(r.Registry, os.Stderr)
		}
		gl, e := r.ExecFile(name, src)
		err = e
		if err != nil && !interp.IsExit(err) && r.Signal() == 0 {
			fmt.Fprintln(os.Stderr, interp.FormatError(err))
		}
		if opts.interactive && r.Signal() == 0 && !interp.IsExit(err) {
			builtins.SetHostNote(r.Registry, nil)
			err = r.REPL(gl, os.Stdin)
		}
	} else {
		err = r.REPL(nil, os.Stdin)
	}
	cerr := r.Teardown()
	if terr := closeTrace(); terr != nil {
		cerr = errors.Join(cerr, fmt.Errorf("--trace: %w", terr))
	}
	if cerr != nil { // nsh exits next
		fmt.Fprintf(os.Stderr, "nsh: %v\n", cerr)
		if err == nil {
			err = cerr
		}
	}
	return r.ExitCode(err)
}

// scriptConfig is the interpreter's configuration for scripts (and the
// tests of nsh test), before the flags.
func scriptConfig() interp.Config {
	return interp.Config{Builtins: builtins.Table(), Prompt: builtins.Prompt,
		MaxMemory: interp.DefaultMaxMemory, Abort: abort,
		Extra: starlark.StringDict{"lab": builtins.LabValue("", "")}}
}

// hostNoteOff reports whether NSH_NO_HOST_NOTE asks for no host note
// (set, and not "0" or empty).
func hostNoteOff() bool {
	v := os.Getenv("NSH_NO_HOST_NOTE")
	return v != "" && v != "0"
}

// teardownPath is the teardown script written next to the setup script
// FILE of --trace: lab.sh -> lab.teardown.sh.
func teardownPath(file string) string {
	return strings.TrimSuffix(file, ".sh") + ".teardown.sh"
}

// lazyFile is a script of --trace, created (executable) by its first
// write, so a run that does not start leaves no empty script behind.
type lazyFile struct {
	path string
	f    *os.File
}

func (l *lazyFile) Write(b []byte) (int, error) {
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
		if err != nil {
			return 0, err
		}
		l.f = f
	}
	return l.f.Write(b)
}

// Close closes the file if it was created.
func (l *lazyFile) Close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// abort ends nsh at once, with status 1, when a builtin that cannot be
// interrupted runs past the memory limit: what the run made is undone as
// after SIGKILL (see README, How it works), since the interpreter's
// thread, busy in that builtin, cannot tear it down.
func abort(msg string) {
	fmt.Fprintf(os.Stderr, "nsh: %s: exiting without teardown; what the script made is undone as after SIGKILL\n", msg)
	os.Exit(1)
}

// parseArgs reads nsh's own flags; everything after the script name (or
// after -c CODE) belongs to the script.
func parseArgs(args []string) (opts options, code int, done bool) {
	opts.rootless = rootless.ModeFromEnv()
	opts.maxMemory = interp.DefaultMaxMemory
	opts.noHostNote = hostNoteOff()
	for i := 0; i < len(args); i++ {
		a := args[i]
		// --flag=VALUE or --flag VALUE, for the flags that take one.
		if name, val, ok := valueFlag(args, &i); ok {
			var err error
			switch name {
			case "--max-memory":
				opts.maxMemory, err = interp.ParseSize(val)
			case "--trace":
				if val == "" {
					err = fmt.Errorf("needs a file name")
				}
				opts.traceFile = val
			case "--max-steps":
				opts.maxSteps, err = strconv.ParseUint(val, 10, 64)
				if err != nil {
					err = fmt.Errorf("invalid step count %q (want a number; 0: no limit)", val)
				}
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "nsh: %s: %v\n", name, err)
				return opts, 2, true
			}
			continue
		}
		switch {
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Print(usage + "\n" + labUsage + hostsUsage)
			return opts, 0, true
		case a == "--version" || a == "-version":
			fmt.Println("nsh", version)
			return opts, 0, true
		case a == "-i":
			opts.interactive = true
		case a == "-x":
			opts.trace = true
		case a == "--no-host-note":
			opts.noHostNote = true
		case a == "--rootless":
			opts.rootless = rootless.On
		case a == "--no-rootless":
			opts.rootless = rootless.Off
		case a == "-c":
			if i+1 >= len(args) {
				fmt.Fprint(os.Stderr, "nsh: -c needs an argument\n"+usage)
				return opts, 2, true
			}
			c := args[i+1]
			opts.code = &c
			opts.args = args[i+2:]
			return opts, 0, false
		case a == "--":
			if i+1 < len(args) {
				opts.script = args[i+1]
				opts.args = args[i+2:]
			}
			return opts, 0, false
		case a == "-":
			opts.script = "-"
			opts.args = args[i+1:]
			return opts, 0, false
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "nsh: unknown flag %q\n%s", a, usage)
			return opts, 2, true
		default:
			opts.script = a
			opts.args = args[i+1:]
			return opts, 0, false
		}
	}
	return opts, 0, false
}

// valueFlag reads args[*i] if it is a flag that takes a value, as
// "--flag=VALUE" or "--flag VALUE" (then *i moves past VALUE).
func valueFlag(args []string, i *int) (name, val string, ok bool) {
	a := args[*i]
	for _, f := range []string{"--max-memory", "--max-steps", "--trace"} {
		switch {
		case strings.HasPrefix(a, f+"="):
			return f, a[len(f)+1:], true
		case a == f:
			if *i+1 >= len(args) {
				return f, "", true // refused as invalid
			}
			*i++
			return f, args[*i], true
		}
	}
	return "", "", false
}

func docCmd(args []string) int {
	// skip and xfail, predeclared in test files only, are documented too.
	in := interp.New(interp.Config{Builtins: doc.Join(builtins.Table(), testrun.Table())})
	if len(args) == 0 {
		fmt.Print(in.Index())
		return 0
	}
	status := 0
	for _, name := range args {
		text, err := in.Doc(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nsh doc: %v\n", err)
			status = 2
			continue
		}
		fmt.Print(text)
	}
	return status
}
