// Part of package startup (see startup.go): a constructor that notes
// whether SIGQUIT and SIGTERM were ignored when nsh started, before the Go
// runtime installs its own handlers. The runtime keeps an inherited
// SIG_IGN of SIGHUP and SIGINT itself (signal.Ignored reports them); SIGQUIT
// and SIGTERM it takes over, so nohup-style and background-job
// dispositions of those would be lost.
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>

#include "startup.h"

unsigned long nsh_sigign_mask;

__attribute__((constructor)) static void nsh_sigign_note(void) {
	static const int sigs[] = {SIGQUIT, SIGTERM};
	if (getenv("_NSH_INIT_FD"))
		return; // nsh-init (internal/spawn): no Go runtime starts
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct sigaction sa;
		if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			nsh_sigign_mask |= 1UL << sigs[i];
	}
}
