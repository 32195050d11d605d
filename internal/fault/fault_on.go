//go:build nshfault

package fault

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Enabled reports whether this build injects faults (tag nshfault).
const Enabled = true

var (
	once              sync.Once
	killAfter, failAt int64
	termAfter         int64
	killAt, countFile string
	undoFile          string
	applied, applying atomic.Int64
	countMu           sync.Mutex
	killAtN           int64 = 1
	withReaper        bool
	hits              atomic.Int64
)

func load() {
	for _, f := range strings.Split(os.Getenv("NSH_FAULT"), ",") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "kill-after":
			killAfter, _ = strconv.ParseInt(v, 10, 64)
		case "term-after":
			termAfter, _ = strconv.ParseInt(v, 10, 64)
		case "undo":
			undoFile = v
		case "fail-at":
			failAt, _ = strconv.ParseInt(v, 10, 64)
		case "kill-at":
			killAt = v
			if p, n, ok := strings.Cut(v, "#"); ok {
				killAt = p
				killAtN, _ = strconv.ParseInt(n, 10, 64)
			}
		case "count":
			countFile = v
		case "with-reaper":
			withReaper = true
		}
	}
}

func die() {
	if withReaper {
		// As the OOM killer or a container runtime may: the reaper first.
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, t := range tasks {
			b, _ := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
			for _, pid := range strings.Fields(string(b)) {
				if comm, _ := os.ReadFile("/proc/" + pid + "/comm"); strings.TrimSpace(string(comm)) == "nsh-reaper" {
					n, _ := strconv.Atoi(pid)
					syscall.Kill(n, syscall.SIGKILL)
				}
			}
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// note appends a line to file (none: nothing).
func note(file, format string, args ...any) {
	if file == "" {
		return
	}
	countMu.Lock()
	defer countMu.Unlock()
	if f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		fmt.Fprintf(f, format+"\n", args...)
		f.Close()
	}
}

// Applying is called by the executor before a change is made. It returns
// the change's number in the run (from 1) and, if not nil, the injected
// failure the change returns instead.
func Applying(what string) (int64, error) {
	once.Do(load)
	n := applying.Add(1)
	note(countFile, "%d %s", n, what)
	if n == failAt {
		return n, fmt.Errorf("injected fault (NSH_FAULT=fail-at=%d) in %s: %w", n, what, syscall.EIO)
	}
	return n, nil
}

// Applied is called by the executor right after a change's kernel calls
// return, before anything else.
func Applied() {
	once.Do(load)
	switch applied.Add(1) {
	case killAfter:
		die()
	case termAfter:
		note(undoFile, "term %d", termAfter)
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}

// Undoing is called by the executor when the undo of the change Applying
// numbered n begins.
func Undoing(n int64) {
	once.Do(load)
	note(undoFile, "undo %d", n)
}

// At marks a point between two system calls of one change.
func At(point string) {
	once.Do(load)
	if killAt != "" && point == killAt && hits.Add(1) == killAtN {
		die()
	}
}
