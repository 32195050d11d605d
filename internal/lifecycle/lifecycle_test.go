package lifecycle

import (
	"strings"
	"testing"
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
