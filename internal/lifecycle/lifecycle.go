// Package lifecycle is the per-run registry of what a run has created. Each
// builtin that makes a kernel object registers how to undo it in one line;
// at the end of the run (normal end, error, exit(), signal) the registry
// undoes everything in reverse order, except what was marked persistent.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.starlark.net/starlark"
)

// Registry is the ordered record of one run's objects and their undo steps.
// It also carries the run's shared values (see Shared) and a context that is
// cancelled when the run is interrupted, for builtins that block.
type Registry struct {
	mu      sync.Mutex
	entries []*Entry
	shared  map[string]any
	ctx     context.Context
	cancel  context.CancelFunc
	down    bool
	onGuard func() // called once, by the first Guard
	guarded bool
	// compactAt is the length of entries at which Add drops the entries
	// that need no undo any more.
	compactAt int
}

// Entry is one registered object.
type Entry struct {
	What    string // human description, e.g. `veth "a"/"b"`
	undo    func() error
	persist bool
	gone    bool
	reg     *Registry
	done    func() // see OnDone
}

// New returns an empty registry.
func New() *Registry {
	ctx, cancel := context.WithCancel(context.Background())
	return &Registry{shared: map[string]any{}, ctx: ctx, cancel: cancel}
}

// OnGuard registers f to be called once, by the first Guard. The runner
// starts its signal handling there, so a run that creates nothing a
// killed nsh would leave behind does not pay for it.
func (r *Registry) OnGuard(f func()) {
	r.mu.Lock()
	r.onGuard = f
	r.mu.Unlock()
}

// Guard must be called before creating anything that nsh's death would
// leave behind without a teardown (a link in a namespace that outlives
// nsh, a mount, a named netns, a sysctl value): it calls the OnGuard
// function if it has not run yet, so an interrupted run tears such
// objects down. What the kernel reclaims when nsh dies, even by SIGKILL,
// needs no Guard: descriptors (and the namespaces only they hold),
// threads, and children with a parent-death signal.
func (r *Registry) Guard() {
	r.mu.Lock()
	f := r.onGuard
	r.onGuard, r.guarded = nil, true
	r.mu.Unlock()
	if f != nil {
		f()
	}
}

const localKey = "nsh.registry"

// Attach makes r the registry of thread; every thread of a run shares one.
func Attach(thread *starlark.Thread, r *Registry) { thread.SetLocal(localKey, r) }

// From returns the registry of the run thread belongs to. A thread created
// outside nsh's runner gets a fresh registry that nobody tears down, so
// builtins always have one; the runner always attaches its own.
func From(thread *starlark.Thread) *Registry {
	if r, ok := thread.Local(localKey).(*Registry); ok {
		return r
	}
	r := New()
	Attach(thread, r)
	return r
}

// Guarded reports whether Guard was called.
func (r *Registry) Guarded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.guarded
}

// Add records an object and how to undo it, and returns its entry. It
// does not call Guard: that is done before the object is created.
func (r *Registry) Add(what string, undo func() error) *Entry {
	e := &Entry{What: what, undo: undo, reg: r}
	r.mu.Lock()
	if len(r.entries) >= r.compactAt {
		r.compact()
	}
	r.entries = append(r.entries, e)
	r.mu.Unlock()
	return e
}

// compact drops the entries that are gone or persistent, so that a script
// making and deleting objects in a loop does not grow the registry (nor
// keep what their undos refer to, such as a namespace, reachable). r.mu
// is held.
func (r *Registry) compact() {
	live := r.entries[:0]
	for _, e := range r.entries {
		if !e.gone && !e.persist {
			live = append(live, e)
		}
	}
	clear(r.entries[len(live):])
	r.entries = live
	r.compactAt = max(64, 2*len(live))
}

// OnDone sets f to be called once the entry needs no undo any more: when
// it is persisted, released, forgotten, or undone by Teardown. A later
// OnDone (f may be nil) calls the earlier f first and replaces it.
func (e *Entry) OnDone(f func()) {
	e.reg.mu.Lock()
	old := e.done
	e.done = f
	e.reg.mu.Unlock()
	call(old)
}

// finish takes the entry's OnDone function; r.mu is held. The caller
// calls it, if not nil, after unlocking.
func (e *Entry) finish() func() {
	f := e.done
	e.done = nil
	return f
}

func call(f func()) {
	if f != nil {
		f()
	}
}

// Persist keeps the object past the end of the run.
func (e *Entry) Persist() {
	e.reg.mu.Lock()
	e.persist = true
	f := e.finish()
	e.reg.mu.Unlock()
	call(f)
}

// Persistent reports whether Persist was called.
func (e *Entry) Persistent() bool {
	e.reg.mu.Lock()
	defer e.reg.mu.Unlock()
	return e.persist
}

// Gone reports whether the entry was released or forgotten: its object
// needs no undo any more.
func (e *Entry) Gone() bool {
	e.reg.mu.Lock()
	defer e.reg.mu.Unlock()
	return e.gone
}

// Release undoes the object now (e.g. an explicit delete) and forgets it.
// Releasing twice is a no-op.
func (e *Entry) Release() error {
	e.reg.mu.Lock()
	if e.gone {
		e.reg.mu.Unlock()
		return nil
	}
	e.gone = true
	undo := e.undo
	e.undo = nil
	f := e.finish()
	e.reg.mu.Unlock()
	err := undo()
	call(f)
	return err
}

// Forget drops the entry without undoing it: the object went away by itself.
func (e *Entry) Forget() {
	e.reg.mu.Lock()
	e.gone = true
	e.undo = nil
	f := e.finish()
	e.reg.mu.Unlock()
	call(f)
}

// Live returns the descriptions of the objects still registered and not
// persistent, oldest first.
func (r *Registry) Live() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		if !e.gone && !e.persist {
			out = append(out, e.What)
		}
	}
	return out
}

// Shared returns the run-wide value stored under key, creating it with make
// on first use. Values that hold resources register their own undo.
func (r *Registry) Shared(key string, make func() any) any {
	r.mu.Lock()
	v, ok := r.shared[key]
	r.mu.Unlock()
	if ok {
		return v
	}
	v = make()
	r.mu.Lock()
	if old, ok := r.shared[key]; ok {
		v = old
	} else {
		r.shared[key] = v
	}
	r.mu.Unlock()
	return v
}

// Context is cancelled when the run is interrupted; blocking builtins
// select on it. Before the first Guard no signal interrupts a run (a
// signal then has its default action).
func (r *Registry) Context() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctx
}

// Interrupt cancels Context.
func (r *Registry) Interrupt() {
	r.mu.Lock()
	cancel := r.cancel
	r.mu.Unlock()
	cancel()
}

// Teardown undoes every live, non-persistent entry in reverse order of
// creation, and returns the undos that failed, each naming its object.
// It is idempotent.
func (r *Registry) Teardown() error {
	r.mu.Lock()
	if r.down {
		r.mu.Unlock()
		return nil
	}
	r.down = true
	entries := r.entries
	r.entries = nil
	r.mu.Unlock()
	var errs []error
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.gone || e.persist {
			continue
		}
		r.mu.Lock()
		e.gone = true
		undo := e.undo
		e.undo = nil
		f := e.finish()
		r.mu.Unlock()
		if err := undo(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup of %s: %w", e.What, err))
		}
		call(f)
	}
	r.Interrupt()
	return errors.Join(errs...)
}

// Resume gives the run a fresh Context after an interruption was handled
// (the REPL goes on after Ctrl-C).
func (r *Registry) Resume() {
	r.mu.Lock()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.mu.Unlock()
}
