package interp

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"
)

// DefaultMaxMemory is the memory limit nsh runs scripts with unless
// --max-memory says otherwise: 2 GiB. nsh's own heap for a run of 1,000
// namespaces is about 13 MB, so a script that needs 150 times that has
// almost certainly run away; a fixed figure (rather than a fraction of the
// machine's memory) makes a script pass or fail the same on every machine.
const DefaultMaxMemory = 2 << 30

// MaxCallDepth is go.starlark.net's limit on nested calls (a constant in
// starlark.Function.CallInternal, not settable): a recursion deeper than
// this fails with "Starlark stack overflow". A level costs about 4.5 KB of
// Go stack and heap, so the full depth needs about 450 MB: within the
// default memory limit, and a smaller --max-memory stops it earlier.
const MaxCallDepth = 100_000

// ParseSize reads a memory size as --max-memory takes it: a number of
// bytes with an optional unit (K, M, G, T, P, E, KB, MB, … EB, KiB, MiB,
// … EiB; all powers of 1024, case-insensitive: every unit FormatSize
// prints), or "0"/"none"/"unlimited" for no limit (0).
func ParseSize(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "none", "unlimited", "0":
		return 0, nil
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	// Spaces may stand between the number and its unit, as in "512 MiB";
	// no other white space ("0\rB" was 0, no limit: FuzzParseSize).
	num, unit := t[:i], strings.TrimLeft(t[i:], " ")
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20,
		"g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40, "p": 50, "pb": 50, "pib": 50,
		"e": 60, "eb": 60, "eib": 60}
	sh, ok := shift[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q (want e.g. 512MiB, 2GiB, or none)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (want e.g. 512MiB, 2GiB, or none)", s)
	}
	v := f * float64(uint64(1)<<sh)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if v < 1<<20 && v != 0 {
		return 0, fmt.Errorf("size %q is below 1 MiB, too small to run a script in", s)
	}
	return uint64(v), nil
}

// FormatSize renders n bytes in the largest binary unit that keeps it
// readable: "2 GiB", "256 MiB", "1.5 GiB".
func FormatSize(n uint64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i, f := 0, float64(n)
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", f), "0"), ".") + " " + units[i]
}

// memoryMessage is the reason a run is cancelled with when its heap
// passes the limit.
func memoryMessage(limit uint64) string {
	return fmt.Sprintf("memory limit of %s exceeded (nsh --max-memory)", FormatSize(limit))
}

// # The memory watch
//
// The limit is enforced after each garbage collection rather than by a
// goroutine that polls: a run starts no thread or timer for it. The Go
// runtime is told a limit a little above (debug.SetMemoryLimit), so it
// collects more often as the heap nears it, and a sentinel object with a cleanup
// (runtime.AddCleanup) becomes garbage at once: its cleanup runs after the
// next collection, reads the heap and the goroutine stacks
// (runtime.ReadMemStats: runtime/metrics would cost every start of nsh
// its package initialisation, a fifth of a bare run's instructions),
// cancels every thread of the run if they pass the
// limit, and arms a new sentinel. Starlark code sees the cancellation at
// its next step; the builtins that allocate for all their elements at once
// check the size first (boundedUniverse), so no single step allocates
// more than the limit. A builtin that iterates without end and allocates
// as it goes (list.extend or "".join over a huge range) never takes that
// next step: when a thread still runs at the next collection and the heap
// has grown past 1.25 times the limit, Config.Abort ends the process.

// memWatch is the memory watch of one run.
type memWatch struct {
	r     *Run
	limit uint64
	prev  int64 // the runtime's memory limit before the run
	over  bool  // the last collection found the heap over the limit
}

// gcSentinel is the object whose collection marks the end of a GC cycle.
// It holds a pointer so that it gets an allocation of its own (objects
// without pointers under 16 bytes may share one).
type gcSentinel struct {
	_ *int
	_ [8]byte
}

func (r *Run) watchMemory(limit uint64) {
	w := &memWatch{
		r:     r,
		limit: limit,
	}
	// The runtime's own limit is a quarter above ours: it then collects
	// often enough that the heap is seen passing the limit soon after it
	// does, without collecting back to back (at up to half the CPU) while
	// a script's heap is still just under it.
	w.prev = debug.SetMemoryLimit(int64(limit + limit/4))
	r.memWatch = w
	w.arm()
}

func (w *memWatch) arm() {
	runtime.AddCleanup(new(gcSentinel), (*memWatch).afterGC, w)
}

// stop gives the runtime its memory limit back.
func (w *memWatch) stop() { debug.SetMemoryLimit(w.prev) }

// afterGC runs after each garbage collection while the run lasts.
func (w *memWatch) afterGC() {
	select {
	case <-w.r.done:
		return // the run is over: no new sentinel
	default:
	}
	used := w.used()
	if used > w.limit {
		// The heap as read counts what the sweeper has not freed yet:
		// before cancelling, collect and sweep to the end, so that only
		// what is live counts.
		runtime.GC()
		used = w.used()
	}
	if used > w.limit {
		running := w.r.cancel(memoryMessage(w.limit))
		if w.over && running && used > w.limit+w.limit/4 && w.r.in.cfg.Abort != nil {
			// Cancelled at a previous collection, still running and
			// still growing: a builtin that does not return
			// (list.extend over a huge range) allocates on, and its
			// next allocation may be the machine's last. (A run that
			// saw the cancellation has no running thread: its
			// teardown is not cut short.)
			w.r.in.cfg.Abort(memoryMessage(w.limit) + " inside a builtin that cannot be interrupted")
		}
		w.over = true
	} else {
		w.over = false
	}
	w.arm()
}

// used is the memory the run's values hold: the heap's allocated objects
// (after a collection: the live ones, and garbage not yet swept) and the
// goroutine stacks (deep recursion grows the interpreter's stack, not its
// heap).
func (w *memWatch) used() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// machineMemory is the machine's RAM plus swap: with no memory limit, no
// single allocation may ask for more than this.
var machineMemory = sync.OnceValue(func() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 1 << 46
	}
	return (uint64(si.Totalram) + uint64(si.Totalswap)) * uint64(si.Unit)
})

// elementCost is a lower bound on the bytes a builtin of go.starlark.net's
// universe allocates per element of its argument, before it looks at a
// single element (it sizes its result from Len()): a slot of the result
// list (an interface value, 16 bytes), plus a 2-tuple per element for
// enumerate, plus a hash table entry for set and dict.
var elementCost = map[string]uint64{
	"list":      16,
	"tuple":     16,
	"sorted":    16,
	"reversed":  16,
	"enumerate": 16 + 32,
	"set":       56,
	"dict":      56,
	"zip":       16, // per row, plus 16 per column
}

// boundedUniverse returns the builtins of go.starlark.net's universe that
// allocate room for all the elements of their argument at once, wrapped
// to refuse an argument whose length would need more memory than the run
// may use (or, with no limit, than the machine has) before the original
// runs. Without this, list(range(1<<62)) panics in makeslice, and
// list(range(1<<40)) ends the Go runtime with "out of memory", neither of
// which a script can see as an error. The universe itself is not touched:
// the wrappers shadow its names in nsh's predeclared dict.
func boundedUniverse(limit func() uint64) starlark.StringDict {
	out := starlark.StringDict{}
	for name, cost := range elementCost {
		orig := starlark.Universe[name].(*starlark.Builtin)
		name, cost := name, cost
		out[name] = starlark.NewBuiltin(name, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			checked := args
			if len(args) == 0 {
				for _, kv := range kwargs { // sorted(iterable=...)
					if kv[0] == starlark.String("iterable") {
						checked = starlark.Tuple{kv[1]}
					}
				}
			}
			if err := checkElements(name, cost, checked, limit()); err != nil {
				return nil, err
			}
			return orig.CallInternal(th, args, kwargs)
		})
	}
	return out
}

// checkElements refuses a call of a bounded builtin whose argument is too
// long for the memory limit (0: the machine's memory).
func checkElements(name string, cost uint64, args starlark.Tuple, limit uint64) error {
	if len(args) == 0 {
		return nil
	}
	n := starlark.Len(args[0])
	if name == "zip" {
		// zip makes min(Len) rows of len(args) columns.
		n = -1
		for _, a := range args {
			if l := starlark.Len(a); l < 0 {
				return nil // of unknown length: zip grows as it goes
			} else if n < 0 || l < n {
				n = l
			}
		}
		cost += 16 * uint64(len(args))
	}
	if n <= 0 {
		return nil
	}
	hi, need := bits.Mul64(uint64(n), cost)
	bound, what := limit, "the memory limit of "+FormatSize(limit)+" (nsh --max-memory)"
	if limit == 0 {
		bound, what = machineMemory(), "this machine's memory ("+FormatSize(machineMemory())+" with swap)"
	}
	if hi != 0 || need > bound {
		needs := "over 16 EiB"
		if hi == 0 {
			needs = "at least " + FormatSize(need)
		}
		return fmt.Errorf("%s: %d elements would need %s, beyond %s", name, n, needs, what)
	}
	return nil
}

// safeBuiltin wraps a builtin so that a Go panic in it becomes an error of
// the call, at the script line that made it, instead of ending nsh.
func safeBuiltin(b *starlark.Builtin) *starlark.Builtin {
	return starlark.NewBuiltin(b.Name(), func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (v starlark.Value, err error) {
		defer func() {
			if p := recover(); p != nil {
				v, err = nil, fmt.Errorf("%s: %w", b.Name(), internalError(p))
			}
		}()
		return b.CallInternal(th, args, kwargs)
	})
}

// internalError is the error a recovered Go panic becomes.
func internalError(p any) error {
	return fmt.Errorf("internal error in nsh (please report it): %v", p)
}

// stepMessage is the reason a thread is cancelled with at the step limit.
func stepMessage(max uint64) string {
	return fmt.Sprintf("step limit of %d exceeded (nsh --max-steps)", max)
}

// cancel cancels every running thread of the run for reason (the memory
// limit), as a signal would but without ending the run: the REPL goes on.
// It reports whether any thread was running.
func (r *Run) cancel(reason string) bool {
	r.mu.Lock()
	for th := range r.threads {
		th.Cancel(reason)
	}
	running := len(r.threads) > 0
	r.mu.Unlock()
	r.limitHit.Store(true)
	return running
}
