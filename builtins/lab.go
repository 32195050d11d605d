package builtins

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/netnsdir"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/reaper"
	"nsh.dev/nsh/internal/rootless"
)

// labRun is what a run that builds a lab (nsh up) keeps beside the
// run's state: the lab, its journal, and the namespaces to keep.
type labRun struct {
	lab *labs.Lab
	j   *labs.Journal
	// keep are the unnamed network namespaces the run made, kept (bound
	// in the lab's ns/ directory) when the lab is up.
	keep []*nsctx.NS
	// nodes are the named network namespaces the run made or opened,
	// and more their other namespaces, by kind (labKeep).
	nodes map[string]bool
	more  map[string]map[string]*nsctx.NS
	logs  int // daemons given a log so far
	// daemons are the processes started and not waited for.
	daemons []labs.Daemon
}

const labKey = "nsh.builtins.lab"

// SetLab makes the run of reg build lab l (nsh up): every kernel change is
// written to the lab's journal before it is made, beside the reaper, and
// LabUp keeps what the run made once the recipe has finished. Call it
// before the run's first builtin.
func SetLab(reg *lifecycle.Registry, l *labs.Lab) {
	reg.Shared(labKey, func() any {
		return &labRun{lab: l, nodes: map[string]bool{}, more: map[string]map[string]*nsctx.NS{}}
	})
}

// labOf returns the run's lab, nil when the run builds none.
func labOf(reg *lifecycle.Registry) *labRun {
	lr, _ := reg.Shared(labKey, func() any { return (*labRun)(nil) }).(*labRun)
	return lr
}

// LabValue is the predeclared `lab`: its name and the prefix for names in
// shared places (/run/netns, links in the host), both "" outside nsh up.
func LabValue(name, prefix string) starlark.Value {
	return starlarkstruct.FromStringDict(starlark.String("lab"), starlark.StringDict{
		"name":   starlark.String(name),
		"prefix": starlark.String(prefix),
		"up":     starlark.Bool(name != ""),
		"host":   starlark.None,
	})
}

// LabHosts are the predeclared `lab` and `hosts` of a host's part of a
// lab brought up on several hosts (nsh up --host): lab.host is host, and
// hosts maps each host's name to its underlay address (frozen).
func LabHosts(name, prefix, host string, hosts map[string]string) starlark.StringDict {
	d := starlark.NewDict(len(hosts))
	var names []string
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d.SetKey(starlark.String(n), starlark.String(hosts[n]))
	}
	d.Freeze()
	var h starlark.Value = starlark.None
	if host != "" {
		h = starlark.String(host)
	}
	return starlark.StringDict{
		"lab": starlarkstruct.FromStringDict(starlark.String("lab"), starlark.StringDict{
			"name":   starlark.String(name),
			"prefix": starlark.String(prefix),
			"up":     starlark.Bool(name != ""),
			"host":   h,
		}),
		"hosts": d,
	}
}

// daemonStream opens what a daemon of the lab gets as its stream i when
// it would inherit nsh's: /dev/null for stdin, else its log in the lab's
// logs/ directory (both streams in one file).
func (lr *labRun) daemonStream(i int, argv0 string) (*os.File, error) {
	if i == 0 {
		return os.Open(os.DevNull)
	}
	dir := filepath.Join(lr.lab.Dir, "logs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if i == 1 {
		lr.logs++
	}
	path := filepath.Join(dir, fmt.Sprintf("%d-%s.log", lr.logs, filepath.Base(argv0)))
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
}

// labDaemon notes a daemon of the lab.
func (st *state) labDaemon(pid int, argv []string) {
	start, _ := labs.StartTime(pid)
	st.mu.Lock()
	defer st.mu.Unlock()
	d := labs.Daemon{Pid: pid, Start: start, Argv: argv}
	if st.lab.logs > 0 {
		d.Log = filepath.Join(st.lab.lab.Dir, "logs", fmt.Sprintf("%d-%s.log", st.lab.logs, filepath.Base(argv[0])))
	}
	st.lab.daemons = append(st.lab.daemons, d)
}

// labTable predeclares lab, as it is outside nsh up (nsh up replaces it).
func labTable() doc.Table {
	return doc.Table{
		Consts: map[string]starlark.Value{"lab": LabValue("", ""), "hosts": LabHosts("", "", "", nil)["hosts"]},
		Topic: map[string]string{"hosts": `hosts: under nsh up --host NAME=TARGET[,ADDR] ..., a frozen dict of each
host's name to its underlay address (a string), the same on every host;
lab.host is the name of the host running the recipe. {} otherwise. The
recipe builds each host's part and joins them with VXLAN:
  if lab.host == "a":
      h1 = netns("h1")
      vxlan("vx0", 42, remote=hosts["b"], ns=h1, addr="10.9.0.1/24")
See "Across machines" in the README.`, "lab": `The lab a recipe builds under nsh up (see nsh up in nsh -h):
  lab.name    the lab's name ("" outside nsh up)
  lab.prefix  the prefix for names in shared places, /run/netns and links in
              the host ("" unless nsh up --prefix P): netns(lab.prefix + "c1")
  lab.up      True under nsh up
  lab.host    this host's name when nsh up --host brings the lab up on
              several hosts (each runs the recipe and builds its part:
              if lab.host == "a": ...); None otherwise
  hosts       a dict: each host's name -> its underlay address, for
              vxlan(remote=hosts["b"]); {} unless nsh up --host
In a lab everything the recipe makes is kept until nsh down: namespaces,
links, addresses, routes, sysctls, mounts, and processes started without
waiting (its daemons); persist=True and persist() change nothing there,
since nsh down undoes all of it. A lab's named network namespaces are its nodes
(nsh exec LAB NODE -- CMD), with the UTS, IPC and mount namespaces made by
unshare() while the node's network namespace was the current one (or with
it by host(LABEL, kinds=[...])), and the
pid namespace of the first daemon started in the node with one of its own:
  setns(netns(lab.prefix + "r1"))
  unshare("uts", "ipc", "mnt"); hostname("r1")
  clone("sleep infinity", "pid", mount_proc=True, wait=False)
A name the lab did not make is refused. A
daemon's standard streams that it would inherit from nsh are /dev/null
and a log in the lab's directory (/run/nsh/labs/LAB/logs/N-NAME.log).`},
	}
}

// openJournal opens the lab's journal for st, naming namespaces by the
// paths that outlive the run.
func (lr *labRun) openJournal(st *state) error {
	j, err := labs.OpenJournal(lr.lab.Dir, st.durablePath)
	if err != nil {
		return err
	}
	lr.j = j
	return nil
}

// reaperFor is the executor's reaper for st: the run's reaper, and in a
// lab the journal too.
func (st *state) reaperFor() change.Reaper {
	r := st.startReaper()
	j := st.runJournal(r)
	if st.lab != nil {
		j = st.lab.j
	}
	if j == nil {
		if r == nil {
			return nil
		}
		return r
	}
	t := labs.Tee{J: j}
	if r != nil {
		t.R = r
	}
	return t
}

// durablePath names a namespace in a journal by a path that outlives the
// run: "" for nsh's own, /run/netns/NAME for a named network namespace.
func (st *state) durablePath(ns *nsctx.NS) (string, error) {
	if nsctx.Same(ns, st.tab.Initial.Get(ns.Kind.Name)) {
		return "", nil
	}
	if name := st.nameOf(ns); name != "" && ns.Kind.Name == "net" {
		return filepath.Join(netnsDir, name), nil
	}
	return "", fmt.Errorf("%s has no path that outlives the run", ns)
}

// runJournal returns the journal of a plain run (root only), made with
// the reaper r: what the reaper is given is written there too, so that
// nsh gc can undo it if nsh and its reaper are both killed (the OOM
// killer, a container runtime). The reaper is told first to remove the
// journal's directory, last: after a SIGKILL of nsh alone nothing is
// left for gc. A normal end of the run removes it.
func (st *state) runJournal(r *reaper.Reaper) *labs.Journal {
	if st.lab != nil || r == nil || labs.RunsRoot() == "" || rootless.Inner() {
		return nil
	}
	st.runOnce.Do(func() {
		// The reaper learns of the directory first (write ahead): it
		// removes the journal and the directory last of all it undoes.
		id := r.NewID()
		run, err := labs.NewRun(func(dir string) error {
			return r.Set(id, "the run's journal "+dir,
				reaper.Unlink(nil, filepath.Join(dir, "journal"), 0), reaper.Rmdir(nil, dir))
		})
		if err != nil {
			if run == nil {
				r.Del(id)
			}
			return
		}
		j, err := labs.OpenJournal(run.Dir, st.durablePath)
		if err != nil {
			os.RemoveAll(run.Dir)
			r.Del(id)
			return
		}
		j.Lenient = true
		j.Skip(id) // its ids continue after the reaper's
		st.run, st.runJ = run, j
	})
	return st.runJ
}

// endRunJournal removes the run's journal at the end of a run that undid
// everything itself.
func (st *state) endRunJournal() {
	if st.runJ != nil {
		st.runJ.Close()
		os.RemoveAll(st.run.Dir)
	}
}

// labKeep notes namespaces the run made, which a lab keeps.
// A UTS, IPC or mount namespace made (unshare) in a context whose network
// namespace is a node of the lab becomes that node's: nsh exec joins it.
// (A mount namespace file can be bound only by a process in an older
// mount namespace, the kernel's mnt_ns_loop: LabUp binds it from nsh's.)
func (st *state) labKeep(cur nsctx.Context, nss ...*nsctx.NS) {
	if st.lab == nil {
		return
	}
	node := ""
	if net := cur.Get("net"); net != nil {
		node = st.nameOf(net)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, ns := range nss {
		switch ns.Kind.Name {
		case "net":
			st.lab.keep = append(st.lab.keep, ns)
			node = "" // the context's network namespace is a new one
		}
	}
	if node == "" || !st.lab.nodes[node] {
		return
	}
	for _, ns := range nss {
		if k := ns.Kind.Name; k == "uts" || k == "ipc" || k == "mnt" {
			if st.lab.more[node] == nil {
				st.lab.more[node] = map[string]*nsctx.NS{}
			}
			st.lab.more[node][k] = ns
		}
	}
}

// nsGetMntnsID is the nsfs ioctl NS_GET_MNTNS_ID (_IOR(0xb7, 5, __u64),
// Linux 6.8+): the id of the mount namespace of a namespace file.
const nsGetMntnsID = 0x8008b705

// mntnsID returns the id of the mount namespace open on fd.
func mntnsID(fd int) (uint64, error) {
	var id uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), nsGetMntnsID, uintptr(unsafe.Pointer(&id))); e != 0 {
		return 0, e
	}
	return id, nil
}

// newerMountNS makes sure that the mount namespace this thread has just
// unshared can be kept by LabUp's bind mount of its file from nsh's own
// (own). The kernel binds a mount namespace file only when the
// namespace's id is above the binder's (mnt_ns_loop, against cycles), and
// since Linux 6.18 namespace ids come from per-CPU batches: a namespace
// made on one CPU can have a lower id than an older one made on another,
// as when nsh itself runs in a recent mount namespace (unshare -m, a
// container, a rootless lab's keeper). Such a namespace is made again, on
// each CPU nsh may use in turn, until its id is above own's: the CPU that
// made own hands out higher ids from then on. A kernel without the ids
// (before 6.8) numbers mount namespaces in order: nothing to do.
func newerMountNS(own *nsctx.NS) error {
	if own == nil {
		return nil
	}
	ownID, err := mntnsID(own.Fd())
	if err != nil {
		return nil
	}
	self := func() (uint64, error) {
		fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, nserr.New("open", "/proc/thread-self/ns/mnt", err)
		}
		defer unix.Close(fd)
		id, err := mntnsID(fd)
		if err != nil {
			return 0, nserr.New("ioctl NS_GET_MNTNS_ID", "/proc/thread-self/ns/mnt", err)
		}
		return id, nil
	}
	id, err := self()
	if err != nil || id > ownID {
		return err
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return nserr.New("sched_getaffinity", "", err)
	}
	defer unix.SchedSetaffinity(0, &allowed) // the thread is discarded anyway
	// The CPUs nsh may use first, then the others (nsh may be confined
	// to CPUs whose batches are all below own's; the thread is nsh's
	// for this one call, and moving it is allowed unless a cpuset forbids).
	for _, mine := range []bool{true, false} {
		for cpu := 0; cpu < len(allowed)*64; cpu++ {
			if allowed.IsSet(cpu) != mine {
				continue
			}
			var one unix.CPUSet
			one.Set(cpu)
			if unix.SchedSetaffinity(0, &one) != nil {
				continue // offline, or not in nsh's cpuset
			}
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return nserr.New("unshare", "mnt", err)
			}
			if id, err = self(); err != nil || id > ownID {
				return err
			}
		}
	}
	return fmt.Errorf("a new mount namespace gets no id above nsh's own (%d) on any CPU: the lab could not keep it (the kernel binds a mount namespace file only from a namespace of a lower id)", ownID)
}

// labNode notes a named network namespace of the lab. A name the run
// did not make (opened) is refused: it is another lab's, or someone's.
func (st *state) labNode(name string, opened bool) error {
	if st.lab == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if opened && !st.lab.nodes[name] {
		owner := "not a lab's"
		if ls, err := labs.List(); err == nil {
			for _, l := range ls {
				for _, n := range l.Nodes {
					if n.Name == name {
						owner = fmt.Sprintf("lab %q's", l.Name)
					}
				}
			}
		}
		return nserr.Explain(unix.EEXIST, "network namespace %q exists (%s): a lab makes its own; nsh up --prefix P gives this lab's names a prefix (lab.prefix)", name, owner)
	}
	st.lab.nodes[name] = true
	return nil
}

// LabUp finishes the lab of the run of reg once its recipe has run: the
// unnamed network namespaces the run made are bound in the lab's ns/
// directory (written ahead, like every change), the journal is closed to
// the run's own bookkeeping, every change is kept (not undone at the end
// of the run), the reaper is stopped, and the lab is marked up.
func LabUp(th *starlark.Thread, reg *lifecycle.Registry) error {
	lr := labOf(reg)
	if lr == nil {
		return errors.New("the run builds no lab")
	}
	st, err := sharedState(th)
	if err != nil {
		return err
	}
	nsDir := filepath.Join(lr.lab.Dir, "ns")
	if len(lr.keep) > 0 {
		if err := os.MkdirAll(nsDir, 0o700); err != nil {
			return err
		}
	}
	for _, ns := range lr.keep {
		if st.nameOf(ns) != "" {
			continue // named: kept by its name
		}
		if err := st.keepNS(th, ns, filepath.Join(nsDir, fmt.Sprintf("%s-%d", ns.Kind.Name, ns.Ino))); err != nil {
			return err
		}
	}
	var nodes []string
	for n := range lr.nodes {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	lr.lab.Nodes = nil
	for _, n := range nodes {
		node := labs.Node{Name: n, Net: filepath.Join(netnsDir, n)}
		for kind, ns := range lr.more[n] {
			path := filepath.Join(nsDir, fmt.Sprintf("%s-%d", kind, ns.Ino))
			if err := os.MkdirAll(nsDir, 0o700); err != nil {
				return err
			}
			if err := st.keepNS(th, ns, path); err != nil {
				return err
			}
			if node.More == nil {
				node.More = map[string]string{}
			}
			node.More[kind] = path
		}
		lr.lab.Nodes = append(lr.lab.Nodes, node)
	}
	lr.lab.Daemons = nil
	for _, d := range lr.daemons {
		if labs.Alive(d.Pid, d.Start) {
			lr.lab.Daemons = append(lr.lab.Daemons, d)
		}
	}
	if err := st.labInits(lr.lab); err != nil {
		return err
	}
	if err := lr.j.Freeze(); err != nil {
		return fmt.Errorf("writing the journal of lab %q: %w", lr.lab.Name, err)
	}
	st.ex.KeepAll()
	st.stopReaper()
	lr.lab.State = labs.Up
	lr.lab.Pid, lr.lab.PidStart = 0, 0
	return lr.lab.Save()
}

// labInits gives each node of l the first of l's daemons that runs in the
// node's network namespace with a pid namespace of its own (clone(...,
// "pid", wait=False)): nsh exec joins the node's pid namespace through it,
// and its UTS, IPC and mount namespaces where they are not the node's (a
// daemon with mount_proc=True has a mount namespace of its own, with its
// /proc).
func (st *state) labInits(l *labs.Lab) error {
	if len(l.Daemons) == 0 {
		return nil
	}
	ino := func(path string) (unix.Stat_t, error) {
		var s unix.Stat_t
		err := unix.Stat(path, &s)
		return s, err
	}
	same := func(a, b unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }
	initial := func(kind string) (unix.Stat_t, bool) {
		ns := st.tab.Initial.Get(kind)
		if ns == nil {
			return unix.Stat_t{}, false
		}
		return unix.Stat_t{Dev: ns.Dev, Ino: ns.Ino}, true
	}
	ownPid, ok := initial("pid")
	if !ok {
		return nil
	}
	for i := range l.Nodes {
		n := &l.Nodes[i]
		net, err := ino(n.Net)
		if err != nil {
			continue // gone already: nsh status says so
		}
		for _, d := range l.Daemons {
			proc := fmt.Sprintf("/proc/%d/ns/", d.Pid)
			dnet, err1 := ino(proc + "net")
			dpid, err2 := ino(proc + "pid")
			if err1 != nil || err2 != nil || !same(dnet, net) || same(dpid, ownPid) {
				continue // gone, another node's, or no pid namespace of its own
			}
			in := &labs.NodeInit{Daemon: d, Kinds: []string{"pid"}}
			for _, kind := range []string{"uts", "ipc", "mnt"} {
				base, ok := initial(kind)
				if p := n.More[kind]; p != "" {
					s, err := ino(p)
					if err != nil {
						return nserr.New("stat", strconv.Quote(p), err)
					}
					base, ok = s, true
				}
				if s, err := ino(proc + kind); err == nil && ok && !same(s, base) {
					in.Kinds = append(in.Kinds, kind)
				}
			}
			if labs.Alive(d.Pid, d.Start) { // the namespaces read were its
				n.Init = in
				if !pidNSInit(d.Pid) {
					fmt.Fprintf(os.Stderr, "nsh: warning: lab %q: node %s's pid namespace has nsh up's process as its init (unshare(\"pid\")): it ends with nsh up, and daemon %d (%s) with it; clone(..., \"pid\", wait=False) starts a daemon that is the init of a pid namespace of its own\n",
						l.Name, n.Name, d.Pid, strings.Join(d.Argv, " "))
				}
				break
			}
		}
	}
	return nil
}

// pidNSInit reports whether process pid is the init (pid 1) of its pid
// namespace: the last field of NSpid in /proc/PID/status.
func pidNSInit(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" {
			return f[len(f)-1] == "1"
		}
	}
	return false
}

// keepNS binds ns on path, through the executor (journal, reaper, trace).
func (st *state) keepNS(th *starlark.Thread, ns *nsctx.NS, path string) error {
	rec := &change.NsKeep{Kind: ns.Kind.Name, Fd: ns.Fd(), Path: path}
	rec.What = fmt.Sprintf("%s kept on %s", ns, path)
	var mntID, ino uint64
	rec.Apply = func() error {
		var err error
		mntID, ino, err = netnsdir.Publish(path, ns.Fd(), func(dirMnt, ino uint64) {
			rec.Intend(reaper.UmountNew(nil, path, dirMnt), reaper.Unlink(nil, path, ino))
		})
		if errors.Is(err, unix.EEXIST) {
			return nserr.Explain(unix.EEXIST, "%s exists", path)
		}
		if errors.Is(err, unix.EINVAL) && ns.Kind.Name == "mnt" {
			return nserr.Explain(unix.EINVAL, "binding %s on %s: the kernel binds a mount namespace file only from a mount namespace of a lower id (mnt_ns_loop), and nsh's own is not", ns, path)
		}
		return err
	}
	rec.Undo = func() (bool, error) {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil || errors.Is(err, unix.EINVAL) {
			err = os.Remove(path)
		}
		return true, err
	}
	rec.Reap = func() []reaper.Op {
		return []reaper.Op{reaper.Umount(nil, path, mntID), reaper.Unlink(nil, path, ino)}
	}
	_, err := st.ex.Do(th, rec)
	return err
}

// labNote writes to the lab's journal what the applied record r built
// (a labs.Note), for nsh status to compare with the kernel; the func it
// returns withdraws the note when the change is undone while the recipe
// runs. An unnamed network namespace r names by nsh's descriptor is named
// in the note by the path LabUp keeps it on.
func (st *state) labNote(r change.Record) func() {
	kind, nss, ok := labs.Noted(r)
	if !ok {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nsh: warning: lab %q: nsh status will not check %s: %v\n", st.lab.lab.Name, kind, err)
		return nil
	}
	j := st.lab.j
	n := labs.Note{ID: j.NewID(), Kind: kind, Rec: b}
	for _, ns := range nss {
		if ns.Fd <= 0 {
			continue
		}
		var s unix.Stat_t
		if unix.Fstat(ns.Fd, &s) != nil {
			continue
		}
		if n.NS == nil {
			n.NS = map[string]string{}
		}
		n.NS[strconv.Itoa(ns.Fd)] = filepath.Join(st.lab.lab.Dir, "ns", fmt.Sprintf("net-%d", s.Ino))
	}
	if err := j.Note(n); err != nil {
		fmt.Fprintf(os.Stderr, "nsh: warning: lab %q: writing the journal: %v\n", st.lab.lab.Name, err)
		return nil
	}
	return func() { j.Note(labs.Note{ID: n.ID, Gone: true}) }
}
