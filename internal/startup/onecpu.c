// Part of package startup (see startup.go): a constructor that narrows
// the process's CPU affinity before the Go runtime counts its CPUs; the
// wrapper of pthread_create (threads.c) widens it again before the
// runtime's first thread is created, so that no thread but the main one
// ever has it narrow.
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "startup.h"

cpu_set_t nsh_onecpu_saved;
int nsh_onecpu_state;

__attribute__((constructor)) static void nsh_onecpu_narrow(void) {
	// A GOMAXPROCS the user set is the runtime's to read; nsh-init (see
	// internal/spawn) never starts the runtime.
	if (getenv("GOMAXPROCS") || getenv("_NSH_INIT_FD"))
		return;
	if (sched_getaffinity(0, sizeof nsh_onecpu_saved, &nsh_onecpu_saved) != 0)
		return; // more CPUs than a cpu_set_t holds: leave it
	if (CPU_COUNT(&nsh_onecpu_saved) < 2)
		return;
	int cpu = sched_getcpu();
	if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &nsh_onecpu_saved))
		return;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof one, &one) == 0)
		nsh_onecpu_state = NSH_ONECPU_NARROW;
}

// nsh_onecpu_widen_main gives the main thread the affinity nsh started
// with back, if the constructor narrowed it.
void nsh_onecpu_widen_main(void) {
	if (__atomic_load_n(&nsh_onecpu_state, __ATOMIC_ACQUIRE) == NSH_ONECPU_NARROW &&
	    sched_setaffinity(0, sizeof nsh_onecpu_saved, &nsh_onecpu_saved) == 0)
		__atomic_store_n(&nsh_onecpu_state, NSH_ONECPU_WIDENED, __ATOMIC_RELEASE);
}
