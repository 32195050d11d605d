package builtins

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
	"nsh.dev/nsh/internal/spawn"
)

// state is the per-run state of the builtins: the namespace descriptors the
// run holds and the shell's current context. It lives in the run's
// lifecycle registry, shared by every thread of the run, and its
// descriptors are closed when the run ends (after every object created in
// those namespaces was torn down, since it is registered first).
type state struct {
	reg   *lifecycle.Registry
	tab   *nsctx.Table
	mu    sync.Mutex
	cur   nsctx.Context
	names map[uint64]string // net namespace inode -> ip-netns name
	// named holds the registry entries of the names netns(persist=False)
	// gave in this run, so that netns_delete releases them (issue 18
	// item 5: they stayed, with their reaper steps, until the run's end).
	named map[string]*lifecycle.Entry
	// labels are the names netns_new() and host() gave the namespaces
	// they made (labels.go).
	labels map[[2]uint64]string
	// made holds the namespaces unshare() made, which die with the run
	// (what is set in them needs no restoring).
	made map[[2]uint64]bool
	// unready holds the links brought up whose carrier and IPv6 are made
	// ready before the run's next traffic (carrier.go).
	unready map[*Link]bool
	// reaper undoes what watch was given if nsh dies without its
	// teardown; started by the first watch (reaperErr if it could not).
	reaper    *reaper.Reaper
	reaperErr error
	// ex makes the run's kernel changes (internal/change): it registers
	// their undo and their reaper ops.
	ex *change.Executor
	// lab is the lab the run builds (nsh up), nil for a plain run.
	lab *labRun
	// run and runJ are a plain run's journal (runJournal).
	runOnce sync.Once
	run     *labs.Run
	runJ    *labs.Journal
}

type stateOrErr struct {
	st  *state
	err error
}

// stateOf returns the run's state, and guards the run's registry (starts
// its signal handling) since the caller may create objects that nsh's
// death would leave behind.
func stateOf(th *starlark.Thread) (*state, error) {
	st, err := sharedState(th)
	if err == nil {
		st.reg.Guard()
	}
	return st, err
}

// procStateOf is stateOf for the builtins that start processes, which
// create nothing that outlives nsh unless asked to (detach=True): a child
// has a parent-death signal and the namespaces it is given die with it, so
// they need no signal handling.
func procStateOf(th *starlark.Thread) (*state, error) { return sharedState(th) }

// sharedState returns the run's state, made on first use.
func sharedState(th *starlark.Thread) (*state, error) {
	reg := lifecycle.From(th)
	v := reg.Shared("nsh.builtins.state", func() any {
		tab, err := nsctx.NewTable()
		if err != nil {
			return stateOrErr{err: fmt.Errorf("cannot open nsh's own namespaces: %w", err)}
		}
		st := &state{reg: reg, tab: tab, cur: tab.Initial, names: map[uint64]string{}, named: map[string]*lifecycle.Entry{}, made: map[[2]uint64]bool{},
			labels: map[[2]uint64]string{}}
		st.ex = change.NewExecutor(reg, st.reaperFor)
		if st.lab = labOf(reg); st.lab != nil {
			if err := st.lab.openJournal(st); err != nil {
				tab.Close()
				return stateOrErr{err: fmt.Errorf("lab %q: %w", st.lab.lab.Name, err)}
			}
			st.ex.Observe(st.labNote)
		}
		tab.OnRelease(func(dev, ino uint64) {
			st.mu.Lock()
			delete(st.names, ino)
			delete(st.made, [2]uint64{dev, ino})
			delete(st.labels, [2]uint64{dev, ino})
			st.mu.Unlock()
		})
		// The first entry, so undone last: after everything the reaper
		// was given is undone.
		st.ex.Hold("namespace descriptors", func() error {
			st.stopReaper()
			return tab.Close()
		})
		return stateOrErr{st: st}
	}).(stateOrErr)
	return v.st, v.err
}

// startReaper returns the run's reaper, started by the first call; if
// that fails, the run goes on with its own teardown only, and says so
// once on stderr.
func (st *state) startReaper() *reaper.Reaper {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.reaper == nil && st.reaperErr == nil {
		started := spawn.Starting()
		// Forked from a thread of the pool, which is in nsh's own
		// namespaces (the caller may be on a thread that joined others:
		// a change gives the reaper its ops from where it is made).
		done := make(chan struct{})
		go func() {
			st.reaper, st.reaperErr = reaper.Start()
			close(done)
		}()
		<-done
		if st.reaperErr == nil {
			spawn.Track(st.reaper.Pid(), true) // not an orphan (spawn.KillOrphans)
		}
		started()
		if st.reaperErr != nil {
			fmt.Fprintf(os.Stderr, "nsh: warning: without a reaper, what this run makes outlives a killed nsh: %v\n", st.reaperErr)
		}
	}
	return st.reaper
}

func (st *state) stopReaper() {
	st.mu.Lock()
	r := st.reaper
	st.mu.Unlock()
	if r != nil {
		r.Stop()
		spawn.Track(r.Pid(), false)
	}
	st.endRunJournal()
}

// netnsRef names ns in the equivalent commands of a change: by its
// ip-netns name, as nsh's own (the host's), or by nsh's descriptor.
func (st *state) netnsRef(ns *nsctx.NS) change.Netns {
	if n := st.nameOf(ns); n != "" {
		return change.Netns{Name: n, Label: st.labelOf(ns)}
	}
	if nsctx.Same(ns, st.tab.Initial.Get("net")) {
		return change.Netns{}
	}
	return change.Netns{Fd: ns.Fd(), Label: st.labelOf(ns)}
}

func (st *state) current() nsctx.Context {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.cur
}

func (st *state) setCurrent(c nsctx.Context) {
	st.mu.Lock()
	st.cur = c
	st.mu.Unlock()
}

// markMade records that unshare() made ns.
func (st *state) markMade(ns ...*nsctx.NS) {
	st.mu.Lock()
	for _, n := range ns {
		st.made[[2]uint64{n.Dev, n.Ino}] = true
	}
	st.mu.Unlock()
}

// madeHere reports whether unshare() made ns.
func (st *state) madeHere(ns *nsctx.NS) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.made[[2]uint64{ns.Dev, ns.Ino}]
}

func (st *state) nameOf(n *nsctx.NS) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.names[n.Ino]
}

func (st *state) setName(n *nsctx.NS, name string) {
	st.mu.Lock()
	st.names[n.Ino] = name
	st.mu.Unlock()
}

// enterOf names the namespaces of c that are not nsh's own as nsenter(1)
// options, for the commands of what is done in c: a network namespace by
// its ip-netns name (`ip netns exec NAME` when it is the only one), the
// others by nsh's descriptors, /proc/PID/fd/N.
func (st *state) enterOf(c nsctx.Context) change.Enter {
	var e change.Enter
	named := ""
	for i, k := range nsthread.Kinds {
		n := c[i]
		if n == nil || nsctx.Same(n, st.tab.Initial[i]) {
			continue
		}
		path := change.FdPath(n.Fd())
		if k.Name == "net" {
			if named = st.nameOf(n); named != "" {
				path = netnsDir + "/" + named
			}
		}
		opt := k.Name
		if opt == "mnt" {
			opt = "mount"
		}
		e.Opts = append(e.Opts, "--"+opt+"="+path)
	}
	if len(e.Opts) == 1 && named != "" {
		e.Netns = named
	}
	return e
}

// nsenterShort are nsenter(1)'s options that enter a kind of namespace
// of its --target process.
var nsenterShort = map[string]string{"user": "-U", "cgroup": "-C", "ipc": "-i", "uts": "-u", "net": "-n", "pid": "-p", "time": "-T", "mnt": "-m"}

// enterOfProcess is enterOf(c) for a context that took the kinds joined
// (CLONE_NEW* flags) from process pid: `nsenter -t PID -n -u`, with the
// descriptors of its other kinds that are not nsh's own.
func (st *state) enterOfProcess(c nsctx.Context, pid, joined int) change.Enter {
	e := change.Enter{Opts: []string{"-t", strconv.Itoa(pid)}}
	var other nsctx.Context
	all := 0
	for _, k := range nsthread.Kinds {
		all |= k.Flag
	}
	if joined&all == all {
		return change.Enter{Opts: append(e.Opts, "-a")}
	}
	for i, k := range nsthread.Kinds {
		if joined&k.Flag != 0 {
			e.Opts = append(e.Opts, nsenterShort[k.Name])
		} else {
			other[i] = c[i]
		}
	}
	e.Opts = append(e.Opts, st.enterOf(other).Opts...)
	return e
}

// describe renders the kinds of c that differ from the initial context,
// each by its label (net:h1) or else its inode (net:4026532201), with the
// ip-netns name of an unlabelled net namespace when it has one.
func (st *state) describe(c nsctx.Context) string {
	var parts []string
	netns := ""
	for i, k := range nsthread.Kinds {
		n := c[i]
		if n == nil || nsctx.Same(n, st.tab.Initial[i]) {
			continue
		}
		if l := st.labelOf(n); l != "" {
			parts = append(parts, k.Name+":"+l)
			continue
		}
		if k.Name == "net" {
			if name := st.nameOf(n); name != "" {
				netns = "netns:" + name
			}
		}
		parts = append(parts, fmt.Sprintf("%s:%d", k.Name, n.Ino))
	}
	sort.Strings(parts)
	if netns != "" {
		parts = append([]string{netns}, parts...)
	}
	return strings.Join(parts, " ")
}
