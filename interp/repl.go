package interp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode"

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
	hist := HistoryPath()
	if hist != "" {
		os.MkdirAll(filepath.Dir(hist), 0o700)
	}
	rl, err := readline.NewEx(&readline.Config{
		Prompt:            r.prompt(th),
		HistoryFile:       hist,
		AutoComplete:      &completer{env: env},
		InterruptPrompt:   "^C",
		EOFPrompt:         "",
		Stdin:             stdin,
		Stdout:            r.in.cfg.Stdout,
		Stderr:            r.in.cfg.Stderr,
		HistorySearchFold: true,
	})
	if err != nil {
		return err
	}
	defer rl.Close()
	r.mu.Lock()
	r.onStop = func() { rl.Close() }
	r.mu.Unlock()
	fmt.Fprintln(r.in.cfg.Stdout, `nsh: Starlark shell for Linux namespaces. help() lists the builtins; Ctrl-D leaves.`)
	for {
		err := r.rep(rl, th, env)
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
// runs it and prints the value of a lone expression.
func (r *Run) rep(rl *readline.Instance, th *starlark.Thread, env starlark.StringDict) error {
	eof, interrupted := false, false
	first := true
	read := func() ([]byte, error) {
		if first {
			rl.SetPrompt(r.prompt(th))
			first = false
		} else {
			rl.SetPrompt("... ")
		}
		line, err := rl.Readline()
		if err != nil {
			if errors.Is(err, io.EOF) {
				eof = true
			}
			if err == readline.ErrInterrupt {
				interrupted = true
			}
			return nil, err
		}
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
	err = r.track(th, func() error {
		if expr := soleExpr(f); expr != nil {
			v, err := starlark.EvalExprOptions(f.Options, th, expr, env)
			if err != nil {
				r.printErr(err)
				return nil
			}
			if v != starlark.None {
				fmt.Fprintln(r.in.cfg.Stdout, v.String())
			}
			return nil
		}
		if err := starlark.ExecREPLChunk(f, th, env); err != nil {
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

// completer completes global names and, after "x.y.", attribute names of
// the value the dotted path denotes (looked up, never called).
type completer struct{ env starlark.StringDict }

var keywords = []string{"and", "break", "continue", "def", "elif", "else", "for", "if", "in", "lambda", "load", "not", "or", "pass", "return", "while", "True", "False", "None"}

// Do implements readline.AutoCompleter.
func (c *completer) Do(line []rune, pos int) ([][]rune, int) {
	start := pos
	for start > 0 && (isIdent(line[start-1]) || line[start-1] == '.') {
		start--
	}
	word := string(line[start:pos])
	var cands []string
	prefix := word
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		prefix = word[i+1:]
		v := c.lookup(word[:i])
		if ha, ok := v.(starlark.HasAttrs); ok {
			cands = ha.AttrNames()
		}
	} else {
		for k := range c.env {
			cands = append(cands, k)
		}
		for k := range starlark.Universe {
			cands = append(cands, k)
		}
		cands = append(cands, keywords...)
	}
	sort.Strings(cands)
	var out [][]rune
	last := ""
	for _, s := range cands {
		if s != last && strings.HasPrefix(s, prefix) && !strings.HasPrefix(s, "_") {
			out = append(out, []rune(s[len(prefix):]))
		}
		last = s
	}
	return out, len([]rune(prefix))
}

func (c *completer) lookup(path string) starlark.Value {
	parts := strings.Split(path, ".")
	v, ok := c.env[parts[0]]
	if !ok {
		v, ok = starlark.Universe[parts[0]]
		if !ok {
			return nil
		}
	}
	for _, p := range parts[1:] {
		ha, ok := v.(starlark.HasAttrs)
		if !ok {
			return nil
		}
		next, err := ha.Attr(p)
		if err != nil || next == nil {
			return nil
		}
		v = next
	}
	return v
}

func isIdent(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
