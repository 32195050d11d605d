package builtins

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nsthread"
)

// TestStressNamespaces runs many goroutines at once, each in a run of its
// own whose context is a different net+uts namespace: they set and read
// hostnames, add, list and delete links through netlink handles opened in
// their namespace, and start processes there. None may ever see another's
// namespace or the host's; afterwards the host is as it was.
//
// Meanwhile (issue 18 item 7) a sampler reads the namespaces of every
// thread of the process (/proc/self/task/*/ns/*) over and over: a thread
// outside the process's own namespaces must be one nsthread announced as
// pinned (see threadWatch). The workers' hops switch namespaces at least
// 10,000 times. (No defect of issue 15's fourteen was of this kind; it
// guards the thread discipline itself, e.g. a NetRunner job that forgot to
// go home, or a runtime thread cloned from a thread inside a namespace.)
func TestStressNamespaces(t *testing.T) {
	leakcheck.Check(t) // runs as root and rootless alike
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	tw := watchThreads(t)
	samplerDone := make(chan struct{})
	samplerStop := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for {
			select {
			case <-samplerStop:
				return
			default:
			}
			tw.sample()
		}
	}()
	const workers, iters = 12, 500
	globals := Table().Globals()
	call := func(th *starlark.Thread, name string, args ...starlark.Value) (starlark.Value, error) {
		return starlark.Call(th, globals[name], starlark.Tuple(args), nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			reg := lifecycle.New()
			defer reg.Teardown()
			th := &starlark.Thread{Name: fmt.Sprintf("stress-%d", g)}
			lifecycle.Attach(th, reg)
			fail := func(format string, args ...any) {
				errs <- fmt.Errorf("worker %d: "+format, append([]any{g}, args...)...)
			}
			start, err := call(th, "namespaces")
			if err != nil {
				fail("namespaces: %v", err)
				return
			}
			if _, err := call(th, "unshare", starlark.String("net"), starlark.String("uts")); err != nil {
				fail("unshare: %v", err)
				return
			}
			st, err := stateOf(th)
			if err != nil {
				fail("state: %v", err)
				return
			}
			// nsh's own handle, opened on a discarded thread inside the
			// namespace (netlink.NewHandleAt would setns a pool thread and
			// back, which rootless cannot do: the thread would stay).
			h, err := st.handle(st.current().Get("net"))
			if err != nil {
				fail("netlink handle: %v", err)
				return
			}
			for i := 0; i < iters; i++ {
				name := fmt.Sprintf("pr-s%d-%d", g, i)
				if _, err := call(th, "hostname", starlark.String(name)); err != nil {
					fail("hostname(%q): %v", name, err)
					return
				}
				got, err := call(th, "hostname")
				if err != nil || string(got.(starlark.String)) != name {
					fail("iteration %d: hostname() = %v, %v; want %q", i, got, err, name)
					return
				}
				if i%20 == 0 {
					br := fmt.Sprintf("pr-br%d", g)
					if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}}); err != nil {
						fail("iteration %d: link add %s: %v", i, br, err)
						return
					}
					links, err := h.LinkList()
					if err != nil {
						fail("link list: %v", err)
						return
					}
					var names []string
					for _, l := range links {
						names = append(names, l.Attrs().Name)
					}
					sort.Strings(names)
					if strings.Join(names, " ") != "lo "+br {
						fail("iteration %d: links %v, want lo and %s", i, names, br)
						return
					}
					l, err := h.LinkByName(br)
					if err == nil {
						err = h.LinkDel(l)
					}
					if err != nil {
						fail("link del %s: %v", br, err)
						return
					}
				}
				if i%10 == 5 {
					// A network namespace alone is made on the calling
					// thread (nsthread.NetRunner), which goes home after.
					own, err := call(th, "setns", start)
					if err == nil {
						_, err = call(th, "unshare", starlark.String("net"))
					}
					if err == nil {
						_, err = call(th, "setns", own)
					}
					if err != nil {
						fail("iteration %d: unshare(net) and back: %v", i, err)
						return
					}
				}
				if i%40 == 0 {
					p, err := call(th, "run", starlark.String("hostname"))
					if err != nil {
						fail("run: %v", err)
						return
					}
					out, _ := p.(*Process).Attr("stdout")
					if string(out.(starlark.String)) != name+"\n" {
						fail("iteration %d: process sees hostname %s, want %q", i, out, name)
						return
					}
				}
			}
			if err := reg.Teardown(); err != nil {
				fail("teardown: %v", err)
			}
		}(g)
	}
	wg.Wait()
	close(samplerStop)
	<-samplerDone
	tw.stop()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tw.report(t, 10000)
	if now, err := os.Hostname(); err != nil || now != host {
		t.Errorf("host hostname is %q (%v), was %q", now, err, host)
	}
}

// threadWatch follows the threads nsthread pins (nsthread.WatchPins) and
// checks samples of every thread's namespaces against them.
type threadWatch struct {
	home map[string]string // /proc/self/task/TID/ns file -> link, of the process
	stop func()

	mu       sync.Mutex
	seq      uint64         // events so far
	pinned   map[int]string // tid -> start time (of /proc/TID/stat), while pinned
	released map[int]uint64 // tid -> seq of its last release
	switches int            // pins announced
	samples  int            // passes over /proc/self/task
	threads  int            // thread namespace sets read
	outside  int            // of them, outside home (all pinned)
	bad      []string       // threads outside home and not pinned
}

// nsFiles are the namespace files of a thread.
var nsFiles = []string{"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"}

func watchThreads(t *testing.T) *threadWatch {
	tw := &threadWatch{home: map[string]string{}, pinned: map[int]string{}, released: map[int]uint64{}}
	// This goroutine's thread is an unlocked one: in the process's own
	// namespaces (leakcheck checks that too).
	runtime.LockOSThread()
	for _, f := range nsFiles {
		l, err := os.Readlink("/proc/thread-self/ns/" + f)
		if err != nil {
			runtime.UnlockOSThread()
			t.Fatal(err)
		}
		tw.home[f] = l
	}
	runtime.UnlockOSThread()
	tw.stop = nsthread.WatchPins(func(tid int, on bool) {
		start := threadStart(tid) // on the thread itself: it exists
		tw.mu.Lock()
		defer tw.mu.Unlock()
		tw.seq++
		if on {
			tw.pinned[tid] = start
			tw.switches++
		} else {
			delete(tw.pinned, tid)
			tw.released[tid] = tw.seq
		}
	})
	return tw
}

// threadStart is the start time of thread tid (field 22 of its stat), which
// tells a thread from a later one given the same tid.
func threadStart(tid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		if f := strings.Fields(s[i+1:]); len(f) > 19 {
			return f[19]
		}
	}
	return ""
}

// sample reads the namespaces of every thread once. A thread outside home
// passes if it is pinned now (the same thread the hook saw), or was
// released after its namespaces were read began: a correct thread is
// pinned before it leaves home and released after it is back, so it was
// pinned while read outside. A thread that is gone midway is skipped.
func (tw *threadWatch) sample() {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	tw.mu.Lock()
	tw.samples++
	tw.mu.Unlock()
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		tw.mu.Lock()
		before := tw.seq
		tw.mu.Unlock()
		start := threadStart(tid)
		var away []string
		gone := start == ""
		for _, f := range nsFiles {
			if gone {
				break
			}
			l, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/" + f)
			if err != nil {
				gone = true
				break
			}
			if l != tw.home[f] {
				away = append(away, f+" "+l)
			}
		}
		if gone || threadStart(tid) != start {
			continue // ended meanwhile: what was read may be of a later thread
		}
		tw.mu.Lock()
		tw.threads++
		if len(away) > 0 {
			tw.outside++
			if s, ok := tw.pinned[tid]; !(ok && s == start) && tw.released[tid] <= before {
				tw.bad = append(tw.bad, fmt.Sprintf("thread %d (not pinned) in %s", tid, strings.Join(away, ", ")))
			}
		}
		tw.mu.Unlock()
	}
}

// report fails t if a thread was seen outside home without being pinned,
// or if fewer than min namespace switches happened, and logs the figures.
func (tw *threadWatch) report(t *testing.T, min int) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	for i, b := range tw.bad {
		if i == 10 {
			t.Errorf("... and %d more", len(tw.bad)-10)
			break
		}
		t.Error(b)
	}
	if tw.switches < min {
		t.Errorf("only %d namespace switches (pinned threads), want at least %d", tw.switches, min)
	}
	if tw.samples < 10 {
		t.Errorf("only %d samples of the threads", tw.samples)
	}
	t.Logf("%d namespace switches; %d samples, %d thread namespace sets read, %d outside nsh's namespaces, of them %d not pinned",
		tw.switches, tw.samples, tw.threads, tw.outside, len(tw.bad))
}
