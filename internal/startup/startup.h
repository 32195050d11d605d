#ifndef NSH_STARTUP_H
#define NSH_STARTUP_H
#define _GNU_SOURCE
#include <sched.h>

enum {
	NSH_ONECPU_UNTOUCHED = 0, // the affinity is as nsh was started with
	NSH_ONECPU_NARROW = 1,    // the main thread runs on one CPU
	NSH_ONECPU_WIDENED = 2,   // narrowed for the runtime's start, then restored
};

// The affinity nsh started with, and what became of it (onecpu.c).
extern cpu_set_t nsh_onecpu_saved;
extern int nsh_onecpu_state;
void nsh_onecpu_widen_main(void);

// The signals (bit 1<<N for signal N) among SIGQUIT and
// SIGTERM that were ignored when nsh started (sigign.c).
extern unsigned long nsh_sigign_mask;

// The timer slack of the thread that runs the runtime's sysmon (threads.c).
#define NSH_SYSMON_SLACK_NS 1000000

#endif
