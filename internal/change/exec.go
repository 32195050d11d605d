package change

import (
	"fmt"
	"io"
	"sync"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/reaper"
)

// Executor makes a run's kernel changes: the one place that registers
// their undo and gives the reaper their ops.
type Executor struct {
	reg *lifecycle.Registry
	// watch gives the reaper e's ops (none: withdraws them); it starts
	// the reaper on first use.
	watch func(e *lifecycle.Entry, ops ...reaper.Op)
}

// NewExecutor returns the executor of the run whose registry is reg;
// watch hands an entry's ops to the run's reaper (see Watch).
func NewExecutor(reg *lifecycle.Registry, watch func(e *lifecycle.Entry, ops ...reaper.Op)) *Executor {
	return &Executor{reg: reg, watch: watch}
}

// Do applies r on behalf of the Starlark code running on th: under `nsh
// -x` it first prints r's commands with the script position of the
// calling frame; then it applies r and, if r has an undo, registers it in
// the run's registry (printed as it runs at teardown) and gives the
// reaper r's ops. It returns the registry entry, nil when r has no undo.
func (x *Executor) Do(th *starlark.Thread, r Record) (*lifecycle.Entry, error) {
	b := r.effect()
	t := traceOf(x.reg)
	if t != nil {
		t.setup(th, r.Commands())
	}
	if err := b.Apply(); err != nil {
		return nil, err
	}
	if b.Undo == nil {
		return nil, nil
	}
	undo := b.Undo
	e := x.reg.Add(b.What, func() error {
		did, err := undo()
		if did && t != nil {
			t.teardown(r.UndoCommands())
		}
		return err
	})
	if b.Reap != nil {
		if ops := b.Reap(); len(ops) > 0 {
			x.watch(e, ops...)
		}
	}
	return e, nil
}

// Watch gives the reaper new ops for e's object (a link that moved has a
// new index, maybe in a namespace with another fate); no ops withdraws
// the earlier ones.
func (x *Executor) Watch(e *lifecycle.Entry, ops ...reaper.Op) { x.watch(e, ops...) }

// tracer prints the changes of a run (nsh -x).
type tracer struct {
	mu sync.Mutex
	w  io.Writer
}

const traceKey = "nsh.change.trace"

// Trace makes the run whose registry is reg print each change on w as it
// is applied, like sh -x: "+ FILE:LINE: COMMAND", and each undo done at
// teardown or on an explicit release: "- COMMAND".
func Trace(reg *lifecycle.Registry, w io.Writer) {
	t := reg.Shared(traceKey, func() any { return &tracer{} }).(*tracer)
	t.mu.Lock()
	t.w = w
	t.mu.Unlock()
}

// traceOf returns the run's tracer, nil when the run does not trace.
func traceOf(reg *lifecycle.Registry) *tracer {
	t := reg.Shared(traceKey, func() any { return &tracer{} }).(*tracer)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
		return nil
	}
	return t
}

// Tracing reports whether the run of reg prints its changes.
func Tracing(reg *lifecycle.Registry) bool { return traceOf(reg) != nil }

func (t *tracer) setup(th *starlark.Thread, cmds []string) {
	pos := ""
	if th != nil {
		for i := 1; i < th.CallStackDepth(); i++ {
			if p := th.CallFrame(i).Pos; p.Filename() != "<builtin>" {
				pos = fmt.Sprintf("%s:%d: ", p.Filename(), p.Line)
				break
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cmds {
		fmt.Fprintf(t.w, "+ %s%s\n", pos, c)
	}
}

func (t *tracer) teardown(cmds []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cmds {
		fmt.Fprintf(t.w, "- %s\n", c)
	}
}
