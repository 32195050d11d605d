// The constructor of package onecpu: it runs before the Go runtime starts
// and narrows the process's CPU affinity to the CPU it runs on, so the
// runtime counts one CPU and starts with GOMAXPROCS=1. See onecpu.go.
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "onecpu.h"

cpu_set_t nsh_onecpu_saved;
int nsh_onecpu_narrowed;

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
		nsh_onecpu_narrowed = 1;
}
