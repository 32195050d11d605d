// The reaper process: nsh started again with _NSH_REAPER_FD set. This
// constructor runs before the Go runtime starts, so the process is
// single-threaded C all its life and may setns(2) into any namespace,
// mount namespaces included.
//
// It reads records from a SOCK_SEQPACKET socket whose other end only nsh
// holds (see reaper.go for the messages). When that end closes without
// nsh having stopped it (nsh was killed: SIGKILL, a crash), it undoes the
// records still live, newest first, and exits.

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "reaper.h"

#define NSH_NS_GET_PARENT _IO(0xb7, 0x2) // linux/nsfs.h

// From linux/netlink.h and linux/rtnetlink.h, which musl's compiler does
// not see: the one request this file sends.
#define NETLINK_ROUTE 0
#define RTM_DELLINK 17
#define NLMSG_ERROR 2
#define NLM_F_REQUEST 1
#define NLM_F_ACK 4
struct nlmsghdr {
	uint32_t nlmsg_len;
	uint16_t nlmsg_type, nlmsg_flags;
	uint32_t nlmsg_seq, nlmsg_pid;
};
struct ifinfomsg {
	unsigned char ifi_family, pad;
	unsigned short ifi_type;
	int ifi_index;
	unsigned ifi_flags, ifi_change;
};
struct nlmsgerr {
	int error;
	struct nlmsghdr msg;
};

struct rec {
	uint64_t id;
	char *buf; // the ADD message: header, description, ops; NULL once deleted
	size_t len;
};

static int *nsfds;
static size_t nnsfds;
static struct rec *recs;
static size_t nrecs, caprecs;

static void say(const char *what, const char *op, const char *arg, int err) {
	fprintf(stderr, "nsh: nsh was killed; undoing %s: %s %s: %s\n", what, op, arg, strerror(err));
}

static void keep_ns(uint64_t id, int fd) {
	if (id >= nnsfds) {
		size_t n = id + 16;
		int *p = realloc(nsfds, n * sizeof *p);
		if (!p) {
			close(fd);
			return;
		}
		for (size_t i = nnsfds; i < n; i++)
			p[i] = -1;
		nsfds = p, nnsfds = n;
	}
	if (nsfds[id] >= 0)
		close(nsfds[id]);
	nsfds[id] = fd;
}

static void add(char *buf, size_t len) {
	struct nsh_reaper_msg *m = (void *)buf;
	// A record given ahead of its change is replaced once the change is
	// made. Ids grow: search back only while they are not smaller.
	for (size_t i = nrecs; i-- > 0 && recs[i].id >= m->id;) {
		if (recs[i].id == m->id && recs[i].buf) {
			free(recs[i].buf);
			recs[i].buf = buf, recs[i].len = len;
			return;
		}
	}
	if (nrecs == caprecs) {
		size_t n = caprecs ? 2 * caprecs : 64;
		struct rec *p = realloc(recs, n * sizeof *p);
		if (!p) {
			free(buf);
			return;
		}
		recs = p, caprecs = n;
	}
	recs[nrecs++] = (struct rec){.id = m->id, .buf = buf, .len = len};
}

static void del(uint64_t id) {
	// Deletions are mostly of recent records: search from the end.
	for (size_t i = nrecs; i-- > 0;) {
		if (recs[i].id == id && recs[i].buf) {
			free(recs[i].buf);
			recs[i].buf = NULL;
			break;
		}
	}
	// Drop the dead tail so a long run's memory stays bounded by what is live.
	while (nrecs > 0 && !recs[nrecs - 1].buf)
		nrecs--;
}

// enter moves the process into namespace id (-1: the one it started in,
// saved as self) of type nstype, unless it is there already: the setns
// would need privileges over a namespace the reaper is already in (a
// rootless reaper has none over the host's mount namespace).
static int enter(int32_t id, int self, int nstype) {
	static int32_t cur_mnt = -1, cur_net = -1, cur_uts = -1;
	int32_t *cur = nstype == CLONE_NEWNS ? &cur_mnt : nstype == CLONE_NEWNET ? &cur_net : &cur_uts;
	if (id == *cur)
		return 0;
	int fd = self;
	if (id >= 0) {
		if ((size_t)id >= nnsfds || nsfds[id] < 0)
			return EBADF;
		fd = nsfds[id];
	}
	if (setns(fd, nstype))
		return errno;
	*cur = id;
	return 0;
}

// dellink deletes the link with index ifindex in the reaper's network
// namespace, if its name is name (when not empty): nsh chose the index
// before making the link, and told the reaper first.
static int dellink(int32_t ifindex, const char *name) {
	if (*name) {
		char now[IF_NAMESIZE];
		if (!if_indextoname(ifindex, now))
			return errno == ENXIO || errno == ENODEV ? 0 : errno; // never made, or gone
		if (strcmp(now, name))
			return 0; // another link has the index
	}
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return errno;
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_DELLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 1},
		.ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex},
	};
	int err = 0;
	if (send(s, &req, sizeof req, 0) < 0) {
		err = errno;
	} else {
		char ack[512];
		ssize_t n = recv(s, ack, sizeof ack, 0);
		struct nlmsghdr *nh = (void *)ack;
		if (n < 0)
			err = errno;
		else if (n >= (ssize_t)(sizeof *nh + sizeof(struct nlmsgerr)) && nh->nlmsg_type == NLMSG_ERROR)
			err = -((struct nlmsgerr *)(nh + 1))->error;
	}
	close(s);
	return err == ENODEV ? 0 : err; // gone already (its namespace died)
}

// mount_id returns the ID of the mount path is on (statx STATX_MNT_ID,
// called raw: musl's header may lack statx), or 0 with errno set.
static uint64_t mount_id(const char *path) {
	union {
		uint64_t align;
		unsigned char b[256]; // struct statx
	} st;
	if (syscall(SYS_statx, AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0x1000 /* STATX_MNT_ID */, st.b))
		return 0;
	uint32_t mask;
	uint64_t id;
	memcpy(&mask, st.b, sizeof mask);
	memcpy(&id, st.b + 144, sizeof id); // stx_mnt_id
	if (!(mask & 0x1000)) {
		errno = ENOSYS;
		return 0;
	}
	return id;
}

static int umount_if(uint64_t mntid, const char *path) {
	if (mntid) {
		// Only the mount nsh made: not one stacked on it later.
		uint64_t now = mount_id(path);
		if (!now)
			return errno == ENOENT ? 0 : errno;
		if (now != mntid)
			return 0;
	}
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW))
		return errno == EINVAL || errno == ENOENT ? 0 : errno;
	return 0;
}

// umount_new lazily unmounts path unless the mount there is still the one
// with ID before: nsh told the reaper before it mounted on path.
static int umount_new(uint64_t before, const char *path) {
	uint64_t now = mount_id(path);
	if (!now)
		return errno == ENOENT ? 0 : errno;
	if (now == before)
		return 0; // never mounted, or unmounted already
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW))
		return errno == EINVAL || errno == ENOENT ? 0 : errno;
	return 0;
}

// unlink_if removes the file path if ino is 0 or its inode number.
static int unlink_if(uint64_t ino, const char *path) {
	struct stat st;
	if (ino && (lstat(path, &st) || st.st_ino != ino))
		return 0; // gone, never made, or not the file nsh made
	return unlink(path) && errno != ENOENT ? errno : 0;
}

// write_file writes val to path; if expect is not NULL, only while path
// reads expect (ending in a newline or not): the value nsh wrote, so
// that an old value is put back only over nsh's own.
static int write_file(const char *path, const char *val, const char *expect) {
	if (expect) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? 0 : errno;
		char b[4096];
		ssize_t n = read(fd, b, sizeof b - 1);
		close(fd);
		if (n < 0)
			return errno;
		b[n] = 0;
		if (n > 0 && b[n - 1] == '\n')
			b[n - 1] = 0;
		if (strcmp(b, expect))
			return 0;
	}
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t n = strlen(val);
	int err = write(fd, val, n) == (ssize_t)n ? 0 : errno;
	close(fd);
	return err;
}

// populated reads the "populated" line of the cgroup's cgroup.events:
// 1 while a process is in it or below, 0 once none is, -1 on an error.
static int populated(int dir) {
	int fd = openat(dir, "cgroup.events", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char b[256];
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n < 0)
		return -1;
	b[n] = 0;
	const char *p = strstr(b, "populated ");
	return p ? p[10] == '1' : -1;
}

// killcg kills every process in the cgroup at path (cgroup.kill), waits
// up to 5 s for them to be gone, and removes it.
static int killcg(const char *path) {
	int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return errno == ENOENT ? 0 : errno;
	int fd = openat(dir, "cgroup.kill", O_WRONLY | O_CLOEXEC);
	int err = 0;
	if (fd < 0 || write(fd, "1", 1) != 1)
		err = errno;
	if (fd >= 0)
		close(fd);
	for (int i = 0; !err && i < 1000 && populated(dir) == 1; i++) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	close(dir);
	if (!err && rmdir(path) && errno != ENOENT)
		err = errno;
	return err;
}

// in_userns reports whether process pid is in user namespace self or one
// of its descendants (NS_GET_PARENT up to self; it fails past the
// caller's own user namespace).
static int in_userns(const char *pid, const struct stat *self) {
	char p[64];
	snprintf(p, sizeof p, "/proc/%s/ns/user", pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	int in = 0;
	for (int depth = 0; fd >= 0 && depth < 40; depth++) {
		struct stat st;
		if (fstat(fd, &st))
			break;
		if (st.st_dev == self->st_dev && st.st_ino == self->st_ino) {
			in = 1;
			break;
		}
		int parent = ioctl(fd, NSH_NS_GET_PARENT);
		close(fd);
		fd = parent;
	}
	if (fd >= 0)
		close(fd);
	return in;
}

// alive reports whether process pid has not exited (is not a zombie).
static int alive(const char *pid) {
	char p[64], b[512];
	snprintf(p, sizeof p, "/proc/%s/stat", pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = 0;
	char *e = strrchr(b, ')');
	return e && e[1] == ' ' && e[2] != 'Z' && e[2] != 'X';
}

// killuserns kills every process in the reaper's own user namespace and
// the user namespaces below it, but itself: rootless nsh made that user
// namespace for the run, so all of them are the run's. It goes on while
// it finds some (a fork may race with the scan), 5 s at most.
static int killuserns(void) {
	struct stat self;
	if (stat("/proc/self/ns/user", &self))
		return errno;
	char me[24];
	snprintf(me, sizeof me, "%d", (int)getpid());
	for (int round = 0; round < 500; round++) {
		DIR *d = opendir("/proc");
		if (!d)
			return errno;
		int found = 0;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] < '1' || e->d_name[0] > '9' || !strcmp(e->d_name, me))
				continue;
			if (alive(e->d_name) && in_userns(e->d_name, &self)) {
				kill(atoi(e->d_name), SIGKILL);
				found++;
			}
		}
		closedir(d);
		if (!found)
			return 0;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return EBUSY;
}

// undo runs the ops of one record in order; it goes on past a failed op.
static void undo(const struct rec *r, int selfmnt, int selfnet, int selfuts) {
	const char *p = r->buf + sizeof(struct nsh_reaper_msg), *end = r->buf + r->len;
	const char *what = p;
	p += strlen(what) + 1;
	for (;;) {
		p = (const char *)(((uintptr_t)p + 7) & ~(uintptr_t)7);
		if (p + sizeof(struct nsh_reaper_op) > end)
			return;
		const struct nsh_reaper_op *op = (const void *)p;
		const char *data = p + sizeof *op;
		p = data + op->len;
		if (p > end || op->len == 0 || data[op->len - 1])
			return; // not written by reaper.go

		int err = enter(op->mnt, selfmnt, CLONE_NEWNS);
		if (!err)
			err = enter(op->net, selfnet, CLONE_NEWNET);
		if (!err)
			err = enter(op->uts, selfuts, CLONE_NEWUTS);
		if (err) {
			say(what, "setns", "", err);
			continue;
		}
		const char *path = data, *second = path + strlen(path) + 1;
		switch (op->kind) {
		case NSH_REAPER_DELLINK:
			if ((err = dellink((int32_t)op->arg, path)))
				say(what, "link del", "", err);
			break;
		case NSH_REAPER_UMOUNT:
			if ((err = umount_if(op->arg, path)))
				say(what, "umount", path, err);
			break;
		case NSH_REAPER_UMOUNT_NEW:
			if ((err = umount_new(op->arg, path)))
				say(what, "umount", path, err);
			break;
		case NSH_REAPER_UNLINK:
			if ((err = unlink_if(op->arg, path)))
				say(what, "remove", path, err);
			break;
		case NSH_REAPER_RMDIR:
			if (rmdir(path) && errno != ENOENT && errno != ENOTEMPTY && errno != EBUSY)
				say(what, "rmdir", path, errno);
			break;
		case NSH_REAPER_WRITE:
		{
			const char *third = second < data + op->len ? second + strlen(second) + 1 : NULL;
			if (!third || (op->arg && third >= data + op->len))
				break; // not written by reaper.go
			if ((err = write_file(path, second, op->arg ? third : NULL)))
				say(what, "write", path, err);
			break;
		}
		case NSH_REAPER_KILLUSERNS:
			if ((err = killuserns()))
				say(what, "kill the processes of", "nsh's user namespace", err);
			break;
		case NSH_REAPER_KILLCG:
			if ((err = killcg(path)))
				say(what, "kill cgroup", path, err);
			break;
		}
	}
}

static void reap(void) {
	int selfmnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	int selfnet = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int selfuts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	for (size_t i = nrecs; i-- > 0;)
		if (recs[i].buf)
			undo(&recs[i], selfmnt, selfnet, selfuts);
}

// receive reads every message queued; it returns -1 at EOF (nsh's end is
// closed), else how many messages it read. Only EOF means nsh is gone: on
// an error the records stay and the next round tries again, and a socket
// that cannot work at all ends the reaper without undoing anything.
static int receive(int sock) {
	static char buf[NSH_REAPER_MAXMSG];
	int count = 0;
	for (;;) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} c;
		struct iovec iov = {buf, sizeof buf};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b, .msg_controllen = sizeof c.b};
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n == 0)
			return -1;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EBADF || errno == ENOTSOCK || errno == EINVAL)
				_exit(1);
			return count; // EAGAIN: all read; ENOMEM, ENOBUFS: later
		}
		count++;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		int fd = -1;
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof fd);
		struct nsh_reaper_msg m;
		if ((size_t)n < sizeof m) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		memcpy(&m, buf, sizeof m);
		if (m.type == NSH_REAPER_NS && fd >= 0) {
			keep_ns(m.id, fd);
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (m.type == NSH_REAPER_ADD) {
			char *rec = malloc(n);
			if (rec) {
				memcpy(rec, buf, n);
				add(rec, n);
			}
		} else if (m.type == NSH_REAPER_DEL) {
			del(m.id);
		}
	}
}

// Priority 101, the first a program may use: the reaper runs before
// internal/startup's constructors, which only prepare the Go runtime's
// start (one of them would pin this process to one CPU).
__attribute__((constructor(101))) static void nsh_reaper_main(void) {
	const char *v = getenv("_NSH_REAPER_FD");
	if (!v)
		return;
	int sock = atoi(v);
	unsetenv("_NSH_REAPER_FD");
	prctl(PR_SET_NAME, "nsh-reaper");
	// Its own process group already keeps the terminal's signals away;
	// a signal sent to nsh's group by pid must not stop the cleanup
	// either.
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		struct pollfd p = {.fd = sock, .events = POLLIN};
		poll(&p, 1, -1); // on an error, receive tells what it was
		int n = receive(sock);
		if (n < 0)
			break;
		// Records are needed only when nsh dies: reading them in
		// batches spares a wake-up per message. A long batch means
		// nsh is making objects fast: read on, so its sends never
		// wait for room in the socket.
		if (n < 64) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	reap();
	_exit(0);
}
