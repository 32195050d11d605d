// Package leakcheck snapshots what a test could leave behind on the host —
// named network namespaces, links of the host network namespace, the mount
// table of the test process, and the test's descendant processes — and
// fails the test when a snapshot taken afterwards has anything new.
//
// One change is not a leak: /run/netns becoming a shared bind mount of
// itself, with no entry in it, on a machine where it was no mount point.
// The first "ip netns add" (or netns() in nsh) makes it so on purpose and
// it stays so, as it does after any use of iproute2.
package leakcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"nsh.dev/nsh/internal/netnsdir"

	"nsh.dev/nsh/internal/mountinfo"
)

// Snapshot is the host state a test must leave as it found it.
type Snapshot struct {
	Netns  []string // names in /run/netns
	Links  []string // "name(kind)" of links in the host netns
	Mounts []string // "target fstype source" of the test process's mounts
	Procs  []string // "pid comm" of descendants of the test process
	// NetnsDir is how /run/netns is mounted: "" when it is no mount point,
	// NetnsDirPrepared when it is what "ip netns add" makes of it, else a
	// description of its mounts.
	NetnsDir string
}

// NetnsDirPrepared is Snapshot.NetnsDir for /run/netns made a shared bind
// mount of itself (one mount, of the same filesystem and directory as the
// mount it sits on), as iproute2 and nsh's netns() prepare it.
const NetnsDirPrepared = "shared bind of itself"

// Take records the current state.
func Take() (Snapshot, error) {
	var s Snapshot
	if ents, err := os.ReadDir(netnsdir.Dir); err == nil {
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
	s.Mounts, s.NetnsDir, err = mounts()
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

// mounts lists the test process's mounts as "target fstype source" and
// says how /run/netns is mounted (see Snapshot.NetnsDir).
func mounts() ([]string, string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	es, err := mountinfo.Parse(f)
	if err != nil {
		return nil, "", err
	}
	out, dir := fromMountinfo(es)
	return out, dir, nil
}

// fromMountinfo is the work of mounts on the parsed entries.
func fromMountinfo(es []mountinfo.Entry) ([]string, string) {
	var out []string
	for _, e := range es {
		out = append(out, e.Target+" "+e.FSType+" "+e.Source)
	}
	sort.Strings(out)
	return out, netnsDirState(es)
}

// netnsDirState describes the mounts on /run/netns that a path lookup
// sees (not those hidden under a later mount on /run or /): "" for none,
// NetnsDirPrepared for a single shared bind of the directory onto itself.
func netnsDirState(es []mountinfo.Entry) string {
	ids := map[int]bool{}
	for _, e := range es {
		ids[e.ID] = true
	}
	// on returns the mounts stacked on target over parent, bottom first.
	on := func(parent int, target string) []mountinfo.Entry {
		var stack []mountinfo.Entry
		for found := true; found; {
			found = false
			for _, e := range es {
				if e.Target == target && e.Parent == parent && e.ID != parent {
					stack, parent, found = append(stack, e), e.ID, true
					break
				}
			}
		}
		return stack
	}
	var top mountinfo.Entry
	for _, e := range es {
		if e.Target == "/" && !ids[e.Parent] {
			top = e // the root of the namespace as this process sees it
		}
	}
	if s := on(top.ID, "/"); len(s) > 0 {
		top = s[len(s)-1]
	}
	prefix := ""
	for _, c := range strings.Split(strings.TrimPrefix(filepath.Dir(netnsdir.Dir), "/"), "/") {
		prefix += "/" + c
		if s := on(top.ID, prefix); len(s) > 0 {
			top = s[len(s)-1]
		}
	}
	stack := on(top.ID, netnsdir.Dir)
	switch {
	case len(stack) == 0:
		return ""
	case len(stack) > 1:
		return fmt.Sprintf("%d mounts stacked", len(stack))
	}
	e, p := stack[0], top
	rel, err := filepath.Rel(p.Target, netnsdir.Dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "a mount on an unexpected parent " + p.Target
	}
	if e.Major != p.Major || e.Minor != p.Minor || e.FSType != p.FSType || e.Source != p.Source ||
		e.Root != filepath.Join(p.Root, rel) {
		return fmt.Sprintf("a mount of %s %s:%s, not of the directory itself", e.FSType, e.Source, e.Root)
	}
	if e.Shared == 0 {
		return "a " + e.Propagation() + " bind of itself"
	}
	return NetnsDirPrepared
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
	n := len(out)
	add("mount", before.Mounts, after.Mounts)
	if netnsDirPrepared(before, after) {
		// The one new mount on /run/netns is the intended, persistent
		// preparation of the directory; everything else still counts.
		for i := n; i < len(out); i++ {
			if strings.HasPrefix(out[i], "mount "+netnsdir.Dir+" ") {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
	}
	add("process", before.Procs, after.Procs)
	return out
}

// netnsDirPrepared reports whether the only change to /run/netns from
// before to after is that it became the shared bind mount of itself that
// iproute2 makes, with no entry added in it.
func netnsDirPrepared(before, after Snapshot) bool {
	if before.NetnsDir != "" || after.NetnsDir != NetnsDirPrepared {
		return false
	}
	had := map[string]bool{}
	for _, x := range before.Netns {
		had[x] = true
	}
	for _, x := range after.Netns {
		if !had[x] {
			return false
		}
	}
	return true
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

// TB is the part of testing.TB that Check uses: the package does not
// import testing, which nsh test's runner (linked into nsh) would then carry.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Check takes a snapshot now and registers a cleanup that fails t if
// anything new is left when the test ends. One line at the top of a test:
//
//	leakcheck.Check(t)
func Check(t TB) {
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
