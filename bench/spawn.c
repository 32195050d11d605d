/* spawn: the limit for the sandbox-spawn benchmark. Starts /bin/true COUNT
 * times, one after the other, each in new pid+mnt+uts+ipc+net namespaces
 * (plus a user namespace with -u) with a fresh /proc, and waits for it.
 * Prints the median and mean wall time per spawn in microseconds.
 *
 *   spawn [-u] COUNT
 *
 * Each child: clone() with the CLONE_NEW* flags, mount / recursively private
 * (so nothing propagates back), mount a new proc on /proc, exec /bin/true.
 * With -u the parent writes the child's uid_map and gid_map (the caller
 * mapped to root) while the child waits on a pipe, as unshare -r does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sync_pipe[2];
static int userns;
static char stack[64 * 1024] __attribute__((aligned(16)));

static int child(void *arg) {
    (void)arg;
    if (userns) {
        char c;
        close(sync_pipe[1]);
        if (read(sync_pipe[0], &c, 1) != 1) _exit(120);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(121);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) _exit(122);
    execl("/bin/true", "true", (char *)NULL);
    _exit(127);
}

static void write_file(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
        fprintf(stderr, "spawn: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    close(fd);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int argi = 1;
    if (argc > 1 && strcmp(argv[1], "-u") == 0) { userns = 1; argi++; }
    if (argi >= argc) { fprintf(stderr, "usage: spawn [-u] COUNT\n"); return 2; }
    int count = atoi(argv[argi]);
    if (count < 1) { fprintf(stderr, "spawn: COUNT must be positive\n"); return 2; }
    int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
    if (userns) flags |= CLONE_NEWUSER;
    double *t = calloc(count, sizeof *t), sum = 0;
    char path[64], map[64];
    snprintf(map, sizeof map, "0 %d 1\n", (int)geteuid());
    for (int i = 0; i < count; i++) {
        double t0 = now_us();
        if (userns && pipe2(sync_pipe, O_CLOEXEC) < 0) { perror("pipe"); return 1; }
        pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
        if (pid < 0) { perror("spawn: clone"); return 1; }
        if (userns) {
            close(sync_pipe[0]);
            snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
            write_file(path, map);
            snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
            write_file(path, "deny");
            snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
            snprintf(map, sizeof map, "0 %d 1\n", (int)getegid());
            write_file(path, map);
            snprintf(map, sizeof map, "0 %d 1\n", (int)geteuid());
            if (write(sync_pipe[1], "x", 1) != 1) { perror("spawn: release"); return 1; }
            close(sync_pipe[1]);
        }
        int st;
        if (waitpid(pid, &st, 0) < 0) { perror("spawn: waitpid"); return 1; }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "spawn: child failed with status %#x\n", st);
            return 1;
        }
        t[i] = now_us() - t0;
        sum += t[i];
    }
    qsort(t, count, sizeof *t, cmp);
    printf("median_us %.1f mean_us %.1f n %d\n", t[count / 2], sum / count, count);
    return 0;
}
