// The C half of nsh's spawn helper: the code that runs in a new child
// between clone() and execve(), where the process is single-threaded and may
// join user and time namespaces, unshare, mount and pivot_root. See spawn.go.
#ifndef NSH_SPAWN_H
#define NSH_SPAWN_H

#define NSH_MAX_SETNS 8

// Modes of the child.
enum { NSH_EXEC = 0, NSH_HOLD = 1, NSH_INIT = 2, NSH_MAPS = 3 };

// Steps of the child, reported with the errno when one fails.
enum {
	NSH_STEP_CLONE = 1,
	NSH_STEP_PDEATHSIG,
	NSH_STEP_SETNS,
	NSH_STEP_UNSHARE_USER,
	NSH_STEP_MAPS,
	NSH_STEP_UNSHARE,
	NSH_STEP_TIMENS,
	NSH_STEP_FORK,
	NSH_STEP_PROPAGATION,
	NSH_STEP_HOSTNAME,
	NSH_STEP_DOMAINNAME,
	NSH_STEP_PROC_PRIVATE,
	NSH_STEP_MOUNT_PROC,
	NSH_STEP_ROOT_BIND,
	NSH_STEP_PIVOT,
	NSH_STEP_CHDIR,
	NSH_STEP_STDIO,
	NSH_STEP_SETSID,
	NSH_STEP_FOREGROUND,
	NSH_STEP_EXEC,
	NSH_STEP_WRITE_MAPS, // maps mode: arg 0 setgroups, 1 uid_map, 2 gid_map
	NSH_STEP_SETGROUPS,
	NSH_STEP_SETGID,
	NSH_STEP_SETUID,
	NSH_STEP_CGROUP,     // joining the run's cgroup where clone3 is hidden
	NSH_STEP_LO,         // bringing up the loopback of a new net namespace
	NSH_STEP_DEV,        // the minimal /dev of root= (arg: NSH_DEV_* entry)
};

// Choices of nsh_cfg.dev.
enum { NSH_DEV_OFF = 0, NSH_DEV_ON = 1, NSH_DEV_IF_DIR = 2 };

// Entries of the minimal /dev, in the order they are made (the arg of a
// failed NSH_STEP_DEV): a tmpfs on dev, binds of the host's device nodes,
// a new devpts instance, ptmx, a tmpfs on shm, and the symlinks.
enum {
	NSH_DEV_TMPFS = 0,
	NSH_DEV_NODES = 1, // 1 + index into nsh_dev_nodes
	NSH_DEV_PTS = 7,
	NSH_DEV_PTMX,
	NSH_DEV_SHM,
	NSH_DEV_LINKS,     // + index into the symlinks fd, stdin, stdout, stderr
};

// Messages on the status socket: child -> parent.
enum {
	NSH_MSG_ERROR = 'E', // step failed: step, arg (index), err (errno)
	NSH_MSG_MAPS = 'M',  // a new user namespace waits for its id maps
	NSH_MSG_READY = 'R', // hold/init mode: namespaces are in place
	NSH_MSG_FORKED = 'F', // a middle process forked the real child (arg = its pid)
	NSH_MSG_GO = 'G',     // parent -> child: maps written, go on
};

struct nsh_msg {
	int type;
	int step;
	int arg;
	int err;
};

struct nsh_cfg {
	int mode;
	int sock;             // child's end of the status socket (CLOEXEC)
	int psock;            // parent's end, closed in the child
	int clone_flags;      // CLONE_NEW* created by clone() itself
	int unshare_flags;    // CLONE_NEW* created by unshare() in the child
	int nsetns;
	int setns_fd[NSH_MAX_SETNS];
	int setns_type[NSH_MAX_SETNS];
	int time_offsets;     // write /proc/self/timens_offsets after unshare(CLONE_NEWTIME)
	long long mono_sec, mono_nsec, boot_sec, boot_nsec;
	const char *hostname;   // NULL: unchanged
	const char *domainname; // NULL: unchanged
	unsigned long propagation; // MS_PRIVATE etc. for / in a new mount namespace; 0: unchanged
	int mount_proc;
	int lo_up;            // bring up lo of a new net namespace
	const char *root;     // pivot_root into this directory; NULL: none
	int dev;              // with root: a minimal /dev in it (NSH_DEV_OFF...; setup_dev in spawn.c)
	const char *cwd;      // NULL: unchanged (or / after root)
	int fd[3];            // stdin, stdout, stderr; -1: inherit
	int setsid;
	int foreground;       // new process group, made the foreground one of tty
	int tty;
	int pdeathsig;
	int parent_pid;
	const char *path;     // PATH used to find argv[0] if it has no '/'
	char *const *argv;
	char *const *envp;
	int cgroup_fd;        // directory of a cgroup (v2) the child is born in; -1: none
	int exe_fd;           // init mode: O_PATH descriptor of nsh's own binary
	// maps mode: after joining setns_fd (a user namespace), write the maps
	// of the process whose /proc/PID directory maps_dir is, and exit.
	int maps_dir;
	const char *setgroups;  // NULL: leave it
	const char *uid_map;    // NULL: leave it; "": this process's euid as root
	const char *gid_map;    // NULL: leave it; "": this process's egid as root
	// exec mode: the identity switched to just before the exec, once the
	// maps are written (see set_identity in spawn.c).
	int ident;              // 0: keep the ids as they are
	int ident_default;      // in a user namespace not nsh's own: uid/gid -1 become 0 when 0 is mapped
	long long uid, gid;     // -1: the default (above), else this id
	int groups_given;       // groups= was given: setgroups must succeed
	int ngroups;
	const unsigned int *groups;
};

// NSH_STACK is the size of the stack a child that shares nsh's address
// space runs on.
#define NSH_STACK (256 * 1024)

// nsh_can_share_vm reports whether the child described by cfg may share
// nsh's address space until its exec (see spawn.c).
int nsh_can_share_vm(const struct nsh_cfg *cfg);

// nsh_spawn starts a child as described by cfg. With stack (NSH_STACK bytes,
// only when nsh_can_share_vm) the child shares nsh's address space and runs
// on it: the caller frees it once the child has execed or been reaped.
// It returns the child's pid, or -errno; *pidfd receives a pidfd for it.
int nsh_spawn(const struct nsh_cfg *cfg, void *stack, int *pidfd);

// nsh_tcsetpgrp makes pgrp the foreground process group of tty with SIGTTOU
// blocked on the calling thread, so a background nsh may take the terminal
// back. Returns 0 or -errno.
int nsh_tcsetpgrp(int tty, int pgrp);

#endif
