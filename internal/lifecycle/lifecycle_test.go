package lifecycle

import "testing"

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
