#ifndef NSH_ONECPU_H
#define NSH_ONECPU_H
#define _GNU_SOURCE
#include <sched.h>

// The affinity nsh started with, and whether the constructor narrowed it.
extern cpu_set_t nsh_onecpu_saved;
extern int nsh_onecpu_narrowed;

#endif
