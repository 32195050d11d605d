// Package leakcheck snapshots what a test could leave behind on the host —
// named network namespaces, links of the host network namespace, the mount
// table of the test process, and the test's descendant processes — and
// fails the test when a snapshot taken afterwards has anything new.
package leakcheck

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// Snapshot is the host state a test must leave as it found it.
type Snapshot struct {
	Netns  []string // names in /run/netns
	Links  []string // "name(kind)" of links in the host netns
	Mounts []string // "target fstype source" of the test process's mounts
	Procs  []string // "pid comm" of descendants of the test process
}

// Take records the current state.
func Take() (Snapshot, error) {
	var s Snapshot
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			s.Netns = append(s.Netns, e.Name())
		}
	}
	// The test's goroutine runs on some thread of the scheduler's pool; if
	// that thread is not in the process's network namespace, a namespace
	// change escaped into the pool: the bug nsh's thread discipline exists
	// to prevent.
	if self, thread := nsLink("/proc/self/ns/net"), nsLink("/proc/thread-self/ns/net"); self != thread {
		return s, fmt.Errorf("a pool thread is in %s, not the process's %s: a namespace change leaked into the Go scheduler's threads", thread, self)
	}
	links, err := netlink.LinkList()
	// A dump interrupted by links changing meanwhile (other tests on the
	// host) is retried: it says nothing about this test.
	for i := 0; i < 20 && errors.Is(err, netlink.ErrDumpInterrupted); i++ {
		time.Sleep(10 * time.Millisecond)
		links, err = netlink.LinkList()
	}
	if err != nil {
		return s, fmt.Errorf("listing links: %w", err)
	}
	for _, l := range links {
		s.Links = append(s.Links, fmt.Sprintf("%s(%s)", l.Attrs().Name, l.Type()))
	}
	s.Mounts, err = mounts()
	if err != nil {
		return s, err
	}
	s.Procs = descendants(os.Getpid())
	sort.Strings(s.Links)
	sort.Strings(s.Mounts)
	return s, nil
}

func nsLink(path string) string {
	l, err := os.Readlink(path)
	if err != nil {
		return path + ": " + err.Error()
	}
	return l
}

func mounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root target opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		dash := -1
		for i, x := range fields {
			if x == "-" {
				dash = i
				break
			}
		}
		if dash < 0 || dash+2 >= len(fields) || len(fields) < 5 {
			continue
		}
		out = append(out, fields[4]+" "+fields[dash+1]+" "+fields[dash+2])
	}
	return out, sc.Err()
}

// descendants lists the processes below pid (children, grandchildren, ...).
func descendants(pid int) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	comm := map[int]string{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
		comm[p] = s[strings.IndexByte(s, '(')+1 : i]
	}
	var out []string
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, fmt.Sprintf("%d %s", p, comm[p]))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Diff lists what after has that before had not.
func Diff(before, after Snapshot) []string {
	var out []string
	add := func(what string, b, a []string) {
		have := map[string]int{}
		for _, x := range b {
			have[x]++
		}
		for _, x := range a {
			if have[x] > 0 {
				have[x]--
				continue
			}
			out = append(out, what+" "+x)
		}
	}
	add("named netns", before.Netns, after.Netns)
	add("host link", before.Links, after.Links)
	add("mount", before.Mounts, after.Mounts)
	add("process", before.Procs, after.Procs)
	return out
}

// Settle is how long Check waits for the kernel's asynchronous cleanup
// (a network namespace and its veth ends are destroyed by a workqueue after
// the last reference is gone) before calling a difference a leak.
var Settle = 5 * time.Second

// Wait polls until nothing new is seen or Settle has passed, and returns
// what is still new.
func Wait(before Snapshot) ([]string, error) {
	deadline := time.Now().Add(Settle)
	for {
		after, err := Take()
		if err != nil {
			return nil, err
		}
		d := Diff(before, after)
		if len(d) == 0 || time.Now().After(deadline) {
			return d, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Check takes a snapshot now and registers a cleanup that fails t if
// anything new is left when the test ends. One line at the top of a test:
//
//	leakcheck.Check(t)
func Check(t testing.TB) {
	t.Helper()
	before, err := Take()
	if err != nil {
		t.Fatalf("leakcheck: %v", err)
	}
	t.Cleanup(func() {
		left, err := Wait(before)
		if err != nil {
			t.Errorf("leakcheck: %v", err)
			return
		}
		for _, l := range left {
			t.Errorf("leaked: %s", l)
		}
	})
}
