package lifecycle

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"weak"
)

// The OnGuard function runs once, at the first Guard, and not when the
// registry is merely used.
func TestGuard(t *testing.T) {
	r := New()
	calls := 0
	r.OnGuard(func() { calls++ })
	r.Add("x", func() error { return nil })
	r.Shared("k", func() any { return 1 })
	r.Context()
	if calls != 0 || r.Guarded() {
		t.Fatalf("before Guard: %d calls, guarded %v", calls, r.Guarded())
	}
	r.Guard()
	r.Guard()
	if calls != 1 || !r.Guarded() {
		t.Fatalf("after Guard: %d calls, guarded %v", calls, r.Guarded())
	}
}

// OnDone's function runs once, when its entry needs no undo any more, in
// each way an entry ends; a second OnDone runs the first function.
func TestOnDone(t *testing.T) {
	r := New()
	var log []string
	entry := func(name string) *Entry {
		e := r.Add(name, func() error { log = append(log, "undo "+name); return nil })
		e.OnDone(func() { log = append(log, "done "+name) })
		return e
	}
	entry("persisted").Persist()
	entry("released").Release()
	entry("forgotten").Forget()
	replaced := entry("replaced")
	replaced.OnDone(func() { log = append(log, "done replaced, second") })
	entry("torn down")
	r.Teardown()
	replaced.Release() // after Teardown: nothing runs again
	want := "done persisted|undo released|done released|done forgotten|done replaced|" +
		"undo torn down|done torn down|undo replaced|done replaced, second"
	if got := strings.Join(log, "|"); got != want {
		t.Errorf("calls:\n got %s\nwant %s", got, want)
	}
}

// TestItem7DoneEntriesDropped: entries that need no undo any more
// (forgotten, released) neither grow the registry nor keep what their undo
// refers to reachable, persistent ones are dropped from the registry (their
// object keeps them) (issue 15 item 7: a deleted link's entry
// kept its network namespace open), and Teardown still undoes the rest.
func TestItem7DoneEntriesDropped(t *testing.T) {
	r := New()
	type obj struct{ _ [64]byte }
	var refs []weak.Pointer[obj]
	undone := 0
	var keep []*Entry
	for i := 0; i < 1000; i++ {
		o := &obj{}
		refs = append(refs, weak.Make(o))
		e := r.Add(fmt.Sprint("object ", i), func() error { _ = o; undone++; return nil })
		switch i % 4 {
		case 0:
			e.Forget()
		case 1:
			e.Release()
		case 2:
			e.Persist()
		case 3:
			keep = append(keep, e)
		}
	}
	if undone != 250 {
		t.Errorf("%d undone by Release, want 250", undone)
	}
	if n := len(r.entries); n > 2*len(keep)+64 {
		t.Errorf("the registry holds %d entries for %d live objects", n, len(keep))
	}
	runtime.GC()
	for i, p := range refs {
		if i%4 == 2 {
			continue // persistent: its entry, kept by its object, may still undo it
		}
		if alive := p.Value() != nil; alive != (i%4 == 3) {
			t.Errorf("object %d: reachable %v", i, alive)
		}
	}
	if err := r.Teardown(); err != nil || undone != 500 {
		t.Errorf("Teardown: %v, %d undone, want 500", err, undone)
	}
}
