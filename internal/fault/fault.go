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
//	term-after=K      SIGTERM nsh right after the K-th kernel change
//	                  returns (nsh goes on: the signal cancels the run,
//	                  which tears down and exits 143)
//	fail-at=K         the K-th change fails with EIO instead of being made
//	count=FILE        append a line to FILE per change (how many a run makes)
//	undo=FILE         append "undo N" to FILE when the undo of the N-th
//	                  change begins, and "term K" when term-after fires
//	with-reaper       a kill kills nsh's reaper first, as the OOM killer may
//
// several of them separated by commas.
package fault

// Enabled reports whether this build injects faults (tag nshfault).
const Enabled = false

// Applying is called by the executor before a change is made. It returns
// the change's number in the run (from 1; 0 in a normal build) and, if not
// nil, the injected failure the change returns instead.
func Applying(what string) (int64, error) { return 0, nil }

// Applied is called by the executor right after a change's kernel calls
// return, before anything else.
func Applied() {}

// Undoing is called by the executor when the undo of the change Applying
// numbered n begins.
func Undoing(n int64) {}

// At marks a point between two system calls of one change.
func At(point string) {}
