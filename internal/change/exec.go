package change

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/fault"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/reaper"
)

// Executor makes a run's kernel changes: the one place that registers
// their undo and gives the reaper their ops.
type Executor struct {
	reg *lifecycle.Registry
	t   *tracer // the run's (tracerOf), tracing or not
	mu  sync.Mutex
	// made are the entries of the changes with an undo (KeepAll).
	made []*lifecycle.Entry
	// reaper returns the run's reaper, started on first use; nil if it
	// could not be started (the run then has its own teardown only).
	reaper func() Reaper
	// observe, if set, is told of each record applied (Observe).
	observe func(r Record) (undone func())
}

// Observe makes x call applied with each record once it is applied (a
// lab's journal notes what every change built, for nsh status), before
// its undo is registered; the func applied returns, if not nil, is called
// when the change is undone during the run. Call it before the first Do.
// Records marshal to JSON (their closures are left out).
func (x *Executor) Observe(applied func(r Record) (undone func())) { x.observe = applied }

// Reaper is what the executor needs of the run's reaper (a
// *reaper.Reaper): record ids, ops given or replaced by id, withdrawn.
type Reaper interface {
	NewID() uint64
	Set(id uint64, what string, ops ...reaper.Op) error
	Del(id uint64) error
}

// NewExecutor returns the executor of the run whose registry is reg;
// reaper returns the run's reaper, starting it on first use (nil if it
// cannot).
func NewExecutor(reg *lifecycle.Registry, reaper func() Reaper) *Executor {
	return &Executor{reg: reg, reaper: reaper, t: tracerOf(reg)}
}

// ahead is a reaper record given before its change is made.
type ahead struct {
	x    *Executor
	what string
	r    Reaper
	id   uint64
	live bool // the reaper holds ops for id
}

// set gives the reaper ops for the record (none: withdraws them).
func (a *ahead) set(ops []reaper.Op) {
	if len(ops) == 0 {
		a.del()
		return
	}
	if a.r == nil {
		if a.r = a.x.reaper(); a.r == nil {
			return
		}
		a.id = a.r.NewID()
	}
	if err := a.r.Set(a.id, a.what, ops...); err != nil {
		fmt.Fprintf(os.Stderr, "nsh: warning: %s would outlive a killed nsh: %v\n", a.what, err)
		return
	}
	a.live = true
}

func (a *ahead) del() {
	if a.live {
		a.r.Del(a.id)
		a.live = false
	}
}

// Do applies r on behalf of the Starlark code running on th. The reaper
// gets r's Ahead ops before r is applied (and those Apply gives Intend
// as it goes); once applied, they are replaced by r's Reap ops, or
// withdrawn if r failed. If r has an undo, Do registers it in the run's
// registry, and the reaper forgets r's ops when the undo is done (or r is
// kept, or gone). When the run traces (nsh -x, --trace), r's commands are
// printed once r is applied (or failed, with the script position of the
// calling frame) and its undo commands as the undo runs. It returns the
// registry entry, nil when r has no undo.
func (x *Executor) Do(th *starlark.Thread, r Record) (*lifecycle.Entry, error) {
	b := r.effect()
	a := &ahead{x: x, what: b.What}
	if b.Ahead != nil {
		a.set(b.Ahead())
	}
	b.intend = a.set
	var err error
	var seq int64 // the change's number for the fault injector
	if fault.Enabled {
		what := b.What
		if what == "" {
			what = strings.Join(r.Commands(), "; ")
		}
		seq, err = fault.Applying(what)
	}
	if err == nil {
		err = b.Apply()
		fault.Applied()
	}
	b.intend = nil
	t := x.t.active()
	if t != nil {
		t.setup(th, r, err == nil)
	}
	var undone func()
	if err == nil && x.observe != nil {
		undone = x.observe(r)
	}
	undo, reap := b.Undo, b.Reap
	// The record is data from here on (the tracer may keep it to the end
	// of the run): its closures, which hold namespaces, are not kept.
	b.Apply, b.Undo, b.Reap, b.Ahead = nil, nil, nil, nil
	if err != nil || undo == nil {
		a.del()
		if err != nil {
			err = failed(r, err)
		}
		return nil, err
	}
	if reap != nil {
		a.set(reap())
	}
	e := x.reg.Add(b.What, func() error {
		if fault.Enabled {
			fault.Undoing(seq)
		}
		did, err := undo()
		if did && t != nil {
			t.teardown(r.UndoCommands())
		}
		if err == nil && undone != nil {
			undone()
		}
		return err
	})
	if a.live {
		e.OnDone(a.del)
	}
	x.mu.Lock()
	x.made = append(x.made, e)
	x.mu.Unlock()
	return e, nil
}

// KeepAll keeps every change made so far past the end of the run (a lab
// that is up): their undos are not done, and the reaper forgets them.
func (x *Executor) KeepAll() {
	x.mu.Lock()
	made := x.made
	x.made = nil
	x.mu.Unlock()
	for _, e := range made {
		e.Persist()
	}
}

// Hold registers the release, at the end of the run, of what the run
// holds that is no kernel change (netlink handles, spawner threads,
// namespace descriptors): nothing to trace, nothing for the reaper (the
// kernel frees it with nsh). Like every undo, it is registered here.
func (x *Executor) Hold(what string, release func() error) *lifecycle.Entry {
	return x.reg.Add(what, release)
}

// Watch gives the reaper new ops for e's object (a link that moved has a
// new index, maybe in a namespace with another fate); no ops withdraws
// the earlier ones. The reaper forgets them when e is done.
func (x *Executor) Watch(e *lifecycle.Entry, ops ...reaper.Op) {
	if len(ops) == 0 {
		e.OnDone(nil)
		return
	}
	a := &ahead{x: x, what: e.What}
	a.set(ops)
	if a.live {
		e.OnDone(a.del) // and the earlier ops are withdrawn
	}
}

// tracer prints the changes of a run: on w as they are made (nsh -x),
// and as a setup script (written as the run goes) and a teardown script
// (written when the run ends, by Finish) for --trace.
type tracer struct {
	mu       sync.Mutex
	w        io.Writer // nil: no -x
	setupW   io.Writer // nil: no --trace
	undoW    io.Writer
	lastPos  string
	made     []Record // applied records whose undo the teardown script does
	started  bool     // the setup script's header is written
	finished bool
	err      error // the first failed write of a script
}

// put writes s to a script, keeping the first error for Finish.
func (t *tracer) put(w io.Writer, s string) {
	if _, err := io.WriteString(w, s); err != nil && t.err == nil {
		t.err = err
	}
}

const traceKey = "nsh.change.trace"

func tracerOf(reg *lifecycle.Registry) *tracer {
	return reg.Shared(traceKey, func() any { return &tracer{} }).(*tracer)
}

// Trace makes the run whose registry is reg print each change on w as it
// is applied, like sh -x: "+ FILE:LINE: COMMAND", and each undo done at
// teardown or on an explicit release: "- COMMAND".
func Trace(reg *lifecycle.Registry, w io.Writer) {
	t := tracerOf(reg)
	t.mu.Lock()
	t.w = w
	t.mu.Unlock()
}

// Script makes the run whose registry is reg write the commands of its
// changes to setup, as a shell script that makes them again on another
// machine (with iproute2 and util-linux), and, when Finish is called, the
// commands that undo them, newest first, to teardown. Finish reports a
// failed write.
func Script(reg *lifecycle.Registry, setup, teardown io.Writer) {
	t := tracerOf(reg)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setupW, t.undoW = setup, teardown
}

const setupHeader = `#!/bin/sh
# The kernel changes of an nsh run (nsh --trace), as the equivalent commands.
# A namespace that was held only by nsh's descriptor is named by its
# /proc/PID/fd/N path, which exists only while that run does. What running
# the script did besides (the processes it started and their cgroup, the
# namespaces only nsh's descriptors held, setns) is noted in comments.
set -e
`

const teardownHeader = `#!/bin/sh
# Undoes what the setup script of the same nsh --trace made, newest first.
`

// Finish writes the teardown script of Script, once the run is over, and
// returns the first error writing either script.
func Finish(reg *lifecycle.Registry) error {
	t := tracerOf(reg)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.undoW == nil || t.finished {
		return nil
	}
	t.finished = true
	if !t.started {
		t.started = true
		t.put(t.setupW, setupHeader)
	}
	var b strings.Builder
	b.WriteString(teardownHeader)
	for i := len(t.made) - 1; i >= 0; i-- {
		for _, c := range t.made[i].UndoCommands() {
			b.WriteString(c + "\n")
		}
	}
	t.made = nil
	t.put(t.undoW, b.String())
	if t.err != nil {
		return fmt.Errorf("writing the --trace scripts: %w", t.err)
	}
	return nil
}

// active returns t, nil when the run does not trace.
func (t *tracer) active() *tracer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil && t.setupW == nil {
		return nil
	}
	return t
}

// Tracing reports whether the run of reg traces its changes.
func Tracing(reg *lifecycle.Registry) bool { return tracerOf(reg).active() != nil }

// Tracing reports whether the executor's run traces its changes.
func (x *Executor) Tracing() bool { return x.t.active() != nil }

// setup traces r, applied if ok (else it failed).
func (t *tracer) setup(th *starlark.Thread, r Record, ok bool) {
	cmds := r.Commands()
	if len(cmds) == 0 {
		return
	}
	pos := ""
	if th != nil {
		for i := 1; i < th.CallStackDepth(); i++ {
			if p := th.CallFrame(i).Pos; p.Filename() != "<builtin>" {
				pos = fmt.Sprintf("%s:%d", p.Filename(), p.Line)
				break
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w != nil {
		for _, c := range cmds {
			if pos != "" {
				fmt.Fprintf(t.w, "+ %s: %s\n", pos, c)
			} else {
				fmt.Fprintf(t.w, "+ %s\n", c)
			}
		}
	}
	if t.setupW == nil || !ok || t.finished {
		return
	}
	var b strings.Builder
	if !t.started {
		t.started = true
		b.WriteString(setupHeader)
	}
	if pos != t.lastPos && pos != "" {
		b.WriteString("# " + pos + "\n")
		t.lastPos = pos
	}
	aside := r.effect().Aside
	for _, c := range cmds {
		if aside && !strings.HasPrefix(c, "#") {
			// Every line: a quoted argument may span several.
			c = "# " + strings.ReplaceAll(c, "\n", "\n# ")
		}
		b.WriteString(c + "\n")
	}
	t.put(t.setupW, b.String())
	if b := r.effect(); (b.Undo != nil || b.Kept) && !b.Aside {
		t.made = append(t.made, r)
	}
}

func (t *tracer) teardown(cmds []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
		return
	}
	for _, c := range cmds {
		fmt.Fprintf(t.w, "- %s\n", c)
	}
}
