package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/keeper"
	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/netnsdir"
	"nsh.dev/nsh/internal/topo"
	"nsh.dev/nsh/interp"
)

// labVerbs are the first arguments that name a lab command, not a script
// (a script with such a name is run as ./up).
var labVerbs = map[string]func([]string) int{
	"up": upCmd, "down": downCmd, "ls": lsCmd, "status": statusCmd, "inspect": statusCmd,
	"exec": execCmd, "gc": gcCmd, "attach": attachCmd,
}

const labUsage = `lab commands:
  nsh up [--name LAB] [--prefix P] [--replace] [--dry-run] RECIPE.star [ARG...]
                 run the recipe and keep everything it makes as lab LAB
                 (default: the recipe's base name) until nsh down;
                 --dry-run builds it in a throwaway sandbox instead and
                 prints the plan as the equivalent commands
  nsh down LAB | --all
                 undo exactly what the lab's journal holds, newest first
  nsh ls [--json]            list the labs
  nsh status LAB [NODE...] [--links] [--json]
                 the lab's nodes and what differs from its journal (a
                 lab of over 100 nodes is summed up unless NODEs or
                 --links say which links to read)
  nsh exec LAB NODE -- CMD [ARG...]
                 run CMD in the node's namespaces: its network namespace,
                 the UTS, IPC and mount namespaces the recipe made in it,
                 and the pid namespace of its first daemon with one (CMD is
                 then a child of nsh, which passes it signals and its exit
                 status; it fails if that daemon has exited)
  nsh gc [--dry-run]         take down labs whose nsh died building them, and
                             undo runs whose nsh and reaper were both killed
  nsh attach LAB             the REPL with the lab's nodes and links bound
                             by name; leaving it keeps the lab
Run by a user other than root, a lab lives in a user and a mount namespace
of its own (with a private /run/netns), held by a keeper process
(nsh-keeper) until nsh down; its state is in $XDG_RUNTIME_DIR/nsh/labs.
`

func labFail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "nsh: "+format+"\n", a...)
	return 1
}

func upCmd(args []string) int {
	var name, prefix, asHost string
	var hosts map[string]string
	var verdict *hostVerdict // of the coordinator, for a host's part
	replace := false
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--replace":
			replace = true
		case a == "--name" || a == "--prefix":
			if i+1 >= len(args) {
				return labFail("up: %s needs a value\n%s", a, labUsage)
			}
			if a == "--name" {
				name = args[i+1]
			} else {
				prefix = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "--name="):
			name = strings.TrimPrefix(a, "--name=")
		case strings.HasPrefix(a, "--prefix="):
			prefix = strings.TrimPrefix(a, "--prefix=")
		case a == "--as-host" || a == "--hosts":
			// Hidden: this host's part of nsh up --host (hosts.go).
			if i+1 >= len(args) {
				return labFail("up: %s needs a value", a)
			}
			i++
			if a == "--as-host" {
				asHost = args[i]
				if err := labs.CheckName(asHost); err != nil {
					return labFail("up: --as-host: %v", err)
				}
				continue
			}
			var err error
			if hosts, err = parseHostsArg(args[i]); err != nil {
				return labFail("up: %v", err)
			}
		case a == "--dry-run":
			return dryRun(append(args[:i:i], args[i+1:]...))
		case strings.HasPrefix(a, "-") && a != "-":
			return labFail("up: unknown flag %q\n%s", a, labUsage)
		default:
			goto recipe
		}
	}
recipe:
	if i >= len(args) {
		return labFail("up: which recipe?\n%s", labUsage)
	}
	recipe, rargs := args[i], args[i+1:]
	if (asHost == "") != (hosts == nil) || asHost != "" && (recipe != "-" || hosts[asHost] == "") {
		return labFail("up: --as-host NAME and --hosts NAME=ADDR,... come together, with NAME among the hosts and the recipe on stdin (-): nsh up --host sends them")
	}
	shown := ""
	if asHost != "" {
		// The recipe and its modules come on stdin: unpacked into a
		// directory of this run's, removed when it ends.
		var p hostPayload
		dec := json.NewDecoder(os.Stdin)
		if err := dec.Decode(&p); err != nil || p.Bundle == nil {
			return labFail("up: reading the recipe nsh up --host sends on stdin: %v", err)
		}
		verdict = awaitVerdict(io.MultiReader(dec.Buffered(), os.Stdin))
		// Should nsh up --host die, what this nsh prints goes nowhere:
		// it must not kill it (SIGPIPE) before it has undone its part.
		signal.Ignore(syscall.SIGPIPE)
		tmp, err := os.MkdirTemp("", "nsh-up-"+asHost+"-")
		if err != nil {
			return labFail("up: %v", err)
		}
		defer os.RemoveAll(tmp)
		if recipe, err = p.Bundle.Unpack(tmp); err != nil {
			return labFail("up: %v", err)
		}
		rargs, shown = p.Args, p.Recipe+" (host "+asHost+")"
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(recipe), ".star")
	}
	if err := labs.CheckName(name); err != nil {
		return labFail("up: %v", err)
	}
	key := labs.Key(name, asHost)
	if os.Geteuid() != 0 {
		return labFail("up: rootless labs are not supported yet (they need a keeper process for the lab's user namespace); run nsh up as root")
	}
	src, err := interp.ReadScript(recipe, true)
	if err != nil {
		return labFail("%v", err)
	}
	if replace {
		if _, err := labs.Open(key); err == nil {
			if code := downLab(key, os.Stderr); code != 0 {
				return code
			}
		}
	}
	abs, _ := filepath.Abs(recipe)
	if shown != "" {
		abs = shown
	}
	l := &labs.Lab{Name: name, Host: asHost, Recipe: abs, Args: rargs, Prefix: prefix, Keeper: keeper.Joined()}
	unlock, err := labs.Create(l)
	if err != nil {
		return labFail("up: %v", err)
	}
	defer unlock()

	cfg := interp.Config{Builtins: builtins.Table(), Prompt: builtins.Prompt, MaxMemory: interp.DefaultMaxMemory,
		Abort: abort, Extra: builtins.LabHosts(name, prefix, asHost, hosts)}
	if dryPlan != nil {
		cfg.TraceSetup, cfg.TraceTeardown = dryPlan, io.Discard
		cfg.Stdout = os.Stderr // stdout is the plan's
	}
	in := interp.New(cfg)
	r := in.NewRun(filepath.Dir(recipe), append([]string{recipe}, rargs...))
	builtins.SetLab(r.Registry, l)
	if !hostNoteOff() {
		builtins.SetHostNote(r.Registry, os.Stderr)
	}
	if verdict != nil {
		verdict.watch(r)
	}
	_, err = r.ExecFile(recipe, src)
	if err == nil {
		err = builtins.LabUp(r.NewThread("nsh up"), r.Registry)
	}
	if verdict != nil {
		verdict.done.Store(true)
	}
	if err != nil {
		if !interp.IsExit(err) && r.Signal() == 0 {
			fmt.Fprintln(os.Stderr, interp.FormatError(err))
		}
		terr := r.Teardown()
		if terr != nil {
			fmt.Fprintf(os.Stderr, "nsh: %v\n", terr)
		}
		// Undone as a run is: what is left in the journal (an undo
		// failed) is nsh down's, else the lab goes.
		if recs, rerr := labs.Read(l.Dir); rerr == nil && len(recs) == 0 {
			os.RemoveAll(l.Dir)
			fmt.Fprintf(os.Stderr, "nsh: lab %q not made: everything the recipe made is undone\n", key)
		} else {
			fmt.Fprintf(os.Stderr, "nsh: lab %q half made and not all undone: nsh down %s\n", key, key)
		}
		code := r.ExitCode(err)
		if code == 0 {
			code = 1
		}
		return code
	}
	if err := r.Teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "nsh: %v\n", err)
	}
	recs, _ := labs.Read(l.Dir)
	if dryPlan != nil {
		fmt.Fprintf(os.Stderr, "nsh: dry run of lab %q: %d nodes, %d changes journaled; all undone with the sandbox\n", name, len(l.Nodes), len(recs))
		return 0
	}
	fmt.Fprintf(os.Stderr, "nsh: lab %q is up: %d nodes, %d changes journaled (nsh status %s; nsh down %s)\n",
		key, len(l.Nodes), len(recs), key, key)
	if verdict != nil {
		unlock() // downLab takes the lock
		return verdict.commit(key)
	}
	return 0
}

func downCmd(args []string) int {
	return downWith(args, func(name string) int { return downLab(name, os.Stderr) })
}

// downWith is nsh down LAB | --all, taking each lab down with down (as
// root: downLab; rootless: in the lab's keeper).
func downWith(args []string, down func(name string) int) int {
	if len(args) == 1 && args[0] == "--all" {
		ls, err := labs.List()
		if err != nil {
			return labFail("down: %v", err)
		}
		code := 0
		for _, l := range ls {
			if c := down(l.Key()); c != 0 {
				code = c
			}
		}
		if len(ls) == 0 {
			fmt.Fprintln(os.Stderr, "nsh: down --all: no labs")
		}
		return code
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return labFail("down: which lab? (nsh down LAB, or nsh down --all)")
	}
	return down(args[0])
}

// downLab takes lab name down, reporting on w; 0 when it is gone.
func downLab(name string, w io.Writer) int {
	l, err := labs.OpenHead(name) // no nodes: it needs none
	if errors.Is(err, labs.ErrNoLab) {
		fmt.Fprintf(w, "nsh: down: no lab named %q: nothing to do (nsh ls lists the labs)\n", name)
		return 0
	}
	if err != nil {
		return labFail("down: %v", err)
	}
	unlock, err := labs.Lock(l.Dir)
	if err != nil {
		return labFail("down: %v", err)
	}
	defer unlock()
	if l.BeingBuilt() {
		return labFail("down: lab %q is being built by nsh %d; it undoes what it made if it fails", name, l.Pid)
	}
	recs, err := labs.Read(l.Dir)
	if err != nil {
		return labFail("down: %v", err)
	}
	failed := 0
	// Its daemons first (the journal kills their cgroup too; without
	// one, as rootless, by pid and start time).
	for _, d := range l.Daemons {
		if labs.Alive(d.Pid, d.Start) {
			if err := unix.Kill(d.Pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				failed++
				fmt.Fprintf(w, "nsh: down %s: kill daemon %d (%s): %v\n", name, d.Pid, strings.Join(d.Argv, " "), err)
			}
		} else {
			fmt.Fprintf(w, "nsh: down %s: daemon %d (%s): already gone (it exited)\n", name, d.Pid, strings.Join(d.Argv, " "))
		}
	}
	for _, o := range labs.Undo(recs) {
		switch {
		case o.Err != nil:
			failed++
			fmt.Fprintf(w, "nsh: down %s: %s\n", name, o)
		case o.Gone != "":
			fmt.Fprintf(w, "nsh: down %s: %s\n", name, o)
		}
	}
	if failed > 0 {
		return labFail("down: lab %q: %d steps failed; the lab is kept (nsh down %s tries again)", name, failed, name)
	}
	if err := endKeeper(l); err != nil {
		return labFail("down: lab %q: %v; the lab is kept", name, err)
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		return labFail("down: %v", err)
	}
	fmt.Fprintf(w, "nsh: lab %q is down\n", name)
	return 0
}

func lsCmd(args []string) int {
	asJSON := len(args) == 1 && args[0] == "--json"
	if len(args) > 0 && !asJSON {
		return labFail("ls: unknown arguments %q (nsh ls [--json])", args)
	}
	ls, err := labs.List()
	if err != nil {
		return labFail("ls: %v", err)
	}
	type row struct {
		Name    string    `json:"name"`
		State   string    `json:"state"`
		Recipe  string    `json:"recipe"`
		Args    []string  `json:"args,omitempty"`
		Created time.Time `json:"created"`
		Nodes   int       `json:"nodes"`
		Changes int       `json:"changes"`
	}
	var rows []row
	for _, l := range ls {
		recs, _ := labs.Read(l.Dir)
		rows = append(rows, row{l.Key(), labState(l, recs), l.Recipe, l.Args, l.Created, len(l.Nodes), len(recs)})
	}
	if asJSON {
		b, _ := json.MarshalIndent(rows, "", "  ")
		fmt.Println(string(b))
		return 0
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tNODES\tCHANGES\tCREATED\tRECIPE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", r.Name, r.State, r.Nodes, r.Changes,
			r.Created.Local().Format("2006-01-02 15:04:05"), strings.TrimSpace(r.Recipe+" "+strings.Join(r.Args, " ")))
	}
	tw.Flush()
	return 0
}

// labState is "up", "building" (by a live nsh), "broken" (its nsh died
// building it: nsh gc), "degraded" (a node is gone), or "gone" (the keeper
// of a rootless lab is gone, with everything it held: nsh gc).
func labState(l *labs.Lab, recs []labs.Record) string {
	if l.Keeper != nil && !l.Keeper.Alive() {
		return "gone"
	}
	if l.State == labs.Building {
		if labs.Alive(l.Pid, l.PidStart) {
			return "building"
		}
		return "broken"
	}
	if !inKeeper(l) {
		return "up" // its nodes are in its keeper's mount namespace
	}
	for _, n := range l.Nodes {
		if !isNetns(n.Net) {
			return "degraded"
		}
	}
	return "up"
}

// isNetns reports whether a network namespace is mounted on path.
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// summaryAbove is the size above which nsh status sums a lab up (presence,
// daemons, the journal's undo steps) unless told which links to read:
// reading every node's links costs the kernel ~0.15 ms a namespace.
const summaryAbove = 100

func statusCmd(args []string) int {
	asJSON, links := false, false
	var name string
	var only []string
	for _, a := range args {
		switch {
		case a == "--json":
			asJSON = true
		case a == "--links":
			links = true
		case name == "" && !strings.HasPrefix(a, "-"):
			name = a
		case !strings.HasPrefix(a, "-"):
			only = append(only, a)
		default:
			return labFail("status: unexpected argument %q (nsh status LAB [NODE...] [--links] [--json])", a)
		}
	}
	if name == "" {
		return labFail("status: which lab? (nsh ls lists them)")
	}
	l, err := labs.Open(name)
	if err != nil {
		return labFail("status: %v", err)
	}
	summary := !links && len(only) == 0 && len(l.Nodes) > summaryAbove
	var recs []labs.Record
	var notes []labs.Note
	if summary {
		recs, err = labs.Read(l.Dir) // the notes are for the comparison it skips
	} else {
		recs, notes, err = labs.ReadAll(l.Dir)
	}
	if err != nil {
		return labFail("status: %v", err)
	}
	type daemon struct {
		Pid   int      `json:"pid"`
		Argv  []string `json:"argv"`
		Alive bool     `json:"alive"`
		Log   string   `json:"log,omitempty"`
	}
	type node struct {
		Name    string            `json:"name"`
		Kinds   []string          `json:"kinds"` // "net", and "uts", "ipc", "mnt", "pid" when the node has its own
		Net     string            `json:"net"`
		More    map[string]string `json:"more,omitempty"`
		Init    *labs.NodeInit    `json:"init,omitempty"` // the daemon holding its pid namespace
		Present bool              `json:"present"`
		Live    *topo.Netns       `json:"live,omitempty"`
	}
	out := struct {
		Name    string   `json:"name"`
		State   string   `json:"state"`
		Recipe  string   `json:"recipe"`
		Args    []string `json:"args,omitempty"`
		Nodes   []node   `json:"nodes"`
		Daemons []daemon `json:"daemons,omitempty"`
		Changes int      `json:"changes"`
		Missing []string `json:"missing,omitempty"`
	}{Name: l.Name, State: labState(l, recs), Recipe: l.Recipe, Args: l.Args, Changes: len(recs)}
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	var present []string
	for _, n := range l.Nodes {
		if len(only) > 0 && !want[n.Name] {
			continue
		}
		delete(want, n.Name)
		ok := isNetns(n.Net)
		out.Nodes = append(out.Nodes, node{Name: n.Name, Kinds: n.Kinds(), Net: n.Net, More: n.More, Init: n.Init, Present: ok})
		if ok {
			present = append(present, n.Name)
		} else {
			out.Missing = append(out.Missing, "node "+n.Name+" ("+n.Net+" is no network namespace)")
		}
		if n.Init != nil && !labs.Alive(n.Init.Pid, n.Init.Start) {
			out.Missing = append(out.Missing, fmt.Sprintf("node %s's pid namespace is gone: its init, daemon %d, has exited", n.Name, n.Init.Pid))
		}
	}
	for n := range want {
		return labFail("status: lab %q has no node %q", l.Name, n)
	}
	lean := len(present) > 50 // a large lab: no sysctls, qdiscs
	if len(present) > 0 && os.Geteuid() == 0 && !summary {
		if t, err := topo.ReadWith(present, topo.Options{Lean: lean}); err == nil {
			for i := range out.Nodes {
				for _, ns := range t.Netns {
					if ns.Name == out.Nodes[i].Name {
						out.Nodes[i].Live = ns
					}
				}
			}
		}
	}
	for _, d := range l.Daemons {
		alive := labs.Alive(d.Pid, d.Start)
		out.Daemons = append(out.Daemons, daemon{d.Pid, d.Argv, alive, d.Log})
		if !alive {
			out.Missing = append(out.Missing, fmt.Sprintf("daemon %d (%s) has exited", d.Pid, strings.Join(d.Argv, " ")))
		}
	}
	for _, r := range recs {
		for _, s := range r.Steps {
			if gone := labs.Check(s); gone != "" {
				out.Missing = append(out.Missing, r.What+": "+gone)
			}
		}
	}
	if os.Geteuid() == 0 && !summary {
		read := map[string]*topo.Netns{}
		for _, n := range out.Nodes {
			if n.Live != nil {
				read[n.Net] = n.Live
			}
		}
		out.Missing = append(out.Missing, journalDiff(l, notes, read, lean, len(only) > 0)...)
	}
	if out.State == "up" && len(out.Missing) > 0 {
		out.State = "degraded"
	}
	if asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Println(string(b))
		return 0
	}
	stdout := bufio.NewWriter(os.Stdout)
	defer stdout.Flush()
	fmt.Fprintf(stdout, "lab %s: %s (%s), %d changes journaled\n", out.Name, out.State, strings.TrimSpace(out.Recipe+" "+strings.Join(out.Args, " ")), out.Changes)
	if summary {
		up := 0
		for _, n := range out.Nodes {
			if n.Present {
				up++
			}
		}
		fmt.Fprintf(stdout, "%d nodes, %d present (a large lab: nsh status %s NODE... or --links shows links, addresses and routes, and compares them with the journal)\n",
			len(out.Nodes), up, out.Name)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	if !summary {
		fmt.Fprintln(tw, "NODE\tLINK\tKIND\tSTATE\tADDRESSES\tPEER")
	}
	for _, n := range out.Nodes {
		if summary {
			break // the missing ones are listed below
		}
		statusRows(tw, "", n.Name, n.Kinds, n.Present, n.Live, nil)
	}
	tw.Flush()
	for _, n := range out.Nodes {
		if n.Live != nil && len(n.Live.Routes) > 0 {
			var rs []string
			for _, r := range n.Live.Routes {
				s := r.Dst
				if r.Via != "" {
					s += " via " + r.Via
				}
				rs = append(rs, s)
			}
			fmt.Fprintf(stdout, "routes of %s: %s\n", n.Name, strings.Join(rs, ", "))
		}
	}
	if len(out.Daemons) > 0 {
		tw = tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "DAEMON\tALIVE\tCOMMAND\tLOG")
		for _, d := range out.Daemons {
			fmt.Fprintf(tw, "%d\t%v\t%s\t%s\n", d.Pid, d.Alive, strings.Join(d.Argv, " "), d.Log)
		}
		tw.Flush()
	}
	for _, m := range out.Missing {
		fmt.Fprintf(stdout, "differs from the journal: %s\n", m)
	}
	return 0
}

// journalDiff compares what the lab's journal notes say it built (links,
// their state, addresses, bridge ports and tbf rates, routes) with the
// live kernel, and says what is missing or changed. read are the
// namespaces status has read already, by path; lean says they were read
// without qdiscs. Namespaces that are gone are not compared (status
// reports a missing node apart).
func journalDiff(l *labs.Lab, notes []labs.Note, read map[string]*topo.Netns, lean, onlyRead bool) []string {
	exp := labs.Expect(notes)
	label := func(ns string) string {
		switch {
		case ns == "":
			return "the host"
		case filepath.Dir(ns) == netnsdir.Dir:
			return "node " + filepath.Base(ns)
		}
		return "namespace " + ns
	}
	var out []string
	live := map[string]*topo.Netns{}
	for _, ns := range exp.Namespaces() {
		path := ns
		if ns == "" {
			path = "/proc/self/ns/net"
		}
		if !isNetns(path) {
			if filepath.Dir(ns) != netnsdir.Dir {
				out = append(out, label(ns)+" is gone")
			}
			continue
		}
		if n := read[ns]; n != nil {
			live[ns] = n
			continue
		}
		if onlyRead { // nsh status LAB NODE...: those nodes only
			continue
		}
		n, err := topo.ReadAt(label(ns), path, topo.Options{Lean: lean})
		if err != nil {
			out = append(out, fmt.Sprintf("cannot read %s: %v", label(ns), err))
			continue
		}
		live[ns] = n
	}
	return append(out, exp.Diff(live, label, lean)...)
}

func execCmd(args []string) int {
	if len(args) < 4 || args[2] != "--" {
		return labFail("exec: nsh exec LAB NODE -- CMD [ARG...]")
	}
	l, err := labs.Open(args[0])
	if err != nil {
		return labFail("exec: %v", err)
	}
	var node *labs.Node
	for i := range l.Nodes {
		if l.Nodes[i].Name == args[1] {
			node = &l.Nodes[i]
		}
	}
	if node == nil {
		var names []string
		for _, n := range l.Nodes {
			names = append(names, n.Name)
		}
		return labFail("exec: lab %q has no node %q (its nodes: %s)", l.Name, args[1], strings.Join(names, ", "))
	}
	joins, err := nodeJoins(l, node)
	if err != nil {
		return labFail("exec: %v", err)
	}
	defer func() {
		for _, j := range joins {
			unix.Close(j.fd)
		}
	}()
	// This thread joins the node's namespaces (a mount namespace only
	// after unsharing its filesystem information from the other
	// threads'), then execs, which ends every other thread; or, to enter
	// a pid namespace, which only children do, starts the command from
	// this thread and waits for it.
	runtime.LockOSThread()
	cwd, _ := os.Getwd()
	pid, mnt := false, false
	for _, j := range joins {
		pid = pid || j.kind == "pid"
		mnt = mnt || j.kind == "mnt"
	}
	if mnt {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return labFail("exec: unshare(CLONE_FS): %v", err)
		}
	}
	for _, j := range joins {
		if err := unix.Setns(j.fd, j.typ); err != nil {
			return labFail("exec: setns into node %s's %s namespace (%s): %v", node.Name, j.kind, j.path, err)
		}
	}
	if mnt && (cwd == "" || unix.Chdir(cwd) != nil) {
		unix.Chdir("/") // as nsenter -m: the root of the node's mounts
	}
	path, err := exec.LookPath(args[3])
	if err != nil {
		return labFail("exec: node %s: %v", node.Name, err)
	}
	if !pid {
		err = syscall.Exec(path, args[3:], os.Environ())
		return labFail("exec: %s: %v", path, err)
	}
	code, err := runForeground(path, args[3:])
	if errors.Is(err, unix.ENOMEM) {
		// fork(2) into a pid namespace whose init has exited.
		return labFail("exec: node %s of lab %q: its pid namespace has lost its init (daemon %d (%s) is ending with it, or was not its init): no process can start there",
			node.Name, l.Name, node.Init.Pid, strings.Join(node.Init.Argv, " "))
	}
	if err != nil {
		return labFail("exec: %v", err)
	}
	return code
}

// nsJoin is a namespace nsh exec joins: its kind, the setns type, the
// path it was opened from, and the descriptor.
type nsJoin struct {
	kind, path string
	typ, fd    int
}

// nodeJoins opens the namespaces of node, in setns order: its network
// namespace, the UTS, IPC and mount namespaces the lab kept for it, and
// through its init daemon (if it has one) the pid namespace and the kinds
// the daemon has of its own. A node whose init daemon is gone is refused:
// its pid namespace went with it, and the command must not run outside it.
func nodeJoins(l *labs.Lab, node *labs.Node) ([]nsJoin, error) {
	paths := map[string]string{"net": node.Net}
	for k, p := range node.More {
		paths[k] = p
	}
	in := node.Init
	if in != nil {
		if !labs.Alive(in.Pid, in.Start) {
			return nil, fmt.Errorf("node %s of lab %q: its pid namespace was held by daemon %d (%s), which has exited; "+
				"with no pid namespace to join the command is not run (nsh status %s shows the daemons; nsh up --replace builds the lab again)",
				node.Name, l.Name, in.Pid, strings.Join(in.Argv, " "), l.Name)
		}
		for _, k := range in.Kinds {
			paths[k] = fmt.Sprintf("/proc/%d/ns/%s", in.Pid, k)
		}
	}
	var joins []nsJoin
	fail := func(err error) ([]nsJoin, error) {
		for _, j := range joins {
			unix.Close(j.fd)
		}
		return nil, err
	}
	for _, k := range []struct {
		kind string
		typ  int
	}{{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"net", unix.CLONE_NEWNET}, {"pid", unix.CLONE_NEWPID}, {"mnt", unix.CLONE_NEWNS}} {
		p := paths[k.kind]
		if p == "" {
			continue
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("node %s's %s namespace: open %s: %w", node.Name, k.kind, p, err))
		}
		joins = append(joins, nsJoin{k.kind, p, k.typ, fd})
	}
	if in != nil && !labs.Alive(in.Pid, in.Start) {
		// Its pid was taken by another process while we opened.
		return fail(fmt.Errorf("node %s of lab %q: daemon %d (%s), which holds its pid namespace, exited just now",
			node.Name, l.Name, in.Pid, strings.Join(in.Argv, " ")))
	}
	return joins, nil
}

// runForeground runs path with argv from this thread (the namespaces it
// joined are the child's), giving it the terminal's foreground when nsh
// has it, passes it the signals sent to nsh, and returns its exit status
// (128+N when signal N ended it), or the error that kept it from
// starting or from being waited for. When the command stops (Ctrl-Z), nsh
// takes the terminal back and stops too, so that the shell that started it
// sees the job stopped; continued, it hands the terminal back and
// continues the command, as a shell does.
func runForeground(path string, argv []string) (int, error) {
	cmd := &exec.Cmd{Path: path, Args: argv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	tty := false
	if fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Foreground: true, Ctty: 0}
		tty = true
	}
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigc)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	if tty {
		// Taking the terminal back from the command's process group
		// would stop nsh (SIGTTOU) while it is in the background. (Not
		// before the start: an ignored signal stays ignored across exec.)
		signal.Ignore(syscall.SIGTTOU)
	}
	pid := cmd.Process.Pid
	type waited struct {
		ws  unix.WaitStatus
		err error
	}
	waitc := make(chan waited)
	go func() {
		for {
			var ws unix.WaitStatus
			_, err := unix.Wait4(pid, &ws, unix.WUNTRACED, nil)
			if err == unix.EINTR {
				continue
			}
			waitc <- waited{ws, err}
			if err != nil || !ws.Stopped() {
				return
			}
		}
	}()
	takeBack := func() {
		if tty {
			unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
		}
	}
	for {
		select {
		case s := <-sigc:
			unix.Kill(pid, s.(syscall.Signal))
		case w := <-waitc:
			switch {
			case w.err != nil:
				takeBack()
				return 0, fmt.Errorf("wait for %d: %w", pid, w.err)
			case w.ws.Stopped():
				takeBack()
				unix.Kill(unix.Getpid(), unix.SIGSTOP)
				// Continued (fg or bg): the terminal goes back to the
				// command if nsh has it, then the command goes on.
				if fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); tty && err == nil && fg == unix.Getpgrp() {
					unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pid)
				}
				if tty {
					unix.Kill(-pid, unix.SIGCONT) // its process group
				} else {
					unix.Kill(pid, unix.SIGCONT)
				}
			case w.ws.Signaled():
				takeBack()
				return 128 + int(w.ws.Signal()), nil
			default:
				takeBack()
				return w.ws.ExitStatus(), nil
			}
		}
	}
}

func gcCmd(args []string) int {
	dry := len(args) == 1 && args[0] == "--dry-run"
	if len(args) > 0 && !dry {
		return labFail("gc: unknown arguments %q (nsh gc [--dry-run])", args)
	}
	ls, err := labs.List()
	if err != nil {
		return labFail("gc: %v", err)
	}
	code, found := 0, 0
	for _, l := range ls {
		if !l.Broken() {
			continue
		}
		found++
		if dry {
			recs, _ := labs.Read(l.Dir)
			fmt.Printf("%s: half built by nsh %d, which is gone: %d changes to undo\n", l.Key(), l.Pid, len(recs))
			continue
		}
		if c := downLab(l.Key(), os.Stderr); c != 0 {
			code = c
		}
	}
	// Runs whose nsh and reaper were both killed.
	runs, err := labs.Runs()
	if err != nil {
		return labFail("gc: %v", err)
	}
	for _, run := range runs {
		found++
		recs, _ := labs.Read(run.Dir)
		if dry {
			fmt.Printf("run of nsh %d, killed with its reaper: %d changes to undo (%s)\n", run.Pid, len(recs), run.Dir)
			continue
		}
		failed := 0
		for _, o := range labs.Undo(recs) {
			if o.Err != nil {
				failed++
				fmt.Fprintf(os.Stderr, "nsh: gc: run of nsh %d: %s\n", run.Pid, o)
			}
		}
		if failed > 0 {
			code = 1
			continue
		}
		os.RemoveAll(run.Dir)
		fmt.Fprintf(os.Stderr, "nsh: gc: undid %d changes of the run of nsh %d\n", len(recs), run.Pid)
	}
	if found == 0 {
		fmt.Fprintln(os.Stderr, "nsh: gc: nothing to collect")
	}
	return code
}

// statusRows writes the rows of one node in nsh status's table: lead (the
// HOST column and its tab for a lab on several hosts, else ""), then NODE,
// LINK, KIND, STATE, ADDRESSES and PEER, a row per link. hostOf names the
// host an address (a VXLAN's remote) belongs to, "" if none; nil for one
// host.
func statusRows(tw io.Writer, lead, name string, kinds []string, present bool, live *topo.Netns, hostOf func(addr string) string) {
	if !present {
		fmt.Fprintf(tw, "%s%s\t-\t-\tgone\t-\t-\n", lead, name)
		return
	}
	if live == nil {
		fmt.Fprintf(tw, "%s%s\t\t\t\t\t\n", lead, name)
		return
	}
	label := name
	if len(kinds) > 1 {
		label += " (" + strings.Join(kinds, ",") + ")"
	}
	first := true
	for _, lk := range live.Links {
		if lk.Kind == "loopback" {
			continue
		}
		state, peer := "down", ""
		if lk.Up {
			state = "up"
		}
		if lk.Peer != nil {
			peer = strings.TrimPrefix(lk.Peer.Netns+"/"+lk.Peer.Name, "/")
			if peer == "" {
				peer = string(lk.Peer.Where)
			}
		}
		if lk.VXLAN != nil {
			peer = fmt.Sprintf("vni %d", lk.VXLAN.VNI)
			if r := lk.VXLAN.Remote; r != "" {
				peer += " to " + r
				if hostOf != nil {
					if o := hostOf(r); o != "" {
						peer += " (host " + o + ")"
					}
				}
			}
		}
		if lk.Master != "" {
			peer = strings.TrimSpace(peer + " (in " + lk.Master + ")")
		}
		l := ""
		if first {
			l = label
		}
		first = false
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\n", lead, l, lk.Name, lk.Kind, state, strings.Join(lk.Addrs, " "), peer)
	}
	if first {
		fmt.Fprintf(tw, "%s%s\t(no links)\t\t\t\t\n", lead, label)
	}
}
