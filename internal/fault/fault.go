//go:build !nshfault

// Package fault is the test-only fault injector of nsh's kernel changes.
// In a normal build its functions do nothing and cost nothing. Built with
// the tag nshfault (tests only; never a user feature), it reads
// NSH_FAULT from the environment:
//
//	kill-after=K      SIGKILL nsh right after the K-th kernel change
//	                  returns, before nsh records anything else
//	kill-at=POINT[#N] SIGKILL nsh at the N-th (first) At(POINT): a point
//	                  between two system calls of one change, e.g.
//	                  "netns.linked"
//	fail-at=K         the K-th change fails with EIO instead of being made
//	count=FILE        append a line to FILE per change (how many a run makes)
//
// several of them separated by commas.
package fault

// Enabled reports whether this build injects faults (tag nshfault).
const Enabled = false

// Applying is called by the executor before a change is made; a non-nil
// error is the injected failure the change returns instead.
func Applying(what string) error { return nil }

// Applied is called by the executor right after a change's kernel calls
// return, before anything else.
func Applied() {}

// At marks a point between two system calls of one change.
func At(point string) {}
