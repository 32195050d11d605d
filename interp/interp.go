// Package interp embeds go.starlark.net for nsh: the language options, the
// predeclared names, load(), the script runner with its lifecycle registry,
// signal handling, error rendering, help() and the REPL. It knows the
// namespace builtins only as the doc.Table it is handed.
package interp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"nsh.dev/nsh/internal/assert"
	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/lifecycle"
)

// Options are the Starlark dialect nsh scripts are written in: beyond the
// core language they may use set(), while loops, if/for/while at top level,
// reassignment of globals, and recursion. See `nsh doc language`.
var Options = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       true,
}

// Config is what the command line hands the interpreter.
type Config struct {
	// Builtins are the namespace builtins, types and constants.
	Builtins doc.Table
	// Prompt, if set, describes the thread's current namespace context for
	// the REPL prompt; "" means the context nsh started in.
	Prompt func(thread *starlark.Thread) string
	// Extra predeclared names. They win over nsh's own: a Go test
	// harness may give its own assert module (startest.Assert).
	Extra starlark.StringDict
	// Stdout and Stderr default to os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// MaxMemory is the memory limit in bytes (0: none): when the Go heap
	// passes it, every thread of the run is cancelled with an error, and
	// a builtin refuses to allocate more than it at once. See limits.go.
	MaxMemory uint64
	// MaxSteps is the number of Starlark steps (go.starlark.net's
	// Thread.Steps) each thread of a run may execute, 0 for no limit: the
	// main script, each loaded module and the REPL session count apart.
	MaxSteps uint64
	// Abort, if set, is called with a message when the heap has passed
	// 1.25 times MaxMemory after the run's threads were cancelled, because
	// a builtin that does not see the cancellation goes on allocating.
	// nsh exits there; without it the run waits for the builtin.
	Abort func(msg string)
	// Trace, if set, receives each kernel change a run makes as it is
	// made, and each undo at teardown (nsh -x; see internal/change).
	Trace io.Writer
	// TraceSetup and TraceTeardown, if set, receive the run's kernel
	// changes as a shell script of the equivalent commands, and the
	// script that undoes them (written by Teardown): nsh --trace=FILE.
	TraceSetup, TraceTeardown io.Writer
}

// Interp is a configured interpreter; each script run is a Run.
type Interp struct {
	cfg         Config
	table       doc.Table
	predeclared starlark.StringDict
}

// New returns an interpreter with the builtins of cfg plus the language
// builtins (help, exit) and the assert, json, math, time and struct
// modules.
func New(cfg Config) *Interp {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	in := &Interp{cfg: cfg}
	in.table = doc.Join(cfg.Builtins, in.languageTable(), assert.Table())
	in.predeclared = in.table.Globals()
	in.predeclared["assert"] = assert.Module()
	in.predeclared["json"] = json.Module
	in.predeclared["math"] = math.Module
	in.predeclared["time"] = time.Module
	in.predeclared["struct"] = starlark.NewBuiltin("struct", starlarkstruct.Make)
	for k, v := range starlark.Universe {
		if _, ok := v.(*starlark.Builtin); ok {
			in.predeclared[k] = v
		}
	}
	for k, v := range boundedUniverse(func() uint64 { return in.cfg.MaxMemory }) {
		in.predeclared[k] = v
	}
	for k, v := range cfg.Extra {
		in.predeclared[k] = v
	}
	// A Go panic in a builtin becomes an error at the line that called it.
	for k, v := range in.predeclared {
		if b, ok := v.(*starlark.Builtin); ok && b.Receiver() == nil {
			in.predeclared[k] = safeBuiltin(b)
		}
	}
	return in
}

// Predeclared reports whether name is predeclared in every module of in
// (a builtin, a constant, a module such as json, or argv), which a
// global of that name would hide.
func (in *Interp) Predeclared(name string) bool {
	_, ok := in.predeclared[name]
	return ok || name == "argv"
}

// Run is one execution of nsh: a script, a -c one-liner or a REPL session.
// It owns the lifecycle registry that tears down what the run created.
type Run struct {
	in       *Interp
	Registry *lifecycle.Registry
	root     func() string // directory loads may not escape (unless absolute)
	realRoot func() string // root with its symlinks resolved
	argv     *starlark.List
	modules  map[string]*module
	mu       sync.Mutex
	threads  map[*starlark.Thread]bool
	signal   syscall.Signal // the signal that interrupted the run, if any
	sigOnce  sync.Once      // starts signal handling
	sigc     chan os.Signal
	watched  chan struct{} // closed when watchSignals returns; nil if never started
	done     chan struct{}
	onStop   func()      // closes the REPL's input on SIGTERM/SIGHUP
	exitReq  *int        // set by exit() in the REPL
	memWatch *memWatch   // nil without a memory limit
	limitHit atomic.Bool // the memory limit cancelled the threads
}

// absOnFirstUse returns dir made absolute when first asked: a run that
// loads nothing never reads the working directory (nothing in nsh changes
// it: threads that chdir have unshared CLONE_FS first).
func absOnFirstUse(dir string) func() string {
	return sync.OnceValue(func() string {
		if abs, err := filepath.Abs(dir); err == nil {
			return abs
		}
		return dir
	})
}

type module struct {
	globals starlark.StringDict
	err     error
	loading bool
}

// NewRun prepares a run whose scripts' loads are confined to root and whose
// argv global holds argv. It handles SIGINT, SIGTERM and SIGHUP from the
// moment a builtin first guards the run's registry (before it creates
// anything nsh's death would leave behind: see lifecycle.Registry.Guard)
// or the REPL starts: the first such signal cancels the running Starlark
// code and blocking builtins, and the run then tears down and reports
// 128+N. Until then a signal's default action ends nsh (a shell reports
// 128+N as well) and the kernel reclaims what the run holds, as it would
// after SIGKILL: a run of plain Starlark, or one that only starts
// processes (which have a parent-death signal), saves the start of
// os/signal's threads.
func (in *Interp) NewRun(root string, argv []string) *Run {
	vals := make([]starlark.Value, len(argv))
	for i, a := range argv {
		vals[i] = starlark.String(a)
	}
	r := &Run{
		in:       in,
		Registry: lifecycle.New(),
		root:     absOnFirstUse(root),
		argv:     starlark.NewList(vals),
		modules:  map[string]*module{},
		threads:  map[*starlark.Thread]bool{},
		sigc:     make(chan os.Signal, 4),
		done:     make(chan struct{}),
	}
	r.realRoot = sync.OnceValue(func() string {
		if real, err := filepath.EvalSymlinks(r.root()); err == nil {
			return real
		}
		return r.root()
	})
	r.Registry.OnGuard(r.handleSignals)
	if in.cfg.Trace != nil {
		change.Trace(r.Registry, in.cfg.Trace)
	}
	if in.cfg.TraceSetup != nil {
		change.Script(r.Registry, in.cfg.TraceSetup, in.cfg.TraceTeardown)
	}
	if in.cfg.MaxMemory > 0 {
		r.watchMemory(in.cfg.MaxMemory)
	}
	return r
}

// handleSignals starts the run's signal handling, once. A signal that
// was ignored when nsh started stays ignored, as in sh (nohup ignores
// SIGHUP; a non-interactive shell starts background jobs with SIGINT
// ignored); the processes the run starts then inherit it ignored too.
// Each signal handled here has its default action again in them.
func (r *Run) handleSignals() {
	r.sigOnce.Do(func() {
		var sigs []os.Signal
		for _, s := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
			if !signal.Ignored(s) {
				sigs = append(sigs, s)
			}
		}
		if len(sigs) == 0 {
			return
		}
		signal.Notify(r.sigc, sigs...)
		r.watched = make(chan struct{})
		go func() {
			defer close(r.watched)
			r.watchSignals()
		}()
	})
}

func (r *Run) watchSignals() {
	for {
		select {
		case <-r.done:
			return
		case s := <-r.sigc:
			r.Interrupt(s.(syscall.Signal))
		}
	}
}

// Interrupt cancels every running thread of the run and its blocking
// builtins, as a signal would, and remembers the signal for the exit code.
func (r *Run) Interrupt(sig syscall.Signal) {
	r.mu.Lock()
	if r.signal == 0 {
		r.signal = sig
	}
	for th := range r.threads {
		th.Cancel("interrupted by " + signalName(sig))
	}
	stop := r.onStop
	r.mu.Unlock()
	r.Registry.Interrupt()
	if stop != nil && sig != syscall.SIGINT {
		stop()
	}
}

// Signal returns the signal that interrupted the run, or 0.
func (r *Run) Signal() syscall.Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.signal
}

// clearSignal forgets an interruption, so the REPL can go on after Ctrl-C.
func (r *Run) clearSignal() {
	r.mu.Lock()
	r.signal = 0
	r.mu.Unlock()
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}

// NewThread returns a thread of this run: it prints to the run's stdout,
// loads through the run's loader and shares the run's registry.
func (r *Run) NewThread(name string) *starlark.Thread {
	th := &starlark.Thread{
		Name:  name,
		Print: func(_ *starlark.Thread, msg string) { fmt.Fprintln(r.in.cfg.Stdout, msg) },
		Load:  r.load,
	}
	lifecycle.Attach(th, r.Registry)
	th.SetLocal(fileKey, name)
	if max := r.in.cfg.MaxSteps; max > 0 {
		th.SetMaxExecutionSteps(max)
		th.OnMaxSteps = func(th *starlark.Thread) { th.Cancel(stepMessage(max)) }
	}
	return th
}

const fileKey = "nsh.file"

// track registers th for cancellation while fn runs. A Go panic in fn
// (one no builtin wrapper caught, e.g. in a method) becomes its error.
func (r *Run) track(th *starlark.Thread, fn func() error) (err error) {
	r.mu.Lock()
	r.threads[th] = true
	if r.signal != 0 {
		th.Cancel("interrupted by " + signalName(r.signal))
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.threads, th)
		r.mu.Unlock()
	}()
	defer func() {
		if p := recover(); p != nil {
			err = internalError(p)
		}
	}()
	return fn()
}

// predeclared returns the names every module of this run sees.
func (r *Run) predeclared() starlark.StringDict {
	d := make(starlark.StringDict, len(r.in.predeclared)+1)
	for k, v := range r.in.predeclared {
		d[k] = v
	}
	d["argv"] = r.argv
	return d
}

// predeclaredNames lists the names every module of this run sees.
func (r *Run) predeclaredNames() []string {
	names := make([]string, 0, len(r.in.predeclared)+1)
	for k := range r.in.predeclared {
		names = append(names, k)
	}
	return append(names, "argv")
}

// ExecFile runs a script's source as the main module and returns its
// globals. filename is used in positions and to resolve loads.
func (r *Run) ExecFile(filename string, src any) (starlark.StringDict, error) {
	th := r.NewThread(filename)
	var globals starlark.StringDict
	err := r.track(th, func() error {
		var err error
		globals, err = starlark.ExecFileOptions(Options, th, filename, src, r.predeclared())
		suggestUndefined(err, r.predeclaredNames)
		return err
	})
	return globals, err
}

// Close tears down everything the run created and stops signal handling.
// It returns the undo steps that failed.
func (r *Run) Close() error {
	err := r.Teardown()
	signal.Stop(r.sigc)
	return err
}

// Teardown is Close for a process that exits right after. A run that
// handles signals stops handling them at its end, after taking a signal
// that came meanwhile for its exit status (see ExitCode).
func (r *Run) Teardown() error {
	err := r.Registry.Teardown()
	if terr := change.Finish(r.Registry); terr != nil {
		err = errors.Join(err, terr)
	}
	select {
	case <-r.done:
	default:
		close(r.done)
		if r.memWatch != nil {
			r.memWatch.stop()
		}
		// A signal that came as the run ended (still in the Go
		// runtime's queue, its watcher not yet scheduled, or during
		// the teardown) still sets the exit status: nsh was asked to
		// stop, and says so with 128+N. signal.Stop delivers what is
		// queued before it returns (~0.3 ms, only for runs that
		// handle signals); one that comes later has its default
		// action, which a shell reports as 128+N too.
		r.sigOnce.Do(func() {}) // handleSignals has set r.watched, or never will
		if r.watched != nil {
			<-r.watched
			signal.Stop(r.sigc)
			select {
			case s := <-r.sigc:
				r.mu.Lock()
				if r.signal == 0 {
					r.signal = s.(syscall.Signal)
				}
				r.mu.Unlock()
			default:
			}
		}
	}
	return err
}

// ExitError is returned by the exit() builtin to end a run early.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit(%d)", e.Code) }

// ExitCode maps the outcome of a run to the process exit status: 0 for
// success, the code given to exit(), 128+N after signal N, 1 otherwise.
func (r *Run) ExitCode(err error) int {
	r.mu.Lock()
	req := r.exitReq
	r.mu.Unlock()
	if req != nil {
		return *req
	}
	if sig := r.Signal(); sig != 0 {
		return 128 + int(sig)
	}
	if err == nil {
		return 0
	}
	var ex *ExitError
	if errors.As(err, &ex) {
		return ex.Code
	}
	return 1
}

// IsExit reports whether err is an exit() request rather than a failure.
func IsExit(err error) bool {
	var ex *ExitError
	return errors.As(err, &ex)
}
