/* whole: times whole commands side by side. Runs each command RUNS times
 * (after WARMUP untimed rounds), interleaved: round r runs them in order,
 * the next round in reverse order, so drift of a shared, noisy machine
 * falls on every command alike and their ratios stay comparable. Each run
 * is fork + execvp + waitpid, stdout to /dev/null; a command that fails
 * stops everything with its stderr shown.
 *
 *   whole RUNS WARMUP CMD1 ARG... -- CMD2 ARG... [-- ...]
 *
 * Prints one line per command, in the order given: its median and mean
 * wall time in milliseconds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double run(char **argv, int devnull) {
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("whole: fork");
        exit(2);
    }
    if (pid == 0) {
        dup2(devnull, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "whole: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    double t = now_ms() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "whole: %s failed (status %#x)\n", argv[0], status);
        exit(1);
    }
    return t;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: whole RUNS WARMUP CMD ARG... [-- CMD ARG...]...\n");
        return 2;
    }
    int runs = atoi(argv[1]), warmup = atoi(argv[2]);
    if (runs < 1 || warmup < 0) {
        fprintf(stderr, "whole: bad RUNS or WARMUP\n");
        return 2;
    }
    char **cmds[64];
    int n = 0;
    cmds[n++] = &argv[3];
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            argv[i] = NULL;
            if (n == 64 || i + 1 >= argc) {
                fprintf(stderr, "whole: too many or empty commands\n");
                return 2;
            }
            cmds[n++] = &argv[i + 1];
        }
    }
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    double *t = calloc((size_t)n * runs, sizeof *t);
    if (devnull < 0 || !t) {
        perror("whole");
        return 2;
    }
    for (int r = -warmup; r < runs; r++) {
        for (int k = 0; k < n; k++) {
            int c = (r & 1) ? n - 1 - k : k;
            double d = run(cmds[c], devnull);
            if (r >= 0)
                t[(size_t)c * runs + r] = d;
        }
    }
    for (int c = 0; c < n; c++) {
        double *v = t + (size_t)c * runs, sum = 0;
        for (int r = 0; r < runs; r++)
            sum += v[r];
        qsort(v, runs, sizeof *v, cmp);
        double med = runs % 2 ? v[runs / 2] : (v[runs / 2 - 1] + v[runs / 2]) / 2;
        printf("%.4f %.4f\n", med, sum / runs);
    }
    return 0;
}
