// The C half of package keeper (see keeper.go): a constructor that runs
// before the Go runtime starts, while nsh is still single-threaded, in two
// cases.
//
// _NSH_KEEPER=FD: this process is a rootless lab's keeper, born (clone with
// CLONE_NEWUSER|CLONE_NEWNS) in the lab's new user and mount namespaces. It
// holds them and does nothing else: it waits on FD, a pipe from nsh up,
// for the byte 'k' (the lab is up: keep it) and then pauses until killed
// (nsh down); end of file without it (nsh up failed or died) ends it, and
// the lab's namespaces with it. It never starts the Go runtime.
//
// _NSH_LAB_JOIN=FD:PID:START: this nsh works in a rootless lab. FD is a
// pidfd of the lab's keeper: the process joins its user and mount
// namespaces in one setns(2), which a multi-threaded process cannot do,
// goes back to its working directory (setns into a mount namespace moves
// it to that namespace's root), and goes on to main as root of the lab's
// user namespace.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "keeper.h"

int nsh_keeper_joined;

static void keep(int fd) {
	prctl(PR_SET_NAME, "nsh-keeper");
	// It is in a session of its own, without a terminal; a signal sent
	// to a process group it is not in cannot reach it. SIGTERM and
	// SIGKILL end it, and the lab with it.
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	char b = 0;
	ssize_t n;
	do
		n = read(fd, &b, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || b != 'k')
		_exit(0);
	close(fd);
	for (;;)
		pause();
}

// Priority 102: after the reaper's (101), before internal/startup's, which
// only prepare the Go runtime's start.
__attribute__((constructor(102))) static void nsh_keeper_main(void) {
	const char *k = getenv("_NSH_KEEPER");
	if (k) {
		int fd = atoi(k);
		unsetenv("_NSH_KEEPER");
		keep(fd);
	}
	const char *j = getenv("_NSH_LAB_JOIN");
	if (!j)
		return;
	int fd = atoi(j);
	const char *colon = strchr(j, ':');
	long pid = colon ? strtol(colon + 1, NULL, 10) : 0;
	char cwd[PATH_MAX];
	int have = getcwd(cwd, sizeof cwd) != NULL;
	if (setns(fd, CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		fprintf(stderr, "nsh: joining the user and mount namespaces of the lab's keeper (pid %ld): setns: %s\n",
			pid, strerror(errno));
		_exit(1);
	}
	close(fd);
	if (have && chdir(cwd) < 0) {
		fprintf(stderr, "nsh: in the lab's mount namespace: chdir %s: %s\n", cwd, strerror(errno));
		_exit(1);
	}
	nsh_keeper_joined = 1;
}
