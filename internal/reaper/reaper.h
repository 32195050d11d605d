// The messages nsh sends its reaper (reaper.go writes them, reaper.c
// reads them), one per SOCK_SEQPACKET packet, in the machine's byte order.
#ifndef NSH_REAPER_H
#define NSH_REAPER_H

#include <stdint.h>

enum {
	NSH_REAPER_NS = 1,  // id names the namespace passed with the message (SCM_RIGHTS)
	NSH_REAPER_ADD = 2, // record id: a NUL-ended description, then ops; replaces an earlier record id
	NSH_REAPER_DEL = 3, // record id is undone or kept by nsh: forget it
};

// Ops that nsh gives before it makes the change (write ahead) must be
// right whether or not the change was made, and touch only what it makes:
// hence their conditions.
enum {
	NSH_REAPER_DELLINK = 1, // delete the link whose ifindex is arg, if its name is the string (when not empty)
	NSH_REAPER_UMOUNT = 2,  // lazily unmount path, if arg is 0 or the id of the mount there
	NSH_REAPER_UNLINK = 3,  // remove the file path, if arg is 0 or its inode number
	NSH_REAPER_RMDIR = 4,   // remove the directory path if it is empty
	NSH_REAPER_WRITE = 5,   // write the second string to the file path, if arg is 0 or it reads the third
	NSH_REAPER_KILLCG = 6,  // kill every process in cgroup (v2) path, then remove it
	NSH_REAPER_KILLUSERNS = 7, // kill every process in the reaper's user namespace and below, but itself
	NSH_REAPER_UMOUNT_NEW = 8, // lazily unmount path, unless the mount there is still the one with id arg
};

#define NSH_REAPER_MAXMSG 8192

struct nsh_reaper_msg {
	uint32_t type;
	uint32_t pad;
	uint64_t id;
};

// One op, 8-byte aligned, followed by len bytes: path, NUL, and for
// WRITE the value, NUL (and the expected value, NUL). mnt, net and uts are
// namespace ids from NS messages, -1 for the reaper's own.
struct nsh_reaper_op {
	int32_t mnt, net, uts;
	uint32_t kind, len, pad;
	uint64_t arg;
};

#endif
