// Package startup makes the start of nsh's Go runtime cheaper. It holds C
// that runs before the runtime (constructors) and the Go that finishes its
// work; only cmd/nsh imports it, so test binaries start as usual. Measured
// with bench/whole against the binary without it, the one-CPU start and the
// malloc groups together took about 0.3 ms off a 3.5 ms
// `nsh -c 'clone(...)'` on this 2-CPU virtual machine, and sysmon's timer
// slack 0.25-0.35 ms more (0.3-0.45 ms off `nsh -c pass`).
//
// # One CPU for the runtime's start (onecpu.c)
//
// The runtime sizes GOMAXPROCS from the CPUs it may run on. With more than
// one P, each goroutine the runtime starts during its own start (the
// background sweeper and scavenger) finds an idle P and gets an OS thread
// created for it, for nothing to do.
//
// A constructor narrows the affinity to the CPU it runs on, so the runtime's
// CPU count (osinit) is 1. The package links with pthread_create wrapped:
// the runtime creates its first thread (sysmon) from the main thread right
// after that count, and the wrapper restores the main thread's affinity
// first, so every thread inherits the affinity nsh was started with and so
// do the processes nsh starts. init then sets GOMAXPROCS to the runtime's
// default (runtime.SetDefaultGOMAXPROCS: a stop-the-world with one P, 40-70
// µs). Staying at one P would cost as much, later: each blocking system call
// longer than 20 µs then makes sysmon hand the P to a spinning thread. Doing
// it from a goroutine, which with one P runs when the interpreter first
// blocks (typically in the wait for its first process), measured slower:
// its stop-the-world and the thread it wakes then compete with that process.
//
// What stays from the one-CPU start: runtime.NumCPU reports 1, the
// runtime's own locks and sync.Mutex do not spin before they sleep, and a
// GC's stop-the-world phases run on one thread. None of this showed in
// nsh's benchmarks (bench/run: the clone() loops, the chains, the scale
// run). Nothing is narrowed when GOMAXPROCS is set in the environment (it is
// the runtime's to read), for nsh-init (internal/spawn), or when the
// process may run on one CPU only.
//
// # musl's allocator (mallocgroups.c)
//
// See mallocgroups.c: a few bytes held for good save an munmap, and so a
// TLB shootdown on the other CPUs, at every thread the runtime creates.
//
// # Signals ignored at start (sigign.c)
//
// A signal ignored when nsh starts stays ignored, as in sh: nohup ignores
// SIGHUP, and a non-interactive shell starts background jobs with SIGINT
// and SIGQUIT ignored. The Go runtime keeps an inherited SIG_IGN of SIGHUP
// and SIGINT (signal.Ignored reports it), but installs its own handler for
// SIGQUIT and SIGTERM whatever their disposition was. A constructor notes
// the four dispositions before the runtime starts, and init gives the
// ones the runtime took over SIG_IGN back (signal.Ignore), so that from
// then on signal.Ignored tells the truth for all four and the processes
// nsh starts inherit them ignored. Between the runtime's start and this
// init (well under a millisecond) a SIGQUIT or SIGTERM still has the
// runtime's default action.
//
// # sysmon's timer slack (threads.c)
//
// The runtime's sysmon thread wakes every 20 µs while the program is busy;
// with the kernel's default timer slack that is ~30 wake-ups, and half of
// all context switches, in a 3 ms `nsh -c` run. The thread gets a timer
// slack of 1 ms, which the kernel uses to defer those wake-ups (2 or 3 are
// left). The wrapper of pthread_create sets it in sysmon's thread only, and
// threads sysmon creates get the slack of the others, so no other thread
// of nsh and no process it starts inherits it. threads.c says what it
// costs: up to 1 ms more before sysmon takes a P from a thread blocked in
// a system call or preempts a goroutine that ran for 10 ms.
package startup

/*
#cgo LDFLAGS: -Wl,--wrap=pthread_create
#include "startup.h"
*/
import "C"

import (
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// What became of the affinity (nsh_onecpu_state).
const (
	stateUntouched = C.NSH_ONECPU_UNTOUCHED
	stateNarrow    = C.NSH_ONECPU_NARROW
	stateWidened   = C.NSH_ONECPU_WIDENED
)

// SysmonSlackNS is the timer slack, in nanoseconds, of the thread that
// runs the runtime's sysmon in a binary that links this package
// (threads.c); every other thread keeps the slack it would have had.
const SysmonSlackNS = C.NSH_SYSMON_SLACK_NS

func startState() int { return int(C.nsh_onecpu_state) }

// savedSet is the affinity the process started with.
func savedSet() *unix.CPUSet { return (*unix.CPUSet)(unsafe.Pointer(&C.nsh_onecpu_saved)) }

func init() {
	keepIgnored()
	switch startState() {
	case stateUntouched:
		return
	case stateNarrow:
		// The wrapper did not restore the affinity (its system call
		// failed): threads other than the main one have it narrow too.
		widen()
	}
	runtime.SetDefaultGOMAXPROCS()
}

// keepIgnored ignores again the signals that were ignored when nsh
// started (sigign.c) and that the Go runtime has taken over since.
func keepIgnored() {
	mask := uint64(C.nsh_sigign_mask)
	if mask == 0 {
		return
	}
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGTERM} {
		if mask&(1<<uint(sig)) != 0 && !signal.Ignored(sig) {
			signal.Ignore(sig)
		}
	}
}

// widen sets the affinity saved by the constructor on every thread of the
// process, until a pass over /proc/self/task finds no thread it has not
// already set.
func widen() {
	saved := savedSet()
	// A thread the runtime creates from a thread not yet set inherits the
	// narrow affinity, so passes go on until one finds nothing new.
	done := map[int]bool{}
	for {
		tids, err := threads()
		if err != nil {
			// No /proc: at least the calling thread, which runs the
			// interpreter and starts its processes, gets its CPUs back.
			unix.SchedSetaffinity(0, saved)
			return
		}
		fresh := false
		for _, tid := range tids {
			if !done[tid] {
				done[tid], fresh = true, true
				unix.SchedSetaffinity(tid, saved)
			}
		}
		if !fresh {
			return
		}
	}
}

// threads lists the thread ids of the process.
func threads() ([]int, error) {
	f, err := os.Open("/proc/self/task")
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(names))
	for _, n := range names {
		if tid, err := strconv.Atoi(n); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
