package builtins

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/mountinfo"
	"nsh.dev/nsh/internal/mountopt"
	"nsh.dev/nsh/internal/netnsdir"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
	"nsh.dev/nsh/internal/spawn"
)

func namespaceTable() doc.Table {
	consts := map[string]starlark.Value{}
	for _, k := range nsthread.Kinds {
		consts[k.Const] = starlark.MakeInt(k.Flag)
	}
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "namespaces", Sig: "namespaces(target=None)", Impl: namespacesBuiltin, Doc: `Returns the current context, or the namespaces of target, as nsh.namespaces.
target is a pid, a process, a namespaces value, a namespace file path or an
ip-netns name. Example: namespaces().net, namespaces(1).uts.`},
			{Name: "unshare", Sig: `unshare(*kinds, propagation="private", lo=True, uidmap=None, gidmap=None, monotonic=None, boottime=None)`, Impl: unshareBuiltin, Doc: `Creates new namespaces and moves the current context into them.
To make namespaces for a topology without moving (and with a label), use
netns_new() or host().
kinds are /proc/PID/ns names ("net", "uts", ...) or CLONE_NEW* constants,
which may be OR-ed: unshare("net", "uts") == unshare(CLONE_NEWNET|CLONE_NEWUTS).
Returns the new context as nsh.namespaces. As with unshare(1), a new mount
namespace is made recursively private first so nothing propagates back to
the host; propagation="slave", "shared" or "unchanged" chooses otherwise.
A new network namespace gets its loopback brought up unless lo=False.
The namespaces live as long as the run (they are held by descriptor) unless
something else keeps them. Kinds that a multi-threaded process cannot
unshare itself (user, pid, time) are created by a helper process.
  user   the caller is mapped to root (as unshare --map-root-user) unless
         uidmap=/gidmap= give lists of (inside, outside, count) tuples;
         kinds created with it, or later in its context, are owned by it;
         processes started later in its context run as uid/gid 0 there
         when 0 is mapped (see Identity in help(clone)).
  pid    nsh starts nsh-init as PID 1 of the new namespace: it reaps
         orphans and lives until the end of the run (or nsh's death), and
         the whole namespace dies with it. Processes started afterwards in
         the context get pids 2, 3, ... (clone(argv, "pid") instead makes
         argv itself PID 1 of a namespace of its own).
  time   monotonic= and boottime= set the clock offsets in seconds; they
         apply to processes started afterwards in the context.`},
			{Name: "setns", Sig: "setns(target, *kinds)", Impl: setnsBuiltin, Doc: `Moves the current context into existing namespaces; returns the previous one.
target is an nsh.namespaces or nsh.namespace value, a process, a pid, a path
(/proc/PID/ns/net, or a file a namespace was bind-mounted on) or the name of
an ip-netns namespace. kinds limits which kinds are joined (default: all the
target has). prev = setns(x) ... setns(prev) returns to where you were.`},
			{Name: "netns", Sig: "netns(name, persist=True, lo=True)", Impl: netnsBuiltin, Doc: `Creates, or opens if it exists, a named network namespace, as "ip netns add NAME".
It is bind-mounted on /run/netns/NAME so "ip netns exec NAME ..." and
"ip -n NAME ..." see it. It persists after the script unless persist=False,
in which case the run that created it deletes it at its end (as "ip netns
del" would), if the name still holds it; a run that only opened it leaves
it. It does not move the current context: use setns(netns("blue")) or ns=.
A namespace it creates has its loopback up unless lo=False, before the
name appears. Runs asking for one name at once agree: one creates it, the
others wait for it and open it. An empty /run/netns/NAME with no namespace
on it (its maker was killed while making it) is reported, not reused:
netns_delete(NAME) removes it.`},
			{Name: "netns_delete", Sig: "netns_delete(name, missing_ok=False)", Impl: netnsDeleteBuiltin, Doc: `Deletes a named network namespace, as "ip netns del NAME".
The namespace itself goes away once nothing else holds it. It also removes
a stale entry (an empty file with no namespace on it); an entry another run
is making is deleted once made. A name that does not exist is an error
unless missing_ok=True, which makes a clean start one line:
  netns_delete("blue", missing_ok=True)
  blue = netns("blue")`},
			{Name: "netns_list", Sig: "netns_list()", Impl: netnsListBuiltin, Doc: `Lists the named network namespaces, as "ip netns list": their names, sorted.
The names are the entries of /run/netns in the current context's mount
namespace (what netns(), netns_delete() and "ip netns" use), as strings; a
stale entry (no namespace on it, see netns()) is listed too, so that
netns_delete() can clear it. ip's "(id: N)" is left out: it is relative to
the namespace asking. netns(name) opens one.
Example: if "blue" not in netns_list(): netns("blue")
         for n in netns_list(): print(n, netns(n))`},
			{Name: "hostname", Sig: "hostname(name=None, ns=None)", Impl: utsBuiltin(true), Doc: `Returns, or sets when name is given, the hostname of a UTS namespace.
ns is a target as for setns(); default the current context. In a UTS
namespace that outlives the run (nsh's own, one setns() joined; not one
unshare() made) the old name is restored at the end of the run, even if
nsh is killed, unless the name was changed again since.`},
			{Name: "domainname", Sig: "domainname(name=None, ns=None)", Impl: utsBuiltin(false), Doc: `Returns, or sets when name is given, the NIS domain name of a UTS namespace.
ns is a target as for setns(); default the current context. Restored at the
end of the run as for hostname().`},
			{Name: "netns_new", Sig: "netns_new(label, lo=True)", Impl: netnsNewBuiltin, Doc: netnsNewDoc},
			{Name: "host", Sig: `host(label, kinds=["net"], lo=True, hostname=None)`, Impl: hostBuiltin, Doc: hostDoc},
		},
		Types:  []doc.Type{namespaceType.Type(), namespacesType.Type()},
		Consts: consts,
		Topic: map[string]string{
			"kinds": `Namespace kinds: mnt, uts, ipc, pid, net, user, cgroup, time (the names in
/proc/PID/ns), or the constants CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC,
CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUSER, CLONE_NEWCGROUP, CLONE_NEWTIME,
which may be OR-ed together as in C. unshare() and clone() also take a
list of them: unshare(["net", "uts"]), clone(argv, kinds=["pid", "mnt"]).`,
		},
	}
}

// parseKinds turns kind arguments (names or OR-ed CLONE_NEW* ints, or
// lists of them) into flags. It fails on anything unknown before any syscall is made.
func parseKinds(args starlark.Tuple) (int, error) {
	flags := 0
	for _, a := range args {
		switch a := a.(type) {
		case *starlark.List, starlark.Tuple:
			// A list of kinds, as clone(argv, kinds=[...]) takes.
			var inner starlark.Tuple
			it := starlark.Iterate(a)
			var x starlark.Value
			for it.Next(&x) {
				if _, nested := x.(starlark.Indexable); nested && x.Type() != "string" {
					it.Done()
					return 0, fmt.Errorf("namespace kind must be a string or CLONE_NEW* int, not %s (in %s)", x.Type(), a)
				}
				inner = append(inner, x)
			}
			it.Done()
			f, err := parseKinds(inner)
			if err != nil {
				return 0, err
			}
			flags |= f
		case starlark.String:
			k, ok := nsthread.KindByName(string(a))
			if !ok {
				if k2, ok2 := kindByConst(string(a)); ok2 {
					k, ok = k2, true
				}
			}
			if !ok {
				return 0, fmt.Errorf("unknown namespace kind %q (kinds: mnt uts ipc pid net user cgroup time)", string(a))
			}
			flags |= k.Flag
		case starlark.Int:
			v, ok := a.Int64()
			if !ok || v <= 0 || int(v)&^nsthread.AllFlags != 0 {
				return 0, fmt.Errorf("unknown namespace flags %s (use CLONE_NEW* constants)", a)
			}
			flags |= int(v)
		default:
			return 0, fmt.Errorf("namespace kind must be a string or CLONE_NEW* int, not %s", a.Type())
		}
	}
	return flags, nil
}

func kindByConst(s string) (nsthread.Kind, bool) {
	for _, k := range nsthread.Kinds {
		if k.Const == s {
			return k, true
		}
	}
	return nsthread.Kind{}, false
}

// contextTarget is implemented by values that name a whole context, such as
// processes.
type contextTarget interface {
	targetContext(st *state) (nsctx.Context, error)
}

// resolveTarget turns a target argument into a context and the flags of
// the kinds the target actually names (a single namespace names one kind).
func resolveTarget(st *state, v starlark.Value) (nsctx.Context, int, error) {
	cur := st.current()
	switch v := v.(type) {
	case *Namespaces:
		return v.ctx, nsthread.AllFlags, nil
	case *Namespace:
		return cur.With(v.ns), v.ns.Kind.Flag, nil
	case contextTarget:
		c, err := v.targetContext(st)
		return c, nsthread.AllFlags, err
	case starlark.Int:
		pid, err := targetPid(v)
		if err != nil {
			return cur, 0, err
		}
		c, err := st.tab.OpenProc(pid)
		return c, nsthread.AllFlags, err
	case starlark.String:
		s := string(v)
		isPath, err := parseTargetString(s)
		if err != nil {
			return cur, 0, err
		}
		if isPath {
			n, err := st.tab.Open(s, "")
			if err != nil {
				return cur, 0, err
			}
			return cur.With(n), n.Kind.Flag, nil
		}
		n, err := st.openNetns(s, nil)
		if errors.Is(err, unix.ENOENT) {
			return cur, 0, fmt.Errorf("no network namespace named %q (%s does not exist)", s, filepath.Join(netnsDir, s))
		}
		if err != nil {
			return cur, 0, err
		}
		st.setName(n, s)
		return cur.With(n), n.Kind.Flag, nil
	}
	return cur, 0, fmt.Errorf("cannot use %s as a namespace target (want namespaces, namespace, process, pid, path or netns name)", v.Type())
}

// targetPid reads an int namespace target: a pid, at least 1.
func targetPid(v starlark.Int) (int, error) {
	pid, ok := v.Int64()
	if !ok || pid <= 0 {
		return 0, fmt.Errorf("invalid pid %s", v)
	}
	return int(pid), nil
}

// parseTargetString reads a string namespace target: a path to a
// namespace file when it begins with '/' or '.' (isPath), else the name of
// a network namespace under /run/netns, checked by checkNetnsName.
func parseTargetString(s string) (isPath bool, err error) {
	if s == "" {
		return false, fmt.Errorf("empty namespace target")
	}
	if err := checkNoNUL("namespace target", s); err != nil {
		return false, err
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return true, nil
	}
	return false, checkNetnsName(s)
}

// contextOf resolves an optional ns= argument: None is the current
// context, anything else a target as for setns().
func (st *state) contextOf(target starlark.Value) (nsctx.Context, error) {
	if target == nil || target == starlark.None {
		return st.current(), nil
	}
	ctx, _, err := resolveTarget(st, target)
	return ctx, err
}

func namespacesBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "target?", &target); err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	if target == starlark.None {
		return &Namespaces{ctx: st.current(), st: st}, nil
	}
	c, _, err := resolveTarget(st, target)
	if err != nil {
		return nil, err
	}
	return &Namespaces{ctx: c, st: st}, nil
}

// threadKinds are the kinds a pinned thread can unshare by itself.
const threadKinds = unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP

func unshareBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	opts := unshareOpts{propagation: "private", lo: true}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	if err := opts.unpack(st, fn.Name(), kwargs); err != nil {
		return nil, err
	}
	flags, err := parseKinds(args)
	if err != nil {
		return nil, err
	}
	if flags == 0 {
		return nil, fmt.Errorf("no namespace kind given (e.g. unshare(\"net\"))")
	}
	if err := opts.check(flags); err != nil {
		return nil, err
	}
	if _, err := mountopt.Propagation(opts.propagation, true); err != nil {
		return nil, err
	}
	cur := st.current()
	created, err := st.unshareNew(th, cur, flags, &opts, "")
	if err != nil {
		return nil, err
	}
	next := cur.With(created...)
	st.setCurrent(next)
	return &Namespaces{ctx: next, st: st}, nil
}

// unshareNew creates namespaces of the kinds in flags, made from the
// context cur (which it does not move), as one change through the
// executor; label, if not "", is given to each of them before the change
// is traced (see netns_new and host).
func (st *state) unshareNew(th *starlark.Thread, cur nsctx.Context, flags int, opts *unshareOpts, label string) ([]*nsctx.NS, error) {
	var created []*nsctx.NS
	userForeign := !nsctx.Same(cur.Get("user"), st.tab.Initial.Get("user"))
	rec := &change.Unshare{Opts: unshareFlags(flags, opts.propagation, opts.uidmap, opts.gidmap, false)}
	if opts.timeOffsets {
		rec.Opts = append(rec.Opts, "--monotonic="+change.Seconds(opts.monotonic), "--boottime="+change.Seconds(opts.boottime))
	}
	rec.What, rec.Aside = "namespaces "+nsthread.FlagNames(flags), true
	if label != "" {
		rec.What = fmt.Sprintf("namespaces %s of %q", nsthread.FlagNames(flags), label)
	}
	rec.Apply = func() error {
		var err error
		if flags&^threadKinds == 0 && !userForeign && opts.processOnly() {
			created, err = st.unshareOnThread(cur, flags, opts.propagation, opts.lo)
		} else {
			var init *spawn.Child
			if created, init, err = st.unshareViaProcess(cur, flags, opts); err != nil {
				return err
			}
			if init != nil {
				rec.Init = init.Pid
				rec.What = fmt.Sprintf("pid namespace init %d", init.Pid)
				rec.Undo = func() (bool, error) { return true, endInit(init) }
			}
			if flags&unix.CLONE_NEWNET != 0 {
				if err = st.ensureNetns(nsctx.Context{}.With(created...).Get("net"), opts.lo); err != nil {
					if init != nil {
						err = errors.Join(err, endInit(init))
					}
					return err
				}
			}
		}
		if err != nil {
			return err
		}
		st.markMade(created...)
		if label != "" {
			st.setLabel(label, created...)
		}
		for _, n := range created {
			held := n.String()
			if label != "" {
				held = st.nsName(n) + " " + held[len(n.Kind.Name)+1:]
			}
			rec.Held = append(rec.Held, fmt.Sprintf("%s as /proc/%d/fd/%d", held, os.Getpid(), n.Fd()))
			if n.Kind.Name == "net" && opts.lo {
				rec.LoUp, rec.Net = true, st.netnsRef(n)
			}
		}
		return nil
	}
	if _, err := st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	return created, nil
}

// unshareOnThread creates namespaces on a pinned thread that has joined
// cur, and keeps them by descriptor.
func (st *state) unshareOnThread(cur nsctx.Context, flags int, propagation string, lo bool) ([]*nsctx.NS, error) {
	var created []*nsctx.NS
	unshare := nsthread.Unshare
	if flags == unix.CLONE_NEWNET {
		// Network namespaces alone are made on the run's thread for them.
		unshare = func(joins []nsthread.Join, flags int, fn func() error) error {
			return netOf(st).maker.Do(joins, func() error {
				if err := unix.Unshare(flags); err != nil {
					return nserr.New("unshare", nsthread.FlagNames(flags), err)
				}
				return fn()
			})
		}
	}
	err := unshare(st.tab.Joins(cur), flags, func() error {
		if flags&unix.CLONE_NEWNS != 0 && st.lab != nil {
			if err := newerMountNS(st.tab.Initial.Get("mnt")); err != nil {
				return err
			}
		}
		if flags&unix.CLONE_NEWNS != 0 {
			if err := setPropagation("/", propagation); err != nil {
				return err
			}
		}
		var err error
		if created, err = st.tab.OpenThreadSelf(flags); err != nil {
			return err
		}
		st.labKeep(cur, created...)
		if flags&unix.CLONE_NEWNET != 0 {
			return st.setupNetns(nsctx.Context{}.With(created...).Get("net"), lo, true)
		}
		return nil
	})
	return created, err
}

// setPropagation applies a propagation to target and everything below it.
func setPropagation(target, propagation string) error {
	pflag, err := mountopt.Propagation(propagation, true)
	if err != nil {
		return err
	}
	if pflag == 0 { // "unchanged"
		return nil
	}
	return nserr.New("mount", "--make-r"+propagation+" "+target, unix.Mount("none", target, "", pflag|unix.MS_REC, ""))
}

func setnsBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("unexpected keyword argument %s", kwargs[0][0])
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("missing argument for target")
	}
	want, err := parseKinds(args[1:])
	if err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	target, has, err := resolveTarget(st, args[0])
	if err != nil {
		return nil, err
	}
	if want == 0 {
		want = has
	} else if want&^has != 0 {
		return nil, fmt.Errorf("target %s has no %s namespace to join (it is %s)", args[0], nsthread.FlagNames(want&^has), nsthread.FlagNames(has))
	}
	prev := st.current()
	next := prev
	for i, k := range nsthread.Kinds {
		if want&k.Flag != 0 {
			next[i] = target[i]
		}
	}
	// Nothing in the kernel changes, but the trace says where what
	// follows runs.
	rec := &change.Setns{}
	pid := 0
	switch t := args[0].(type) {
	case *Process:
		pid = t.pid
	case starlark.Int:
		if p, ok := t.Int64(); ok && p > 0 {
			pid = int(p)
		}
	}
	if pid > 0 {
		rec.Enter = st.enterOfProcess(next, pid, want)
	} else {
		rec.Enter = st.enterOf(next)
	}
	rec.What, rec.Aside = "setns", true
	rec.Apply = func() error {
		// Try the join once on a throwaway thread, so a refused setns is
		// reported here and not later by whatever acts in the context.
		// Back in nsh's own namespaces there is nothing to try.
		if joins := st.tab.Joins(next); len(joins) > 0 {
			return nsthread.Do(joins, func() error { return nil })
		}
		return nil
	}
	if _, err := st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	st.setCurrent(next)
	return &Namespaces{ctx: prev, st: st}, nil
}

const netnsDir = netnsdir.Dir

func checkNetnsName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("invalid network namespace name %q (no '/', not empty, at most 255 bytes)", name)
	}
	return nil
}

func netnsBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	persist, lo := true, true
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "persist?", &persist, "lo?", &lo); err != nil {
		return nil, err
	}
	if err := checkNetnsName(name); err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	ns, _, err := st.makeNetns(th, name, persist, lo)
	if err != nil {
		return nil, err
	}
	return &Namespace{ns: ns, st: st}, nil
}

// makeNetns creates, or opens if it exists (opened), the network
// namespace named name, as netns() does.
func (st *state) makeNetns(th *starlark.Thread, name string, persist, lo bool) (ns *nsctx.NS, opened bool, err error) {
	// A lab keeps what it names until nsh down, which deletes it.
	persist = persist && st.lab == nil
	path := filepath.Join(netnsDir, name)
	var fresh *nsctx.NS
	var mntID, ino uint64
	cur := st.current()
	rec := &change.NetnsAdd{Name: name, LoUp: lo}
	rec.What = fmt.Sprintf("netns %q", name)
	rec.Apply = func() error {
		// On the run's network-namespace thread when the context differs from
		// nsh's own in net at most; otherwise on a thread of its own. The
		// entry is looked up and made in the context's mount namespace.
		err := netOf(st).maker.Do(st.tab.Joins(cur), func() error {
			if err := st.prepareNetnsDir(cur.Get("mnt")); err != nil {
				return err
			}
			ns, err = st.openNetns(name, func() (*nsctx.NS, error) {
				// The namespace is made and set up before it gets its
				// name (once, however often another run is first), so
				// that a SIGKILL can leave an empty entry only between
				// two system calls, and a run that opens the name finds
				// the namespace ready.
				if fresh == nil {
					if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
						return nil, nserr.New("unshare", "net", err)
					}
					made, err := st.tab.OpenThreadSelf(unix.CLONE_NEWNET)
					if err != nil {
						return nil, err
					}
					if err := st.setupNetns(made[0], lo, !persist); err != nil {
						return nil, err
					}
					fresh = made[0]
				}
				mntID, ino, err = netnsdir.Publish(path, fresh.Fd(), func(dirMnt, ino uint64) {
					// Until the name is finished, even a kept one.
					mnt := cur.Get("mnt")
					rec.Intend(reaper.UmountNew(mnt, path, dirMnt), reaper.Unlink(mnt, path, ino))
				})
				return fresh, err
			})
			return err
		})
		if err != nil {
			return err
		}
		st.setName(ns, name)
		rec.Opened = ns != fresh
		if err := st.labNode(name, rec.Opened); err != nil {
			return err
		}
		if ns == fresh && !persist {
			// Only the run that made the namespace deletes its name, and only
			// while the name is still this namespace's.
			want := netnsdir.Ident{Dev: ns.Dev, Ino: ns.Ino}
			rec.Undo = func() (bool, error) { return true, removeNetns(st, cur, name, &want) }
			rec.Reap = func() []reaper.Op {
				return []reaper.Op{reaper.Umount(cur.Get("mnt"), path, mntID), reaper.Unlink(cur.Get("mnt"), path, ino)}
			}
		} else {
			rec.Kept = ns == fresh
		}
		return nil
	}
	if _, err := st.ex.Do(th, rec); err != nil {
		return nil, false, err
	}
	return ns, rec.Opened, nil
}

// unbackedGrace is how long an entry of /run/netns may be an empty,
// unlocked file before nsh calls it stale: a tool that takes no lock ("ip
// netns add") creates the file, then unshares, then mounts.
const unbackedGrace = time.Second

// openNetns opens the network namespace named name, from the calling
// thread's mount namespace. When there is no entry, it calls create (if not
// nil), which returns the namespace it gave the name, or an EEXIST error if
// another run gave it first; without create the error has ENOENT. An entry
// that another run is making is waited for (internal/netnsdir); an entry
// that stays an empty file no namespace is mounted on is reported as stale,
// with the way to remove it.
func (st *state) openNetns(name string, create func() (*nsctx.NS, error)) (*nsctx.NS, error) {
	path := filepath.Join(netnsDir, name)
	start := time.Now()
	var unbacked time.Time
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 5*time.Millisecond) {
		n, err := st.tab.Open(path, "net")
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, unix.ENOENT):
			if create == nil {
				return nil, err
			}
			if n, err = create(); !errors.Is(err, unix.EEXIST) {
				return n, err
			}
			continue // another run was first: open its namespace
		case !errors.Is(err, nsctx.ErrNotNamespace):
			return nil, err
		}
		err = netnsdir.Inspect(path)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			continue // mounted or removed meanwhile: look again
		case errors.Is(err, netnsdir.ErrMaking):
			if time.Since(start) > netnsdir.LockWait {
				return nil, fmt.Errorf("network namespace %q: %w for over %v (a stopped process?)", name, err, netnsdir.LockWait)
			}
		case errors.Is(err, netnsdir.ErrUnbacked):
			if unbacked.IsZero() {
				unbacked = time.Now()
			} else if time.Since(unbacked) > unbackedGrace {
				return nil, fmt.Errorf("network namespace %q: %w, left by a process killed while making it; remove it with netns_delete(%q) (or \"ip netns del %s\") and try again", name, err, name, name)
			}
		default:
			return nil, fmt.Errorf("network namespace %q: %w", name, err)
		}
		time.Sleep(pause)
	}
}

// prepareNetnsDir makes /run/netns exist and be a shared mount of its own,
// as iproute2 does (netnsdir.Prepare). It does so once per run in each
// mount namespace (mnt, the one the calling thread is in): making a mount
// shared walks every mount below it, so doing it for each of N namespaces
// would cost O(N²).
func (st *state) prepareNetnsDir(mnt *nsctx.NS) error {
	n := netOf(st)
	key := [2]uint64{mnt.Dev, mnt.Ino}
	n.mu.Lock()
	done := n.netnsDirs[key]
	n.mu.Unlock()
	if done {
		return nil
	}
	if err := netnsdir.Prepare(); err != nil {
		return err
	}
	n.mu.Lock()
	n.netnsDirs[key] = true
	n.mu.Unlock()
	return nil
}

// removeNetns deletes the entry name in ctx's mount namespace, as "ip netns
// del" does; with want, only while the entry is still that namespace.
func removeNetns(st *state, ctx nsctx.Context, name string, want *netnsdir.Ident) error {
	path := filepath.Join(netnsDir, name)
	// In nsh's own mount namespace (the usual case) no thread hop is needed.
	return st.doIn(st.tab.Joins(ctx), func() error { return netnsdir.Remove(path, want) })
}

func netnsDeleteBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var missingOK bool
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "missing_ok?", &missingOK); err != nil {
		return nil, err
	}
	if err := checkNetnsName(name); err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(netnsDir, name)); err != nil {
		if missingOK && errors.Is(err, fs.ErrNotExist) {
			return starlark.None, nil
		}
		return nil, fmt.Errorf("no network namespace named %q (netns_list() lists them; missing_ok=True accepts none)", name)
	}
	return starlark.None, removeNetns(st, st.current(), name, nil)
}

func netnsListBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs); err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	var names []string
	err = st.doIn(st.tab.Joins(st.current()), func() error {
		es, err := os.ReadDir(netnsDir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no named namespace yet
		}
		if err != nil {
			return nserr.New("read", netnsDir, err)
		}
		for _, e := range es {
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	out := make([]starlark.Value, len(names))
	for i, n := range names {
		out[i] = starlark.String(n)
	}
	return starlark.NewList(out), nil
}

func (n *Namespace) persist(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("empty path")
	}
	if err := checkNoNUL("path", path); err != nil {
		return nil, err
	}
	st := n.st
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	cur := st.current()
	mnt := cur.Get("mnt")
	src := change.FdPath(n.ns.Fd())
	rec := &change.NsKeep{Kind: n.ns.Kind.Name, Fd: n.ns.Fd(), Path: path}
	rec.What = fmt.Sprintf("%s kept on %s", st.nsName(n.ns), path)
	var created bool
	var mntID, ino uint64
	rec.Apply = func() error {
		return nsthread.Do(st.tab.Joins(cur), func() error {
			// The mount path is on before the bind, and the file if made
			// here: what the reaper may undo if nsh dies meanwhile.
			before, err := mountIDOf(path)
			if errors.Is(err, fs.ErrNotExist) {
				before, err = mountIDOf(filepath.Dir(path))
				f, cerr := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o444)
				if cerr != nil {
					return nserr.New("create", strconv.Quote(path), cerr)
				}
				var sb unix.Stat_t
				unix.Fstat(int(f.Fd()), &sb)
				f.Close()
				created, ino = true, sb.Ino
			}
			if err != nil {
				if created {
					os.Remove(path)
				}
				return err
			}
			ops := []reaper.Op{reaper.UmountNew(mnt, path, before)}
			if created {
				ops = append(ops, reaper.Unlink(mnt, path, ino))
			}
			rec.Intend(ops...)
			if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
				if created {
					os.Remove(path)
				}
				if errors.Is(err, unix.EINVAL) {
					return nserr.Errorf("mount", "--bind "+st.nsName(n.ns)+" "+strconv.Quote(path), err,
						"the parent mount of %s is probably shared; bind its directory onto itself and make it private first", path)
				}
				return nserr.New("mount", "--bind "+st.nsName(n.ns)+" "+strconv.Quote(path), err)
			}
			mntID, err = mountIDOf(path)
			return err
		})
	}
	if st.lab != nil {
		// A lab keeps it until nsh down, which undoes it.
		rec.Undo = func() (bool, error) {
			return true, nsthread.Do(st.tab.Joins(cur), func() error {
				if err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
					return nserr.New("umount", strconv.Quote(path), err)
				}
				if created {
					os.Remove(path)
				}
				return nil
			})
		}
		rec.Reap = func() []reaper.Op {
			ops := []reaper.Op{reaper.Umount(mnt, path, mntID)}
			if created {
				ops = append(ops, reaper.Unlink(mnt, path, ino))
			}
			return ops
		}
	} else {
		rec.Kept = true
	}
	if _, err := st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	st.keepNetns(n.ns)
	return starlark.None, nil
}

// mountIDOf returns the ID of the mount path is on.
func mountIDOf(path string) (uint64, error) {
	id, err := mountinfo.IDOf(path)
	if err != nil {
		return 0, nserr.New("statx", strconv.Quote(path), err)
	}
	return id, nil
}
