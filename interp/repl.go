package interp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/chzyer/readline"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// HistoryPath is where the REPL keeps its history:
// $XDG_STATE_HOME/nsh/history, or ~/.local/state/nsh/history.
func HistoryPath() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "nsh", "history")
}

// REPL reads, evaluates and prints until end of input (Ctrl-D) or
// SIGTERM/SIGHUP. globals holds the names defined so far (the script's, for
// `nsh -i`); it is updated in place. Ctrl-C while typing abandons the
// input; Ctrl-C while a statement runs cancels it; the session goes on.
func (r *Run) REPL(globals starlark.StringDict, stdin io.ReadCloser) error {
	r.Registry.Guard() // Ctrl-C cancels a statement even of plain Starlark
	env := r.predeclared()
	for k, v := range globals {
		env[k] = v
	}
	th := r.NewThread("<stdin>")
	comp := &completer{env: env, table: r.in.table}
	ai := &autoIndent{}
	hist := HistoryPath()
	if hist != "" {
		os.MkdirAll(filepath.Dir(hist), 0o700)
	}
	rl, err := readline.NewEx(&readline.Config{
		Prompt:              r.prompt(th),
		HistoryFile:         hist,
		AutoComplete:        comp,
		InterruptPrompt:     "^C",
		EOFPrompt:           "",
		Stdin:               stdin,
		Stdout:              r.in.cfg.Stdout,
		Stderr:              r.in.cfg.Stderr,
		HistorySearchFold:   true,
		FuncFilterInputRune: ai.filter,
	})
	if err != nil {
		return err
	}
	ai.rl = rl
	defer rl.Close()
	r.mu.Lock()
	r.onStop = func() { rl.Close() }
	r.mu.Unlock()
	fmt.Fprintln(r.in.cfg.Stdout, `nsh: Starlark shell for Linux namespaces. help() lists the builtins; Ctrl-D leaves.`)
	for {
		err := r.rep(rl, th, env, comp, ai)
		r.mu.Lock()
		leave := r.exitReq != nil
		r.mu.Unlock()
		if leave {
			break
		}
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(r.in.cfg.Stdout)
			break
		}
		if sig := r.Signal(); sig != 0 {
			if sig != syscall.SIGINT {
				break // SIGTERM/SIGHUP: leave, tearing down
			}
			r.clearSignal()
			th.Uncancel()
			r.Registry.Resume()
		} else if r.limitHit.Swap(false) {
			th.Uncancel() // the memory limit failed the statement; go on
		}
	}
	if globals != nil {
		for k, v := range env {
			globals[k] = v
		}
	}
	return nil
}

// rep reads one chunk (a statement, or a block ended by a blank line),
// runs it and prints the value of a lone expression. A continuation line
// starts with the indentation it most likely needs (see indentAfter); a
// line of only that indentation is blank, and ends the block.
func (r *Run) rep(rl *readline.Instance, th *starlark.Thread, env starlark.StringDict, comp *completer, ai *autoIndent) error {
	eof, interrupted := false, false
	var chunk strings.Builder // the lines read so far
	read := func() ([]byte, error) {
		indent := ""
		if chunk.Len() == 0 {
			rl.SetPrompt(r.prompt(th))
		} else {
			rl.SetPrompt("... ")
			indent = indentAfter(chunk.String())
		}
		comp.before = chunk.String()
		ai.prefilled.Store(indent != "")
		line, err := rl.ReadlineWithDefault(indent)
		if err != nil {
			if errors.Is(err, io.EOF) {
				eof = true
			}
			if err == readline.ErrInterrupt {
				interrupted = true
			}
			return nil, err
		}
		chunk.WriteString(line + "\n")
		return []byte(line + "\n"), nil
	}
	f, err := Options.ParseCompoundStmt("<stdin>", read)
	if err != nil {
		if eof {
			return io.EOF
		}
		if interrupted {
			return nil // Ctrl-C abandons the current input
		}
		if r.stopped() {
			return io.EOF
		}
		fmt.Fprintln(r.in.cfg.Stderr, FormatError(err))
		return nil
	}
	names := func() []string {
		return append(r.predeclaredNames(), env.Keys()...)
	}
	err = r.track(th, func() error {
		if expr := soleExpr(f); expr != nil {
			before := r.prompt(th)
			v, err := starlark.EvalExprOptions(f.Options, th, expr, env)
			suggestUndefined(err, names)
			if err != nil {
				r.printErr(err)
				return nil
			}
			// A call that moved the context, as setns(prev) or
			// unshare("net"), returns a context: the prompt shows
			// where it went, and echoing the context is noise.
			_, call := expr.(*syntax.CallExpr)
			quiet := call && v.Type() == contextType && r.prompt(th) != before
			if v != starlark.None && !quiet {
				fmt.Fprintln(r.in.cfg.Stdout, v.String())
			}
			return nil
		}
		if err := starlark.ExecREPLChunk(f, th, env); err != nil {
			suggestUndefined(err, names)
			r.printErr(err)
		}
		return nil
	})
	if err != nil { // a Go panic the statement caused
		r.printErr(err)
	}
	return nil
}

func (r *Run) printErr(err error) {
	if IsExit(err) {
		// exit() in the REPL leaves the REPL.
		var ex *ExitError
		errors.As(err, &ex)
		r.mu.Lock()
		r.exitReq = &ex.Code
		r.mu.Unlock()
		return
	}
	fmt.Fprintln(r.in.cfg.Stderr, FormatError(err))
}

func (r *Run) stopped() bool {
	sig := r.Signal()
	return sig != 0 && sig != syscall.SIGINT
}

// prompt is "nsh> ", or "nsh[net:4026532201]> " when the current context
// differs from the one nsh started in.
func (r *Run) prompt(th *starlark.Thread) string {
	if r.in.cfg.Prompt != nil {
		if ctx := r.in.cfg.Prompt(th); ctx != "" {
			return "nsh[" + ctx + "]> "
		}
	}
	return "nsh> "
}

func soleExpr(f *syntax.File) syntax.Expr {
	if len(f.Stmts) == 1 {
		if stmt, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
			return stmt.X
		}
	}
	return nil
}

// autoIndent lets typed or pasted indentation replace the indentation
// rep pre-filled a continuation line with: a space typed first on such a
// line clears it, so that code pasted with its own indentation keeps it.
type autoIndent struct {
	rl        *readline.Instance
	prefilled atomic.Bool // the line has its pre-filled indentation and no key yet
}

// filter implements readline's FuncFilterInputRune.
func (a *autoIndent) filter(r rune) (rune, bool) {
	if a.prefilled.Swap(false) && r == ' ' && a.rl != nil {
		a.rl.Operation.SetBuffer("")
	}
	return r, true
}

// contextType is the type of the values that describe a context.
const contextType = "nsh.namespaces"

// indentAfter returns the indentation a continuation of src (the lines of
// a chunk so far, each ending in a newline) most likely needs: that of
// its last line, four spaces more after a line ending in ":", four less
// after return, pass, break or continue, the same inside brackets, none
// inside a string.
func indentAfter(src string) string {
	body := strings.TrimSuffix(src, "\n")
	last := body[strings.LastIndexByte(body, '\n')+1:]
	indent := last[:len(last)-len(strings.TrimLeft(last, " \t"))]
	sc := scanCode(src)
	if sc.quote != "" {
		return "" // inside a string: spaces would be part of it
	}
	if len(sc.frames) > 0 {
		return indent
	}
	code := last
	if c := scanCode(last); c.comment >= 0 {
		code = last[:c.comment]
	}
	code = strings.TrimSpace(code)
	switch {
	case strings.HasSuffix(code, ":"):
		return indent + "    "
	case dedentAfter().MatchString(code):
		if w := indentWidth(indent); w > 0 {
			return strings.Repeat(" ", max(0, (w-1)/4*4))
		}
	}
	return indent
}

// (Compiled at first use, not at every nsh start.)
var dedentAfter = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(return|pass|break|continue)\b`) })

// indentWidth is the column an indentation reaches, a tab advancing to the next
// multiple of 8 as in Starlark's scanner.
func indentWidth(indent string) int {
	w := 0
	for _, c := range indent {
		if c == '\t' {
			w += 8 - w%8
		} else {
			w++
		}
	}
	return w
}
