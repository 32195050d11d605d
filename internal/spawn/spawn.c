// The child side of nsh's spawn helper. nsh_spawn is called by Go on its
// spawner thread; the child it clones is a single-threaded copy of that
// thread, so it may do what a Go thread cannot (setns into user and time
// namespaces, unshare a user namespace, write time offsets before any
// process entered the time namespace) and then execve. It uses raw system
// calls only: no malloc, no locks, nothing of the Go runtime.
//
// The constructor at the end is the other half: nsh re-executed as the init
// of a new PID namespace (marker _NSH_INIT_FD) never starts the Go runtime;
// it reaps orphans until nsh closes its end of the status socket.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <pthread.h>
#include <limits.h>

#include "spawn.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define NSH_CLONE_INTO_CGROUP 0x200000000ULL

// struct clone_args of linux/sched.h, up to cgroup (CLONE_ARGS_SIZE_VER2),
// which a C library's headers may lack.
struct nsh_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

static void send_msg(int sock, int type, int step, int arg, int err) {
	struct nsh_msg m = {type, step, arg, err};
	while (write(sock, &m, sizeof m) < 0 && errno == EINTR)
		;
}

static void __attribute__((noreturn)) fail(const struct nsh_cfg *c, int step, int arg, int err) {
	send_msg(c->sock, NSH_MSG_ERROR, step, arg, err);
	_exit(127);
}

// wait_go blocks until the parent says 'G' (maps written, or pid noted).
static void wait_go(const struct nsh_cfg *c, int step) {
	struct nsh_msg m;
	for (;;) {
		ssize_t n = read(c->sock, &m, sizeof m);
		if (n == (ssize_t)sizeof m && m.type == NSH_MSG_GO)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		// The parent gave up (closed the socket) or wrote garbage.
		fail(c, step, 0, n < 0 ? errno : ECANCELED);
	}
}

// write_at writes buf to file under dir (AT_FDCWD: the working directory)
// in one write(2); it returns 0 or an errno.
static int write_at(int dir, const char *file, const char *buf, size_t len) {
	int fd = openat(dir, file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = write(fd, buf, len);
	int err = n < 0 ? errno : (size_t)n != len ? EIO : 0;
	close(fd);
	return err;
}

// fmt_ll appends the decimal form of v to p and returns the new end.
static char *fmt_ll(char *p, long long v) {
	char tmp[24];
	int i = 0;
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
	if (v < 0)
		*p++ = '-';
	do {
		tmp[i++] = '0' + u % 10;
		u /= 10;
	} while (u);
	while (i)
		*p++ = tmp[--i];
	return p;
}

static char *fmt_str(char *p, const char *s) {
	while (*s)
		*p++ = *s++;
	return p;
}

static int write_time_offsets(const struct nsh_cfg *c) {
	char buf[160], *p = buf;
	p = fmt_str(p, "monotonic ");
	p = fmt_ll(p, c->mono_sec);
	*p++ = ' ';
	p = fmt_ll(p, c->mono_nsec);
	p = fmt_str(p, "\nboottime ");
	p = fmt_ll(p, c->boot_sec);
	*p++ = ' ';
	p = fmt_ll(p, c->boot_nsec);
	*p++ = '\n';
	return write_at(AT_FDCWD, "/proc/self/timens_offsets", buf, p - buf);
}

static void arm_pdeathsig(const struct nsh_cfg *c, int in_new_pidns) {
	if (!c->pdeathsig)
		return;
	if (prctl(PR_SET_PDEATHSIG, c->pdeathsig) < 0)
		fail(c, NSH_STEP_PDEATHSIG, 0, errno);
	// The parent may have died before the signal was armed. In another
	// PID namespace than nsh's the parent is outside it and getppid() is 0.
	(void)in_new_pidns;
	pid_t pp = getppid();
	if (pp != c->parent_pid && pp != 0)
		_exit(1);
}

// The signal calls below are raw system calls on the kernel's own
// structures: a C library may refuse the signals it keeps for itself
// (musl: 32-34) or keep them unblocked, and nsh's handlers must not run in
// a child that may share nsh's address space.
struct k_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

// reset_signals gives every signal nsh handles its default action, as
// execve would, but before the child unblocks signals (a handler of Go's
// must never run in the child): one system call per signal, which sets
// the default and reads the old action, and a second one only to put
// back an ignored signal, which stays ignored as across execve.
static void reset_signals(void) {
	struct k_sigaction dfl;
	memset(&dfl, 0, sizeof dfl); // SIG_DFL
	for (int s = 1; s < 65; s++) {
		struct k_sigaction old;
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, s, &dfl, &old, sizeof old.mask) < 0)
			continue;
		if (old.handler == (void *)SIG_IGN)
			syscall(SYS_rt_sigaction, s, &old, NULL, sizeof old.mask);
	}
}

// set_sigmask sets the calling thread's blocked signals to mask and
// stores the previous mask in old (if not NULL).
static void set_sigmask(unsigned long mask, unsigned long *old) {
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, old, sizeof mask);
}

static void unblock_signals(void) { set_sigmask(0, NULL); }

// exec_path runs argv[0], searching PATH when it has no '/', as execvpe
// does, and returns the errno of the most telling failure.
static int exec_path(const struct nsh_cfg *c) {
	const char *file = c->argv[0];
	if (strchr(file, '/')) {
		execve(file, c->argv, c->envp);
		return errno;
	}
	const char *path = c->path && *c->path ? c->path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	size_t flen = strlen(file);
	int err = ENOENT, seen_eacces = 0;
	char buf[PATH_MAX];
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t dlen = end ? (size_t)(end - p) : strlen(p);
		if (dlen + flen + 2 <= sizeof buf) {
			char *q = buf;
			if (dlen == 0)
				*q++ = '.';
			memcpy(q, p, dlen);
			q += dlen;
			*q++ = '/';
			memcpy(q, file, flen + 1);
			execve(buf, c->argv, c->envp);
			switch (errno) {
			case EACCES:
				// A file that is there but may not be run, not a
				// directory of PATH we may not search.
				if (access(buf, F_OK) == 0)
					seen_eacces = 1;
				break;
			case ENOENT:
			case ENOTDIR:
			case ESTALE:
			case ELOOP:
			case ENAMETOOLONG:
				break;
			default:
				return errno;
			}
		}
		if (!end)
			break;
		p = end;
	}
	return seen_eacces ? EACCES : err;
}

// relay is the middle process between nsh and a child that had to be
// forked after unshare(CLONE_NEWPID): it reports the child's pid, then
// mirrors its exit (exec mode) or leaves it to its own life (init mode).
static void __attribute__((noreturn)) relay(const struct nsh_cfg *c, pid_t child) {
	send_msg(c->sock, NSH_MSG_FORKED, 0, child, 0);
	wait_go(c, NSH_STEP_FORK);
	close(c->sock);
	if (c->mode != NSH_EXEC)
		_exit(0);
	int status;
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR)
			_exit(127);
	}
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	int sig = WTERMSIG(status);
	signal(sig, SIG_DFL);
	unblock_signals();
	kill(getpid(), sig);
	_exit(128 + sig);
}


// write_maps is the maps mode: a helper in the parent user namespace of a
// new one writes its maps, as the kernel wants the writer there.
static void __attribute__((noreturn)) write_maps(const struct nsh_cfg *c) {
	const char *files[3] = {"setgroups", "uid_map", "gid_map"};
	const char *data[3] = {c->setgroups, c->uid_map, c->gid_map};
	for (int i = 0; i < 3; i++) {
		if (!data[i])
			continue;
		char buf[32], *p = buf;
		const char *d = data[i];
		if (!*d) {
			p = fmt_str(p, "0 ");
			p = fmt_ll(p, i == 1 ? (long long)geteuid() : (long long)getegid());
			p = fmt_str(p, " 1\n");
			*p = 0;
			d = buf;
		}
		int err = write_at(c->maps_dir, files[i], d, strlen(d));
		if (err)
			fail(c, NSH_STEP_WRITE_MAPS, i, err);
	}
	_exit(0);
}

// set_identity gives the child the ids it runs as, the last step before
// the exec, when every step that needs privilege is done and its user
// namespace's maps are in place: supplementary groups, then gid, then uid
// (each later call needs the privilege the earlier ones keep), as runc and
// nsenter do. Raw system calls: the C library's wrappers would signal every
// thread of nsh (a child sharing nsh's address space is one of them in its
// eyes) to change their ids too.
//
// In a user namespace not nsh's own (ident_default) an id not given becomes
// 0 when 0 is mapped there; otherwise (EINVAL: unmapped) it stays the one
// inherited, which the kernel shows as the overflow id 65534 unless the
// map covers it. setgroups(2) fails with EPERM where the namespace denies
// it ("deny" in /proc/PID/setgroups) or has no gid_map yet: the groups
// inherited then stay, unless groups= asked for some.
static void set_identity(const struct nsh_cfg *c) {
	if (!c->ident)
		return;
	if (syscall(SYS_setgroups, c->ngroups, c->groups) < 0 && (c->groups_given || errno != EPERM))
		fail(c, NSH_STEP_SETGROUPS, 0, errno);
	long long gid = c->gid < 0 && c->ident_default ? 0 : c->gid;
	if (gid >= 0 && syscall(SYS_setresgid, gid, gid, gid) < 0 && (c->gid >= 0 || errno != EINVAL))
		fail(c, NSH_STEP_SETGID, 0, errno);
	long long uid = c->uid < 0 && c->ident_default ? 0 : c->uid;
	if (uid >= 0 && syscall(SYS_setresuid, uid, uid, uid) < 0 && (c->uid >= 0 || errno != EINVAL))
		fail(c, NSH_STEP_SETUID, 0, errno);
}

// lo_up brings up the loopback of the calling thread's network namespace,
// as `ip link set lo up`; it returns 0 or an errno.
static int lo_up(void) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", 3);
	int err = 0;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		err = errno;
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			err = errno;
	}
	close(s);
	return err;
}

// The host's device nodes bound into the minimal /dev (bubblewrap's --dev).
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
static const char *const dev_links[][2] = {
	{"dev/fd", "/proc/self/fd"},
	{"dev/stdin", "/proc/self/fd/0"},
	{"dev/stdout", "/proc/self/fd/1"},
	{"dev/stderr", "/proc/self/fd/2"},
};

// empty_dir reports whether path is a directory with no entries (what a
// /dev left by the caller, e.g. a bind of the host's, is not).
static int empty_dir(const char *path) {
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[512] __attribute__((aligned(8)));
	long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
	int empty = n >= 0;
	for (long off = 0; empty && off < n;) {
		// struct linux_dirent64: d_ino, d_off, d_reclen, d_type, d_name
		unsigned short reclen;
		memcpy(&reclen, buf + off + 16, sizeof reclen);
		const char *name = buf + off + 19;
		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
			empty = 0;
		off += reclen;
	}
	close(fd);
	return empty;
}

// real_dir checks that name, one component under the current directory,
// is a directory and not a symlink to one, and returns it opened (O_PATH),
// or -errno: ELOOP for a symlink, ENOTDIR for anything else. A new root
// whose proc or dev is a symlink is refused: the mount would go where the
// link leads, out of the root (as runc refuses proc and sysfs on one).
static int real_dir(const char *name) {
	int fd = openat(AT_FDCWD, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int err = 0;
	if (fstat(fd, &st) < 0)
		err = errno;
	else if (S_ISLNK(st.st_mode))
		err = ELOOP;
	else if (!S_ISDIR(st.st_mode))
		err = ENOTDIR;
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}

// setup_dev makes the minimal /dev of a new root, as bubblewrap's --dev
// does, in the directory "dev" of the current directory (the new root,
// before pivot_root, while the host's /dev is still visible): a tmpfs, the
// host's null, zero, full, random, urandom and tty bound onto empty files
// (binds, not mknod, so it works in a user namespace), a new devpts
// instance on pts with ptmx a symlink to pts/ptmx, a tmpfs on shm, and
// the symlinks fd, stdin, stdout and stderr into /proc/self/fd.
static void setup_dev(const struct nsh_cfg *c) {
	int dfd = real_dir("dev");
	if (dfd < 0)
		fail(c, NSH_STEP_DEV, NSH_DEV_TMPFS, -dfd);
	close(dfd);
	if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=0755") < 0)
		fail(c, NSH_STEP_DEV, NSH_DEV_TMPFS, errno);
	for (int i = 0; i < (int)(sizeof dev_nodes / sizeof dev_nodes[0]); i++) {
		char src[32] = "/dev/", dst[32] = "dev/";
		strcat(src, dev_nodes[i]);
		strcat(dst, dev_nodes[i]);
		int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0)
			fail(c, NSH_STEP_DEV, NSH_DEV_NODES + i, errno);
		close(fd);
		if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
			fail(c, NSH_STEP_DEV, NSH_DEV_NODES + i, errno);
	}
	if (mkdir("dev/pts", 0755) < 0 ||
	    mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
		fail(c, NSH_STEP_DEV, NSH_DEV_PTS, errno);
	if (symlink("pts/ptmx", "dev/ptmx") < 0)
		fail(c, NSH_STEP_DEV, NSH_DEV_PTMX, errno);
	if (mkdir("dev/shm", 01777) < 0 ||
	    mount("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		fail(c, NSH_STEP_DEV, NSH_DEV_SHM, errno);
	for (int i = 0; i < (int)(sizeof dev_links / sizeof dev_links[0]); i++) {
		if (symlink(dev_links[i][1], dev_links[i][0]) < 0)
			fail(c, NSH_STEP_DEV, NSH_DEV_LINKS + i, errno);
	}
}

// child runs in the new process until its exec. join_cg: it was not born
// in c->cgroup_fd's cgroup (no clone3) and moves there first.
static void __attribute__((noreturn)) child(const struct nsh_cfg *c, int join_cg) {
	int newpid = (c->clone_flags & CLONE_NEWPID) != 0;
	close(c->psock);
	if (join_cg) {
		int fd = openat(c->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			fail(c, NSH_STEP_CGROUP, 0, errno);
		close(fd);
	}
	reset_signals();
	arm_pdeathsig(c, newpid);

	for (int i = 0; i < c->nsetns; i++) {
		if (setns(c->setns_fd[i], c->setns_type[i]) < 0)
			fail(c, NSH_STEP_SETNS, i, errno);
	}
	if (c->mode == NSH_MAPS)
		write_maps(c);
	if (c->unshare_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			fail(c, NSH_STEP_UNSHARE_USER, 0, errno);
	}
	if ((c->unshare_flags | c->clone_flags) & CLONE_NEWUSER) {
		send_msg(c->sock, NSH_MSG_MAPS, 0, 0, 0);
		wait_go(c, NSH_STEP_MAPS);
	}
	int rest = c->unshare_flags & ~CLONE_NEWUSER;
	if (rest && unshare(rest) < 0)
		fail(c, NSH_STEP_UNSHARE, rest, errno);
	if (c->time_offsets) {
		int err = write_time_offsets(c);
		if (err)
			fail(c, NSH_STEP_TIMENS, 0, err);
	}
	if (rest & CLONE_NEWPID) {
		// A PID namespace applies to children only: fork its first process.
		long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		if (pid < 0)
			fail(c, NSH_STEP_FORK, 0, errno);
		if (pid > 0)
			relay(c, pid);
		newpid = 1;
	}
	int newmnt = ((c->unshare_flags | c->clone_flags) & CLONE_NEWNS) != 0;
	if (newmnt && c->propagation) {
		if (mount("none", "/", NULL, MS_REC | c->propagation, NULL) < 0)
			fail(c, NSH_STEP_PROPAGATION, 0, errno);
	}
	if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
		fail(c, NSH_STEP_HOSTNAME, 0, errno);
	if (c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0)
		fail(c, NSH_STEP_DOMAINNAME, 0, errno);
	if (c->lo_up && ((c->unshare_flags | c->clone_flags) & CLONE_NEWNET)) {
		int err = lo_up();
		if (err)
			fail(c, NSH_STEP_LO, 0, err);
	}
	if (c->mount_proc) {
		const char *target = "/proc";
		if (c->root) {
			// Mounted on the directory opened without following a
			// symlink, as the working directory: "." is that very one.
			if (chdir(c->root) < 0)
				fail(c, NSH_STEP_CHDIR, 0, errno);
			int pfd = real_dir("proc");
			if (pfd < 0)
				fail(c, NSH_STEP_MOUNT_PROC, 1, -pfd);
			if (fchdir(pfd) < 0)
				fail(c, NSH_STEP_MOUNT_PROC, 1, errno);
			close(pfd);
			target = ".";
		}
		if (mount("none", target, NULL, MS_PRIVATE | MS_REC, NULL) < 0 && errno != EINVAL)
			fail(c, NSH_STEP_PROC_PRIVATE, 0, errno);
		if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			fail(c, NSH_STEP_MOUNT_PROC, 0, errno);
	}
	if (c->root) {
		if (mount(c->root, c->root, NULL, MS_BIND | MS_REC, NULL) < 0)
			fail(c, NSH_STEP_ROOT_BIND, 0, errno);
		if (chdir(c->root) < 0)
			fail(c, NSH_STEP_CHDIR, 0, errno);
		if (c->dev == NSH_DEV_ON || (c->dev == NSH_DEV_IF_DIR && empty_dir("dev")))
			setup_dev(c);
		// pivot_root(".", "."): the old root ends up stacked under the new
		// one at "/", and is detached at once.
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			fail(c, NSH_STEP_PIVOT, 0, errno);
		if (umount2(".", MNT_DETACH) < 0)
			fail(c, NSH_STEP_PIVOT, 1, errno);
		if (chdir("/") < 0)
			fail(c, NSH_STEP_CHDIR, 0, errno);
	}
	if (c->cwd && chdir(c->cwd) < 0)
		fail(c, NSH_STEP_CHDIR, 1, errno);

	if (c->mode == NSH_HOLD) {
		// Hold nothing of nsh's but the status socket, so no pipe of
		// another child stays open because of us.
		if (c->sock > 3)
			syscall(SYS_close_range, 3, c->sock - 1, 0);
		syscall(SYS_close_range, c->sock + 1, ~0U, 0);
		send_msg(c->sock, NSH_MSG_READY, 0, 0, 0);
		char b[sizeof(struct nsh_msg)];
		for (;;) {
			ssize_t n = read(c->sock, b, sizeof b);
			if (n == 0 || (n < 0 && errno != EINTR))
				_exit(0);
		}
	}

	// Standard descriptors: dup to high numbers first so that a source
	// that is itself 0, 1 or 2 is not overwritten before it is used.
	int tmp[3];
	for (int i = 0; i < 3; i++) {
		tmp[i] = -1;
		if (c->fd[i] >= 0 && (tmp[i] = fcntl(c->fd[i], F_DUPFD_CLOEXEC, 10)) < 0)
			fail(c, NSH_STEP_STDIO, i, errno);
	}
	for (int i = 0; i < 3; i++) {
		if (tmp[i] >= 0 && dup2(tmp[i], i) < 0)
			fail(c, NSH_STEP_STDIO, i, errno);
	}
	if (c->setsid && setsid() < 0)
		fail(c, NSH_STEP_SETSID, 0, errno);
	if (c->foreground) {
		// SIGTTOU is still blocked here, so a background child may do it.
		if (setpgid(0, 0) < 0)
			fail(c, NSH_STEP_FOREGROUND, 0, errno);
		if (tcsetpgrp(c->tty, getpid()) < 0)
			fail(c, NSH_STEP_FOREGROUND, 1, errno);
	}
	if (c->mode == NSH_EXEC)
		set_identity(c);
	// Credential changes (setns or unshare of a user namespace, new ids)
	// cleared the parent-death signal: arm it again.
	arm_pdeathsig(c, newpid);

	if (c->mode == NSH_INIT) {
		// The status socket becomes fd 3 of nsh-init, inherited across
		// the exec; the binary's descriptor must not be in its way.
		int exe = c->exe_fd;
		if (exe == 3 && (exe = fcntl(exe, F_DUPFD_CLOEXEC, 10)) < 0)
			fail(c, NSH_STEP_EXEC, 0, errno);
		if (c->sock == 3) {
			if (fcntl(3, F_SETFD, 0) < 0)
				fail(c, NSH_STEP_EXEC, 0, errno);
		} else if (dup2(c->sock, 3) < 0) {
			fail(c, NSH_STEP_EXEC, 0, errno);
		}
		char *const argv[] = {"nsh-init", NULL};
		char *const envp[] = {"_NSH_INIT_FD=3", NULL};
		syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
		fail(c, NSH_STEP_EXEC, 0, errno);
	}
	unblock_signals();
	int err = exec_path(c);
	fail(c, NSH_STEP_EXEC, 0, err);
}

static int child_vm(void *arg) {
	child((const struct nsh_cfg *)arg, 0);
}

// A child may share nsh's address space until its exec (CLONE_VM, as
// posix_spawn does), which saves copying the page tables of the Go heap
// and the copy-on-write faults after, when it does not need to be
// single-threaded in the kernel's eyes: it must not join a user or time
// namespace or unshare a user namespace (a user namespace created by
// clone() itself is fine), and it must not fork (a relay after
// unshare(CLONE_NEWPID) would copy nsh's address space anyway).
// A child born in a cgroup (clone3 CLONE_INTO_CGROUP, see nsh_spawn) does
// not share it either.
int nsh_can_share_vm(const struct nsh_cfg *c) {
	return c->mode == NSH_EXEC && c->nsetns == 0 && !(c->unshare_flags & (CLONE_NEWUSER | CLONE_NEWPID)) && c->cgroup_fd < 0;
}

// The parent of a vfork-style child is suspended until the child execs or
// exits, so it cannot write id maps: a child that waits for them shares the
// address space without CLONE_VFORK, on a stack the caller frees once the
// child has execed (end of file on the status socket) or been reaped.
static int needs_parent(const struct nsh_cfg *c) {
	return (c->clone_flags & CLONE_NEWUSER) != 0;
}

int nsh_spawn(const struct nsh_cfg *c, void *stack, int *pidfd) {
	unsigned long old;
	set_sigmask(~0UL, &old);
	int fd = -1;
	long pid;
	int err = 0;
	if (stack) {
		unsigned long flags = c->clone_flags | CLONE_VM | CLONE_PIDFD | SIGCHLD;
		if (!needs_parent(c))
			flags |= CLONE_VFORK;
		pid = clone(child_vm, (char *)stack + NSH_STACK, flags, (void *)c, &fd, NULL, NULL);
		err = errno;
	} else if (c->cgroup_fd >= 0) {
		// Born in the cgroup: moving a process there later (a write to
		// cgroup.procs) costs the writer a full RCU grace period, 5 to
		// 20 ms here; clone3 puts it there for the price of a lookup.
		struct nsh_clone_args a;
		memset(&a, 0, sizeof a);
		a.flags = (unsigned long)c->clone_flags | CLONE_PIDFD | NSH_CLONE_INTO_CGROUP;
		a.pidfd = (uintptr_t)&fd;
		a.exit_signal = SIGCHLD;
		a.cgroup = (unsigned)c->cgroup_fd;
		pid = syscall(SYS_clone3, &a, sizeof a);
		if (pid == 0)
			child(c, 0);
		err = errno;
		if (pid < 0 && err == ENOSYS) {
			// A seccomp filter that hides clone3 (container
			// runtimes' defaults): the child joins by itself.
			pid = syscall(SYS_clone, (unsigned long)(c->clone_flags | CLONE_PIDFD | SIGCHLD), 0, &fd, 0, 0);
			if (pid == 0)
				child(c, 1);
			err = errno;
		}
	} else {
		pid = syscall(SYS_clone, (unsigned long)(c->clone_flags | CLONE_PIDFD | SIGCHLD), 0, &fd, 0, 0);
		if (pid == 0)
			child(c, 0);
		err = errno;
	}
	set_sigmask(old, NULL);
	if (pid < 0)
		return -err;
	*pidfd = fd;
	return (int)pid;
}

int nsh_tcsetpgrp(int tty, int pgrp) {
	sigset_t ttou, old;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	int r = tcsetpgrp(tty, pgrp);
	int err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r < 0 ? -err : 0;
}

// nsh_init_main runs when nsh is executed as the init of a PID namespace:
// it reaps every orphan (SIGCHLD ignored with SA_NOCLDWAIT) and exits when
// nsh's end of the status socket closes, which kills the whole namespace.
__attribute__((constructor)) static void nsh_init_main(void) {
	const char *s = getenv("_NSH_INIT_FD");
	if (!s)
		return;
	int fd = atoi(s);
	unsetenv("_NSH_INIT_FD");
	prctl(PR_SET_NAME, "nsh-init");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_NOCLDWAIT;
	sigaction(SIGCHLD, &sa, NULL);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		for (int i = 0; i < 3; i++)
			dup2(null, i);
		close(null);
	}
	send_msg(fd, NSH_MSG_READY, 0, 0, 0);
	char b[64];
	for (;;) {
		ssize_t n = read(fd, b, sizeof b);
		if (n == 0 || (n < 0 && errno != EINTR))
			_exit(0);
	}
}
