// Part of package startup (see startup.go): the wrapper of pthread_create
// (linked with -Wl,--wrap=pthread_create) through which the Go runtime
// creates each of its threads.
//
// The runtime creates its first thread, the one that runs sysmon, from the
// main thread right after it has counted the CPUs and before any other
// thread exists. There the wrapper
//   - restores the main thread's affinity (onecpu.c), which every later
//     thread and process then inherits;
//   - has the new thread set its own timer slack to NSH_SYSMON_SLACK_NS
//     before it runs sysmon.
//
// sysmon sleeps in nanosleep(2), 20 µs at a time while the program is busy
// (doubling only after 50 sleeps without work to do). With the kernel's
// default slack of 50 µs that is a wake-up on a CPU every ~0.1 ms, each a
// context switch and, on an idle virtual CPU, an exit to the hypervisor:
// about 30 over a 3 ms `nsh -c` run, half of all its context switches. With
// a slack of 1 ms the kernel may defer each wake-up by up to that much, so
// such a run sees 2 or 3. The cost is latency in what sysmon does: taking
// a P back from a thread blocked in a system call (the other Ps still run
// goroutines) and preempting a goroutine that ran 10 ms, each up to 1 ms
// later; sysmon's own sleeps grow to 10 ms when it finds nothing to do.
//
// A thread inherits the slack of the thread that creates it, and a process
// that of the thread that forks it, across exec too. sysmon creates
// threads (when it hands a P to a new M), so a thread the wrapper creates
// from sysmon's thread gets the slack the thread started with instead:
// no other thread of nsh, and no process it starts, runs with sysmon's.
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "startup.h"

int __real_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static int first_done;              // the first thread was created
static __thread int is_sysmon;      // the calling thread runs sysmon
static struct {                     // sysmon's start routine, as the runtime gave it
	void *(*fn)(void *);
	void *arg;
} sysmon_start;

// sysmon_entry starts the runtime's first thread: it sets its own timer
// slack (the slack it inherited stays its default, see prctl(2)) and runs
// what the runtime asked for.
static void *sysmon_entry(void *unused) {
	(void)unused;
	is_sysmon = 1;
	prctl(PR_SET_TIMERSLACK, NSH_SYSMON_SLACK_NS, 0, 0, 0);
	return sysmon_start.fn(sysmon_start.arg);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
	if (is_sysmon) {
		// PR_SET_TIMERSLACK with 0 restores the thread's default: the
		// slack it was created with, which the new thread inherits.
		prctl(PR_SET_TIMERSLACK, 0, 0, 0, 0);
		int r = __real_pthread_create(t, attr, fn, arg);
		prctl(PR_SET_TIMERSLACK, NSH_SYSMON_SLACK_NS, 0, 0, 0);
		return r;
	}
	if (!__atomic_load_n(&first_done, __ATOMIC_ACQUIRE) && syscall(SYS_gettid) == getpid()) {
		// The runtime's first thread, from the main thread, while it is
		// the only one: nothing else runs this code at the same time.
		__atomic_store_n(&first_done, 1, __ATOMIC_RELEASE);
		nsh_onecpu_widen_main();
		sysmon_start.fn = fn;
		sysmon_start.arg = arg;
		return __real_pthread_create(t, attr, sysmon_entry, NULL);
	}
	return __real_pthread_create(t, attr, fn, arg);
}
