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
	killAt, countFile string
	applied, applying atomic.Int64
	countMu           sync.Mutex
	killAtN           int64 = 1
	hits              atomic.Int64
)

func load() {
	for _, f := range strings.Split(os.Getenv("NSH_FAULT"), ",") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "kill-after":
			killAfter, _ = strconv.ParseInt(v, 10, 64)
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
		}
	}
}

func die() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// Applying is called by the executor before a change is made; a non-nil
// error is the injected failure the change returns instead.
func Applying(what string) error {
	once.Do(load)
	n := applying.Add(1)
	if countFile != "" {
		countMu.Lock()
		if f, err := os.OpenFile(countFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintf(f, "%d %s\n", n, what)
			f.Close()
		}
		countMu.Unlock()
	}
	if n == failAt {
		return fmt.Errorf("injected fault (NSH_FAULT=fail-at=%d) in %s: %w", n, what, syscall.EIO)
	}
	return nil
}

// Applied is called by the executor right after a change's kernel calls
// return, before anything else.
func Applied() {
	once.Do(load)
	if applied.Add(1) == killAfter {
		die()
	}
}

// At marks a point between two system calls of one change.
func At(point string) {
	once.Do(load)
	if killAt != "" && point == killAt && hits.Add(1) == killAtN {
		die()
	}
}
