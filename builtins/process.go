package builtins

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"nsh.dev/nsh/internal/capture"
	"nsh.dev/nsh/internal/cgroup"
	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/mountopt"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/reaper"
	"nsh.dev/nsh/internal/rootless"
	"nsh.dev/nsh/internal/spawn"
)

func processTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "clone", Sig: `clone(argv, *kinds, kinds=None, lo=False, dev=None, hostname=None, domainname=None, mount_proc=False, root=None, cwd=None, env=None, stdin=None, stdout=None, stderr=None, wait=True, uidmap=None, gidmap=None, monotonic=None, boottime=None, propagation="private", detach=False, paused=False, uid=None, gid=None, groups=None, max_output=67108864)`,
				Impl: cloneBuiltin, Doc: `Starts a process in new namespaces of the given kinds, relative to the current context.
argv is a list of strings or a string split as a shell would (quotes and
backslashes; no shell is run); argv[0] is searched in the PATH of env.
kinds are as for unshare(), given as arguments or as a list, positionally
or as kinds=: clone(argv, "pid", "mnt") == clone(argv, ["pid", "mnt"]) ==
clone(argv, kinds=["pid", "mnt"], mount_proc=True) (a list lets keywords
come first). Namespaces are created the way clone(2) would:
a new user namespace first (mapping the caller to root unless uidmap= and
gidmap= give lists of (inside, outside, count)), and every other new kind is
owned by the user namespace the process ends up in.
  hostname, domainname  set in the new UTS namespace (needs "uts")
  mount_proc   mount a fresh /proc (implies "mnt"), as unshare --mount-proc
  lo           with "net": bring up the loopback of the new network
               namespace before the exec (default False: as clone(2) and
               unshare(1) leave it down; unshare() brings it up)
  root         pivot_root into this directory (implies "mnt"); the old root
               is detached, as unshare --root / bubblewrap
  dev          with root: a minimal /dev in it, as bubblewrap's --dev: a
               tmpfs with the host's null, zero, full, random, urandom and
               tty bound in (binds, not mknod: works rootless), a new devpts
               instance on /dev/pts with /dev/ptmx -> pts/ptmx, a tmpfs on
               /dev/shm, and /dev/fd, stdin, stdout, stderr -> /proc/self/fd.
               None (default): made when the root's dev is an empty
               directory (a /dev the caller filled, e.g. a bind of the
               host's, is left as it is); True: made, over whatever dev
               holds, an error if there is no dev directory; False: /dev
               as the root has it. The root itself is not written to.
                 clone(["sh", "-c", "echo hi > /dev/null; ls /dev"], "pid",
                       root="/tmp/box", mount_proc=True, env={"PATH": "/bin"})
  cwd          working directory (inside root, if given)
  env          dict of the environment; default nsh's
  stdin        None: inherit; False: /dev/null; a string: read that file
  stdout, stderr  None: inherit; True: capture into .stdout/.stderr;
               False: /dev/null; a string: write (truncate) that file
  max_output   bytes kept of each captured stream (default 64 MiB; None:
               no limit); the rest is read and discarded, and .truncated
               (.stdout_truncated, .stderr_truncated) says so
  monotonic, boottime  clock offsets in seconds of a new time namespace
  propagation  of / in a new mount namespace, as for unshare()
  wait         True: wait for the exit and return the finished process
  detach       True: the process survives the run (no parent-death signal,
               not killed at the end, in its own session)
  paused       with "user": the user-namespace handshake step by step.
               clone() returns at once; the child waits in its new user
               namespace, unmapped, before anything else (other kinds,
               hostname, exec). Write its maps with set_idmaps(p, ...),
               then p.resume() lets it go on. Resumed without maps it runs
               as nobody (65534), as the tutorials' first output shows:
                 p = clone("id", "user", paused=True, stdout=True)
                 set_idmaps(p, uidmap=[uidmap(0, ids().uid)], gidmap=[gidmap(0, ids().gid)])
                 p.resume(); p.wait()       # p.stdout: uid=0(root) gid=0(root) ...
  uid, gid, groups  the ids it runs as; see Identity below. With
               clone(["sh", "-c", "id -u"], "user", uidmap=[uidmap(0,
               100000, 65536)], uid=1000) it prints 1000.
With stdin on a terminal and wait=True the process gets the terminal's
foreground (its own process group), so clone("/bin/bash", "uts",
hostname="box") is an interactive shell; Ctrl-C goes to it, not to nsh.
nsh does no job control: a foreground process stopped by Ctrl-Z is resumed.
A process that is not detached is killed (SIGKILL) and reaped at the end
of the run, with everything it forked (a cgroup of the run's, or orphans
re-parented to nsh), and dies with nsh even if nsh is killed (parent-death
signal; the reaper kills its descendants).
Failures before the exec are reported with the step and errno, e.g.
clone: sethostname "x": EINVAL, and leave nothing behind.
` + identityDoc},
			{Name: "run", Sig: "run(cmd, ns=None, input=None, check=True, timeout=None, env=None, cwd=None, uid=None, gid=None, groups=None, max_output=67108864)", Impl: runBuiltin,
				Doc: `Runs a command in the current context (or in ns) and returns the finished process.
cmd is a list of strings or a string split as a shell would (no shell is
run). ns is a target as for setns(). stdout and stderr are captured
(.stdout, .stderr, strings); input (a string) is written to its stdin,
otherwise stdin is inherited. With check=True a non-zero exit is an error
showing the command, its code and the tail of its stderr; with
check=False look at .code and .ok. timeout (seconds) kills the command with
SIGKILL when it runs longer, which is an error. max_output is what is kept
of each stream (default 64 MiB; None: no limit): the rest is read and
discarded, and .truncated says so. run() returns when the command exits:
a background process it left that still holds stdout or stderr does not
hold it up (what is in the pipe then is kept, later output discarded); such
processes belong to the run and are killed when it ends. uid, gid and
groups as for clone(): in a user namespace the context moved into
(unshare("user", ...), setns()) the command is root there when 0 is
mapped; run("id", uid=1000) picks another id of its maps.`},
			{Name: "spawn", Sig: "spawn(cmd, ns=None, env=None, cwd=None, stdin=None, stdout=None, stderr=None, detach=False, uid=None, gid=None, groups=None, max_output=67108864)", Impl: spawnBuiltin,
				Doc: `Starts a command in the background in the current context (or in ns) and returns the process.
cmd, ns and env as for run(); stdin, stdout, stderr, detach and max_output
as for clone() (stdout=True captures). Use .wait() for its exit code and .kill()
to signal it. It is killed at the end of the run unless detach=True.
Captured output can be followed while it runs: .stdout is what it wrote so
far, p.readline() its next line, p.expect(regex) the first line matching:
  p = spawn(["sh", "-c", "echo starting; sleep 0.2; echo ready"], stdout=True)
  p.expect("ready", timeout=5)
uid, gid and groups as for clone() and run().`},
			{Name: "lsns", Sig: "lsns(kind=None)", Impl: lsnsBuiltin,
				Doc: `Lists the namespaces of the system like lsns(8), as a list of structs.
Each has ns (inode), type (kind), nprocs, pid (the lowest pid in it),
uid (of that process) and command. kind limits the list to one kind. Only
namespaces that some process is in are found.`},
		},
		Types: []doc.Type{processType.Type(), matchType.Type()},
		Topic: map[string]string{
			"processes": `Processes: clone() starts one in new namespaces, run() runs one to its end
in the current context, spawn() starts one in the background. All start in
the shell's current context (see setns()). Every process a run starts, and
everything it forks (background jobs, daemons), is killed when the run ends
unless detach=True; nsh's own death, even by SIGKILL, takes them along (a
cgroup of the run's killed by the reaper, or rootless, the user namespace
nsh made). run() returns when its command exits, even if a process it left
keeps its output pipe open. Captured output is cut at max_output (64 MiB
per stream by default); while a process runs, .stdout and .stderr show
what it wrote so far, and p.readline() and p.expect() follow them line by
line. sleep() waits for a time, wait_port() for a listening socket.`,
		},
	}
}

var processType = doc.Members[*Process]{
	Name: "nsh.process",
	Doc: `A process started by clone(), run() or spawn(). str() shows its pid and argv.
It can be a target of setns() and namespaces() while it runs.`,
	Attrs: []doc.AttrOf[*Process]{
		{Name: "pid", Doc: "its pid (in nsh's PID namespace)", Get: func(p *Process) (starlark.Value, error) { return starlark.MakeInt(p.pid), nil }},
		{Name: "argv", Doc: "the command as a list", Get: func(p *Process) (starlark.Value, error) {
			l := make([]starlark.Value, len(p.argv))
			for i, a := range p.argv {
				l[i] = starlark.String(a)
			}
			return starlark.NewList(l), nil
		}},
		{Name: "ns", Doc: "its namespaces (nsh.namespaces); only while it runs", Get: func(p *Process) (starlark.Value, error) {
			c, err := p.targetContext(p.st)
			if err != nil {
				return nil, err
			}
			return &Namespaces{ctx: c, st: p.st}, nil
		}},
		{Name: "code", Doc: "exit code, 128+N if killed by signal N, None while it runs", Get: func(p *Process) (starlark.Value, error) {
			if !p.isDone() {
				return starlark.None, nil
			}
			return starlark.MakeInt(exitCode(p.ws)), nil
		}},
		{Name: "ok", Doc: "True if it exited with code 0", Get: func(p *Process) (starlark.Value, error) {
			if !p.isDone() {
				return starlark.None, nil
			}
			return starlark.Bool(p.werr == nil && exitCode(p.ws) == 0), nil
		}},
		{Name: "running", Doc: "True until it has exited", Get: func(p *Process) (starlark.Value, error) { return starlark.Bool(!p.isDone()), nil }},
		{Name: "paused", Doc: "True while a clone(..., paused=True) waits for resume()", Get: func(p *Process) (starlark.Value, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return starlark.Bool(!p.exited && p.child.Paused()), nil
		}},
		{Name: "stdout", Doc: "captured standard output (a string), or None if not captured; while it runs, what it has written so far (all of it once wait() returned)", Get: func(p *Process) (starlark.Value, error) { return p.captured(1), nil }},
		{Name: "stderr", Doc: "captured standard error (a string), or None if not captured; live as .stdout", Get: func(p *Process) (starlark.Value, error) { return p.captured(2), nil }},
		{Name: "stdout_truncated", Doc: "True if captured stdout was cut at max_output", Get: func(p *Process) (starlark.Value, error) { return p.cut(1), nil }},
		{Name: "stderr_truncated", Doc: "True if captured stderr was cut at max_output", Get: func(p *Process) (starlark.Value, error) { return p.cut(2), nil }},
		{Name: "truncated", Doc: "True if either captured stream was cut at max_output", Get: func(p *Process) (starlark.Value, error) { return p.cut(1, 2), nil }},
	},
	Methods: []doc.MethodOf[*Process]{
		{Name: "wait", Sig: "wait(timeout=None)", Impl: (*Process).waitMethod, Doc: `Waits for the process to exit and returns its code.
Interrupted by Ctrl-C/SIGTERM; with timeout (seconds) fails when it runs
longer (the process keeps running).`},
		{Name: "kill", Sig: `kill(signal="SIGTERM")`, Impl: (*Process).killMethod, Doc: `Sends a signal (a name like "SIGKILL" or "KILL", or a number).
Signalling a process that has exited does nothing.`},
		{Name: "resume", Sig: "resume()", Impl: (*Process).resumeMethod, Doc: `Lets a process started with clone(..., "user", paused=True) go on:
the last step of the user-namespace handshake, after set_idmaps(). It
returns once the process has exec'd (or fails with the step that failed,
e.g. an unmapped process refused a mount). Without maps it runs as nobody.`},
		{Name: "readline", Sig: `readline(timeout=None, stream="stdout")`, Impl: (*Process).readlineMethod, Doc: readlineDoc},
		{Name: "expect", Sig: `expect(pattern, timeout=5.0, stream="stdout")`, Impl: (*Process).expectMethod, Doc: expectDoc},
	},
}

// spawner returns the run's spawner (its locked threads children are
// cloned from), started on first use. It is registered before any process
// it starts, so the end of the run kills and reaps those first and only
// then ends the threads (whose exit is their parent-death signal).
func (st *state) spawner() *spawn.Spawner {
	return st.reg.Shared("nsh.builtins.spawner", func() any {
		sp := spawn.NewSpawner(st.tab.Initial.Names())
		st.ex.Hold("spawner threads", sp.Close)
		return sp
	}).(*spawn.Spawner)
}

// tracker returns the directory of the cgroup every process the run
// starts is born in (nil where nsh cannot make one: then nsh is a child
// subreaper instead), set up on first use. Either way, what those
// processes leave behind, daemons and background jobs included, is
// killed at the end of the run, after the processes themselves: with
// cgroup.kill, or by killing the orphans nsh adopted. The reaper is
// given the cgroup before it is made, and kills and removes it if nsh is
// killed; a rootless nsh has its reaper kill every process in the user
// namespace it made for the run instead.
// Processes that are the first of a new PID namespace need neither: the
// kernel kills the whole namespace with them.
func (st *state) tracker(th *starlark.Thread) *os.File {
	return st.reg.Shared("nsh.builtins.tracker", func() any {
		var b [4]byte
		rand.Read(b[:])
		path, err := cgroup.Path(fmt.Sprintf("nsh-%d-%x", os.Getpid(), b))
		// Where nsh may not write (a cgroup not delegated to a user),
		// the subreaper serves without a failed mkdir in the trace.
		if err == nil && unix.Access(filepath.Dir(path), unix.W_OK) == nil {
			var g *cgroup.Group
			rec := &change.Cgroup{Path: path}
			rec.What, rec.Aside = "cgroup "+path, true
			// The reaper's killcg takes a missing directory for done.
			rec.Ahead = func() []reaper.Op { return []reaper.Op{reaper.KillCgroup(path)} }
			rec.Apply = func() error {
				var err error
				g, err = cgroup.Make(path)
				return err
			}
			rec.Undo = func() (bool, error) { return true, g.Kill() }
			if _, err := st.ex.Do(th, rec); err == nil {
				return g.Dir
			}
		}
		rec := &change.Subreaper{}
		rec.What, rec.Aside = "orphans of the run's processes", true
		if rootless.Inner() {
			// nsh made its user namespace for this run: if nsh is
			// killed, everything in it is the run's.
			rec.Ahead = func() []reaper.Op { return []reaper.Op{reaper.KillUserns()} }
		}
		// Orphans adopted by nsh outlive it unless a teardown kills
		// them: from here on a signal tears down (issue 18 item 6: SIGINT
		// of a run that had only started processes left them).
		st.reg.Guard()
		rec.Apply = func() error { return spawn.SetSubreaper(true) }
		rec.Undo = func() (bool, error) {
			err := spawn.KillOrphans()
			if serr := spawn.SetSubreaper(false); err == nil {
				err = serr
			}
			return true, err
		}
		if _, err := st.ex.Do(th, rec); err != nil {
			fmt.Fprintf(os.Stderr, "nsh: warning: what the run's processes start may outlive it: %v\n", err)
		}
		return (*os.File)(nil)
	}).(*os.File)
}

// spawnJoins splits a context into the namespaces the spawner thread joins
// and those (user, time) the child must join itself.
func (st *state) spawnJoins(ctx nsctx.Context) (joins, self []nsthread.Join) {
	for i, k := range nsthread.Kinds {
		j := nsthread.Join{Fd: ctx[i].Fd(), Type: k.Flag, Name: ctx[i].String(), Hold: ctx[i]}
		if k.Name == "user" || k.Name == "time" {
			if !nsctx.Same(ctx[i], st.tab.Initial[i]) {
				self = append(self, j)
			}
			continue
		}
		joins = append(joins, j)
	}
	return joins, self
}

// procSpec is what every process builtin collects before the first syscall.
type procSpec struct {
	argv      []string
	env       []string
	ctx       nsctx.Context
	cfg       spawn.Config
	capture   [3]bool
	maxOutput int64 // bytes kept per captured stream; 0: no limit
	input     *string
	files     [3]string // paths for stdin/stdout/stderr
	null      [3]bool
	wait      bool
	detach    bool
	timeout   time.Duration
	check     bool
	isRun     bool
	propagate string // propagation= of clone(), for the trace
}

func parseArgv(v starlark.Value) ([]string, error) {
	argv, err := parseArgvWords(v)
	if err != nil {
		return nil, err
	}
	for _, a := range argv {
		if err := checkNoNUL("argument", a); err != nil {
			return nil, err
		}
	}
	return argv, nil
}

func parseArgvWords(v starlark.Value) ([]string, error) {
	switch v := v.(type) {
	case starlark.String:
		argv, err := splitCommand(string(v))
		if err != nil {
			return nil, err
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("empty command %q", string(v))
		}
		return argv, nil
	case *starlark.List, starlark.Tuple:
		var argv []string
		it := starlark.Iterate(v)
		defer it.Done()
		var x starlark.Value
		for it.Next(&x) {
			s, ok := starlark.AsString(x)
			if !ok {
				return nil, fmt.Errorf("argv element %s is a %s, not a string", x, x.Type())
			}
			argv = append(argv, s)
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("empty argv")
		}
		if argv[0] == "" {
			return nil, fmt.Errorf("empty command name in argv %s", v)
		}
		return argv, nil
	}
	return nil, fmt.Errorf("command must be a string or a list of strings, not %s", v.Type())
}

// splitCommand splits s into words as a POSIX shell would for a simple
// command: whitespace separates words, single quotes keep everything, double
// quotes keep everything but backslash escapes of $ ` " \ and newline, and a
// backslash outside quotes escapes the next character. No expansion is done.
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 == len(s) {
				cur.WriteByte(c) // a trailing backslash escapes nothing: sh keeps it
				inWord = true
				break
			}
			i++
			if s[i] != '\n' { // backslash-newline is removed, as sh removes it
				cur.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func parseEnv(v starlark.Value) ([]string, error) {
	if v == starlark.None {
		return os.Environ(), nil
	}
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("env must be a dict of strings, not %s", v.Type())
	}
	var env []string
	for _, kv := range d.Items() {
		k, ok1 := starlark.AsString(kv[0])
		val, ok2 := starlark.AsString(kv[1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("env must map strings to strings, not %s to %s", kv[0].Type(), kv[1].Type())
		}
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("invalid environment variable %q (its name is empty or contains '=' or a NUL byte)", k)
		}
		if err := checkNoNUL("environment variable "+strconv.Quote(k)+": value", val); err != nil {
			return nil, err
		}
		env = append(env, k+"="+val)
	}
	sort.Strings(env)
	return env, nil
}

// parseStdios reads the stdin=, stdout= and stderr= arguments.
func (p *procSpec) parseStdios(stdin, stdout, stderr starlark.Value) error {
	for i, s := range []struct {
		name string
		v    starlark.Value
	}{{"stdin", stdin}, {"stdout", stdout}, {"stderr", stderr}} {
		if err := p.parseStdio(i, s.name, s.v); err != nil {
			return err
		}
	}
	return nil
}

// parseStdio reads a stdin/stdout/stderr argument into spec slot i.
func (p *procSpec) parseStdio(i int, name string, v starlark.Value) error {
	switch v := v.(type) {
	case starlark.NoneType:
	case starlark.Bool:
		if v {
			if i == 0 {
				return fmt.Errorf("stdin=True is not supported: use input= with run(), or a file path")
			}
			p.capture[i] = true
		} else {
			p.null[i] = true
		}
	case starlark.String:
		if v == "" {
			return fmt.Errorf("%s: empty path", name)
		}
		p.files[i] = string(v)
	default:
		return fmt.Errorf("%s must be None, a bool or a path, not %s", name, v.Type())
	}
	return nil
}

func parseSeconds(name string, v starlark.Value) (time.Duration, error) {
	if v == starlark.None {
		return 0, nil
	}
	f, ok := starlark.AsFloat(v)
	if !ok {
		return 0, fmt.Errorf("%s must be a number of seconds, not %s", name, v.Type())
	}
	// Beyond this the product overflows time.Duration: run(timeout=1e10)
	// was refused as "not positive", p.wait(timeout=1e10) or nan waited
	// without end.
	if math.IsNaN(f) || math.Abs(f) > maxDurationSeconds {
		return 0, fmt.Errorf("%s %s is out of range (a number of seconds within ±%d)", name, v, maxDurationSeconds)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// maxDurationSeconds is the most whole seconds a time.Duration holds
// (about 292 years).
const maxDurationSeconds = math.MaxInt64 / 1_000_000_000

// parseIDMap reads a uidmap=/gidmap= argument (uidmap()/gidmap() values or
// (inside, outside[, count]) tuples) and applies the kernel's rules to it
// before anything is created: no overlaps, at most 340 lines, and, in a
// context in nsh's own user namespace, outside ids that exist there (in a
// user namespace the context moved into, the helper that writes the maps
// finds out).
func (st *state) parseIDMap(name string, v starlark.Value) (idmap.Map, error) {
	kind := strings.TrimSuffix(name, "map")
	maps, err := parseIDMaps(kind, v)
	if err != nil || v == nil || v == starlark.None {
		return nil, err
	}
	var own [][2]uint64
	if nsctx.Same(st.current().Get("user"), st.tab.Initial.Get("user")) {
		if own, err = spawn.OwnIDs(kind); err != nil {
			return nil, err
		}
	}
	if err := maps.Check(kind, own); err != nil {
		return nil, err
	}
	return maps, nil
}

func cloneBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("missing argument for argv")
	}
	var hostname, domainname, root, cwd, env, stdin, stdout, stderr, uidmap, gidmap starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
	var monotonic, boottime, uid, gid, groups starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
	var maxOutput starlark.Value = starlark.MakeInt(defaultMaxOutput)
	var kindsKw, dev starlark.Value = starlark.None, starlark.None
	mountProc, wait, detach, paused, lo := false, true, false, false, false
	propagation := "private"
	if err := starlark.UnpackArgs(fn.Name(), nil, kwargs,
		"kinds?", &kindsKw, "lo?", &lo, "dev?", &dev,
		"hostname?", &hostname, "domainname?", &domainname, "mount_proc?", &mountProc, "root?", &root,
		"cwd?", &cwd, "env?", &env, "stdin?", &stdin, "stdout?", &stdout, "stderr?", &stderr, "wait?", &wait,
		"uidmap?", &uidmap, "gidmap?", &gidmap, "monotonic?", &monotonic, "boottime?", &boottime,
		"propagation?", &propagation, "detach?", &detach, "paused?", &paused,
		"uid?", &uid, "gid?", &gid, "groups?", &groups, "max_output?", &maxOutput); err != nil {
		return nil, err
	}
	p := &procSpec{wait: wait, detach: detach}
	var err error
	if p.maxOutput, err = parseMaxOutput(maxOutput); err != nil {
		return nil, err
	}
	if p.argv, err = parseArgv(args[0]); err != nil {
		return nil, err
	}
	kinds := args[1:]
	if kindsKw != starlark.None {
		if len(kinds) > 0 {
			return nil, fmt.Errorf("kinds given twice: as arguments %s and as kinds=%s", kinds, kindsKw)
		}
		kinds = starlark.Tuple{kindsKw}
	}
	flags, err := parseKinds(kinds)
	if err != nil {
		return nil, err
	}
	if lo && flags&unix.CLONE_NEWNET == 0 {
		return nil, fmt.Errorf("lo=True needs a new net namespace: add \"net\" to the kinds")
	}
	p.cfg.LoUp = lo
	optStr := func(name string, v starlark.Value) (*string, error) {
		if v == starlark.None {
			return nil, nil
		}
		s, ok := starlark.AsString(v)
		if !ok {
			return nil, fmt.Errorf("%s must be a string, not %s", name, v.Type())
		}
		return &s, nil
	}
	if p.cfg.Hostname, err = optStr("hostname", hostname); err != nil {
		return nil, err
	}
	if p.cfg.Domainname, err = optStr("domainname", domainname); err != nil {
		return nil, err
	}
	for _, n := range []struct {
		name string
		v    *string
	}{{"hostname", p.cfg.Hostname}, {"domainname", p.cfg.Domainname}} {
		if n.v == nil {
			continue
		}
		if flags&unix.CLONE_NEWUTS == 0 {
			return nil, fmt.Errorf("%s=%q needs a new uts namespace: add \"uts\" to the kinds", n.name, *n.v)
		}
		if len(*n.v) > 64 {
			return nil, fmt.Errorf("%s %q is longer than 64 bytes", n.name, *n.v)
		}
		if err := checkNoNUL(n.name, *n.v); err != nil {
			return nil, err
		}
	}
	if r, err := optStr("root", root); err != nil {
		return nil, err
	} else if r != nil {
		if *r == "" {
			return nil, fmt.Errorf("root: empty path")
		}
		if err := checkNoNUL("root", *r); err != nil {
			return nil, err
		}
		if filepath.Clean(*r) == "/" {
			return nil, fmt.Errorf("root %q is already the root", *r)
		}
		p.cfg.Root = *r
		flags |= unix.CLONE_NEWNS
		// A minimal /dev: by default when the root's dev is an empty
		// directory (the child looks, in its mount namespace); dev=True
		// insists on it.
		switch dev {
		case starlark.None:
			p.cfg.Dev = spawn.DevIfDir
		case starlark.True:
			p.cfg.Dev = spawn.DevOn
		case starlark.False:
		default:
			return nil, fmt.Errorf("dev must be True, False or None, not %s", dev.Type())
		}
	} else if dev == starlark.True {
		return nil, fmt.Errorf("dev=True needs root=: the minimal /dev is made in a new root")
	}
	if mountProc {
		p.cfg.MountProc = true
		flags |= unix.CLONE_NEWNS
	}
	if c, err := optStr("cwd", cwd); err != nil {
		return nil, err
	} else if c != nil {
		if err := checkNoNUL("cwd", *c); err != nil {
			return nil, err
		}
		p.cfg.Cwd = *c
	}
	if p.env, err = parseEnv(env); err != nil {
		return nil, err
	}
	if err := p.parseStdios(stdin, stdout, stderr); err != nil {
		return nil, err
	}
	st, err := procStateOf(th)
	if err != nil {
		return nil, err
	}
	uids, err := st.parseIDMap("uidmap", uidmap)
	if err != nil {
		return nil, err
	}
	gids, err := st.parseIDMap("gidmap", gidmap)
	if err != nil {
		return nil, err
	}
	if (uids != nil || gids != nil || paused) && flags&unix.CLONE_NEWUSER == 0 {
		return nil, fmt.Errorf("uidmap/gidmap/paused need a new user namespace: add \"user\" to the kinds")
	}
	if paused && (uids != nil || gids != nil) {
		return nil, fmt.Errorf("paused=True writes no maps: leave out uidmap/gidmap and call set_idmaps(process, ...) before .resume()")
	}
	p.cfg.UIDMap, p.cfg.GIDMap = uids, gids
	p.cfg.Paused = paused
	if paused {
		p.wait = false
	}
	if p.cfg.Monotonic, err = parseSeconds("monotonic", monotonic); err != nil {
		return nil, err
	}
	if p.cfg.Boottime, err = parseSeconds("boottime", boottime); err != nil {
		return nil, err
	}
	if monotonic != starlark.None || boottime != starlark.None {
		if flags&unix.CLONE_NEWTIME == 0 {
			return nil, fmt.Errorf("monotonic/boottime need a new time namespace: add \"time\" to the kinds")
		}
		p.cfg.TimeOffsets = true
	}
	pflag, err := mountopt.Propagation(propagation, true)
	if err != nil {
		return nil, err
	}
	if flags&unix.CLONE_NEWNS != 0 {
		p.cfg.Propagation, p.propagate = pflag, propagation
	}
	p.cfg.New = flags
	p.ctx = st.current()
	if p.cfg.Root != "" {
		if err := checkRootDir(st, p.ctx, p.cfg.Root); err != nil {
			return nil, err
		}
	}
	if err := st.identityArgs(p, uid, gid, groups, flags&unix.CLONE_NEWUSER != 0, paused, uids, gids); err != nil {
		return nil, err
	}
	return st.start(th, p)
}

// checkRootDir checks that root, clone()'s root=, is a directory in the
// mount namespace of ctx, where the child will look for it.
func checkRootDir(st *state, ctx nsctx.Context, root string) error {
	var fi os.FileInfo
	stat := func() error {
		var err error
		fi, err = os.Stat(root)
		return err
	}
	var err error
	if nsctx.Same(ctx.Get("mnt"), st.tab.Initial.Get("mnt")) {
		err = stat()
	} else {
		err = nsthread.Do(st.tab.Joins(st.tab.Initial.With(ctx.Get("mnt"))), stat)
	}
	if err != nil {
		return nserr.New("stat", strconv.Quote(root), err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("root %q is not a directory", root)
	}
	return nil
}

// commonArgs parses what run() and spawn() share.
func (p *procSpec) commonArgs(th *starlark.Thread, cmd, ns, env, cwd starlark.Value) (*state, error) {
	var err error
	if p.argv, err = parseArgv(cmd); err != nil {
		return nil, err
	}
	if p.env, err = parseEnv(env); err != nil {
		return nil, err
	}
	if cwd != starlark.None {
		s, ok := starlark.AsString(cwd)
		if !ok {
			return nil, fmt.Errorf("cwd must be a string, not %s", cwd.Type())
		}
		if err := checkNoNUL("cwd", s); err != nil {
			return nil, err
		}
		p.cfg.Cwd = s
	}
	st, err := procStateOf(th)
	if err != nil {
		return nil, err
	}
	p.ctx = st.current()
	if ns != starlark.None {
		c, has, err := resolveTarget(st, ns)
		if err != nil {
			return nil, err
		}
		for i, k := range nsthread.Kinds {
			if has&k.Flag != 0 {
				p.ctx[i] = c[i]
			}
		}
	}
	return st, nil
}

func runBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cmd starlark.Value
	var ns, input, timeout, env, cwd starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
	var uid, gid, groups starlark.Value = starlark.None, starlark.None, starlark.None
	var maxOutput starlark.Value = starlark.MakeInt(defaultMaxOutput)
	check := true
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "cmd", &cmd, "ns?", &ns, "input?", &input,
		"check?", &check, "timeout?", &timeout, "env?", &env, "cwd?", &cwd,
		"uid?", &uid, "gid?", &gid, "groups?", &groups, "max_output?", &maxOutput); err != nil {
		return nil, err
	}
	p := &procSpec{wait: true, check: check, isRun: true}
	p.capture[1], p.capture[2] = true, true
	var err error
	if p.maxOutput, err = parseMaxOutput(maxOutput); err != nil {
		return nil, err
	}
	if input != starlark.None {
		s, ok := starlark.AsString(input)
		if !ok {
			return nil, fmt.Errorf("input must be a string, not %s", input.Type())
		}
		p.input = &s
	}
	if p.timeout, err = parseSeconds("timeout", timeout); err != nil {
		return nil, err
	}
	if timeout != starlark.None && p.timeout <= 0 {
		return nil, fmt.Errorf("timeout must be positive, not %s", timeout)
	}
	st, err := p.commonArgs(th, cmd, ns, env, cwd)
	if err != nil {
		return nil, err
	}
	if err := st.identityArgs(p, uid, gid, groups, false, false, nil, nil); err != nil {
		return nil, err
	}
	return st.start(th, p)
}

func spawnBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cmd starlark.Value
	var ns, env, cwd, stdin, stdout, stderr starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
	var uid, gid, groups starlark.Value = starlark.None, starlark.None, starlark.None
	var maxOutput starlark.Value = starlark.MakeInt(defaultMaxOutput)
	detach := false
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "cmd", &cmd, "ns?", &ns, "env?", &env, "cwd?", &cwd,
		"stdin?", &stdin, "stdout?", &stdout, "stderr?", &stderr, "detach?", &detach,
		"uid?", &uid, "gid?", &gid, "groups?", &groups, "max_output?", &maxOutput); err != nil {
		return nil, err
	}
	p := &procSpec{detach: detach}
	var err error
	if p.maxOutput, err = parseMaxOutput(maxOutput); err != nil {
		return nil, err
	}
	if err := p.parseStdios(stdin, stdout, stderr); err != nil {
		return nil, err
	}
	st, err := p.commonArgs(th, cmd, ns, env, cwd)
	if err != nil {
		return nil, err
	}
	if err := st.identityArgs(p, uid, gid, groups, false, false, nil, nil); err != nil {
		return nil, err
	}
	return st.start(th, p)
}

// Process is a process a run started.
type Process struct {
	st    *state
	argv  []string
	pid   int
	child *spawn.Child
	entry *lifecycle.Entry

	done chan struct{} // closed once reaped
	ws   unix.WaitStatus
	werr error

	outs   sync.WaitGroup // capture readers
	mu     sync.Mutex
	exited bool
	bufs   [3]*capture.Buffer // captured streams, nil where not captured
	pipes  [3]*os.File        // their read ends

	follow sync.Mutex // held by readline() and expect() while they read
	next   [3]int     // where they go on in bufs
}

// defaultMaxOutput is what run(), spawn() and clone() keep of each
// captured stream unless max_output= says otherwise.
const defaultMaxOutput = 64 << 20

// parseMaxOutput reads max_output=: a positive number of bytes, or None
// for no limit.
func parseMaxOutput(v starlark.Value) (int64, error) {
	if v == starlark.None {
		return 0, nil
	}
	i, ok := v.(starlark.Int)
	if !ok {
		return 0, fmt.Errorf("max_output must be a number of bytes or None (no limit), not %s", v.Type())
	}
	n, ok := i.Int64()
	if !ok || n <= 0 {
		return 0, fmt.Errorf("max_output must be a positive number of bytes or None (no limit), not %s (stdout=False discards output)", v)
	}
	return n, nil
}

// start opens the stdio files, starts the process and, for wait=True,
// waits for it. Files nsh opened for the child are closed once it runs.
func (st *state) start(th *starlark.Thread, p *procSpec) (starlark.Value, error) {
	cfg := &p.cfg
	cfg.Mode = spawn.Exec
	cfg.Argv, cfg.Env = p.argv, p.env
	cfg.Joins, cfg.Setns = st.spawnJoins(p.ctx)
	cwd := cfg.Cwd // as given: the trace leaves nsh's own out
	// What it sends must not be lost on links just brought up.
	if err := st.makeReady(); err != nil {
		return nil, err
	}
	sp := st.spawner()
	if !p.detach && cfg.New&unix.CLONE_NEWPID == 0 {
		cfg.Cgroup = st.tracker(th)
	}
	// The spawner thread has a working directory of its own (it unshared
	// CLONE_FS, and joining a mount namespace moves it to that root): in
	// nsh's own mount namespace, start in nsh's directory.
	if cfg.Cwd == "" && cfg.Root == "" && nsctx.Same(p.ctx.Get("mnt"), st.tab.Initial.Get("mnt")) {
		if wd, err := unix.Getwd(); err == nil { // one getcwd(2); os.Getwd stats $PWD and "." first
			cfg.Cwd = wd
		}
	}
	var closeAfter []*os.File
	var readers [3]*os.File
	var inputW *os.File
	cleanup := func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}
	fail := func(err error) (starlark.Value, error) {
		cleanup()
		for _, r := range readers {
			if r != nil {
				r.Close()
			}
		}
		if inputW != nil {
			inputW.Close()
		}
		return nil, err
	}
	for i := 0; i < 3; i++ {
		switch {
		case p.capture[i]:
			r, w, err := os.Pipe()
			if err != nil {
				return fail(nserr.New("pipe", "", err))
			}
			readers[i], cfg.Stdio[i] = r, w
			closeAfter = append(closeAfter, w)
		case p.null[i]:
			f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return fail(nserr.New("open", os.DevNull, err))
			}
			cfg.Stdio[i] = f
			closeAfter = append(closeAfter, f)
		case p.files[i] != "":
			var f *os.File
			var err error
			if i == 0 {
				f, err = os.Open(p.files[i])
			} else {
				f, err = os.OpenFile(p.files[i], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			}
			if err != nil {
				return fail(nserr.New("open", strconv.Quote(p.files[i]), err))
			}
			cfg.Stdio[i] = f
			closeAfter = append(closeAfter, f)
		case i == 0 && p.input != nil:
			r, w, err := os.Pipe()
			if err != nil {
				return fail(nserr.New("pipe", "", err))
			}
			cfg.Stdio[0], inputW = r, w
			closeAfter = append(closeAfter, r)
		}
	}
	// A process a lab starts and does not wait for is one of its
	// daemons: it outlives nsh up, until nsh down, and must not hold nsh
	// up's standard streams (its caller waits for their end): what it
	// would inherit is /dev/null and the lab's logs/ instead.
	daemon := !p.wait && !p.detach && st.lab != nil
	if daemon {
		for i := 0; i < 3; i++ {
			if cfg.Stdio[i] != nil {
				continue
			}
			f, err := st.lab.daemonStream(i, p.argv[0])
			if err != nil {
				return fail(err)
			}
			cfg.Stdio[i] = f
			closeAfter = append(closeAfter, f)
		}
	}
	if p.detach || daemon {
		cfg.Setsid = true
	} else {
		cfg.Pdeathsig = unix.SIGKILL
	}
	foreground := false
	if p.wait && !p.isRun && !p.detach && cfg.Stdio[0] == nil && term.IsTerminal(0) {
		if fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
			cfg.Foreground, cfg.TTY, foreground = true, 0, true
		}
	}
	rec := st.processRecord(p, cwd)
	var proc *Process
	var child *spawn.Child
	rec.Apply = func() error {
		var err error
		if child, err = sp.Start(cfg); err != nil {
			return err
		}
		rec.Pid = child.Pid
		rec.What = fmt.Sprintf("process %d (%s)", child.Pid, p.argv[0])
		proc = &Process{st: st, argv: p.argv, pid: child.Pid, child: child, done: make(chan struct{})}
		return nil
	}
	if !p.detach {
		rec.Undo = func() (bool, error) { return proc.reap() }
	}
	entry, err := st.ex.Do(th, rec)
	if err != nil {
		return fail(err)
	}
	proc.entry = entry
	if daemon {
		st.labDaemon(proc.pid, p.argv)
	}
	cleanup()
	for i, r := range readers {
		if r == nil {
			continue
		}
		proc.bufs[i], proc.pipes[i] = capture.New(p.maxOutput), r
		proc.outs.Add(1)
		go proc.read(proc.bufs[i], r)
	}
	if inputW != nil {
		go func(s string) {
			io.WriteString(inputW, s)
			inputW.Close()
		}(*p.input)
	}
	reaped := func(ws unix.WaitStatus, err error) {
		proc.mu.Lock()
		proc.ws, proc.werr, proc.exited = ws, err, true
		child.Close()
		proc.mu.Unlock()
		close(proc.done)
		for _, r := range proc.pipes {
			if r != nil {
				r.SetReadDeadline(time.Now()) // see read; fails once it closed r
			}
		}
	}
	// Nothing can interrupt a wait without a timeout before the run
	// handles signals (a signal ends nsh, and the child with it), and
	// there may be no output to collect: then this thread blocks in the
	// wait itself, and no goroutine has to hand the exit over.
	here := p.wait && p.timeout == 0 && readers == [3]*os.File{} && !st.reg.Guarded()
	if !here {
		go func() { reaped(child.Wait()) }()
	}
	if !p.wait {
		return proc, nil
	}
	if here {
		reaped(child.WaitBlocking())
	}
	code, err := proc.waitFor(st.reg, p.timeout)
	if foreground {
		if ferr := sp.Foreground(0, unix.Getpgrp()); ferr != nil && err == nil {
			err = ferr
		}
	}
	if err != nil {
		// Timed out or interrupted: the command does not outlive the call.
		if kerr := proc.kill(unix.SIGKILL); kerr == nil && proc.entry != nil {
			proc.entry.Release()
		}
		if errors.Is(err, errTimeout) {
			return nil, fmt.Errorf("command %s timed out after %s", quoteArgv(p.argv), p.timeout)
		}
		return nil, err
	}
	if proc.entry != nil {
		// Reaped and its output read: nothing is left to undo.
		proc.entry.Forget()
	}
	if p.check && code != 0 {
		return nil, fmt.Errorf("command %s exited with code %d%s", quoteArgv(p.argv), code, stderrTail(proc.bufs[2]))
	}
	return proc, nil
}

var errTimeout = fmt.Errorf("timed out")

// read collects a captured stream until end of file or, once the process
// has exited (reaped sets a read deadline that wakes it), until the pipe
// is empty: a background descendant that keeps the pipe open must not
// hold up the process's result. What such a descendant writes later is
// read and thrown away, so it never blocks on a full pipe (nor dies of
// SIGPIPE), until it closes the pipe: at the latest when the run's
// teardown kills it.
func (p *Process) read(c *capture.Buffer, r *os.File) {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			c.Write(buf[:n])
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			r.Close()
			c.Close()
			p.outs.Done()
			return
		}
		break
	}
	eof := false
	if r.SetReadDeadline(time.Time{}) == nil {
		if rc, err := r.SyscallConn(); err == nil {
			rc.Read(func(fd uintptr) bool {
				for {
					n, err := unix.Read(int(fd), buf)
					if n > 0 {
						c.Write(buf[:n])
						continue
					}
					if errors.Is(err, unix.EINTR) {
						continue
					}
					eof = n == 0 && err == nil
					return true // empty (EAGAIN) or closed: do not wait
				}
			})
		}
	}
	c.Close()
	p.outs.Done()
	if !eof {
		io.Copy(io.Discard, r)
	}
	r.Close()
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]#~") {
			q[i] = a
		} else {
			q[i] = strconv.Quote(a)
		}
	}
	return "[" + strings.Join(q, " ") + "]"
}

func stderrTail(b *capture.Buffer) string {
	if b == nil {
		return ""
	}
	s := b.Tail()
	if s == "" {
		return ""
	}
	return "; stderr:\n" + s
}

// waitFor waits for the exit and for the captured output, honouring the
// run's cancellation and an optional timeout.
func (p *Process) waitFor(reg *lifecycle.Registry, timeout time.Duration) (int, error) {
	var tc <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	ctx := reg.Context()
	select {
	case <-p.done:
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for process %d: interrupted", p.pid)
	case <-tc:
		return 0, errTimeout
	}
	if p.bufs != [3]*capture.Buffer{} {
		outs := make(chan struct{})
		go func() { p.outs.Wait(); close(outs) }()
		select {
		case <-outs:
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for output of process %d: interrupted", p.pid)
		case <-tc:
			return 0, errTimeout
		}
	}
	if p.werr != nil {
		return 0, p.werr
	}
	return exitCode(p.ws), nil
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func (p *Process) kill(sig unix.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return nil
	}
	err := p.child.Kill(sig)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return nserr.New("kill", fmt.Sprintf("-%s %d", unix.SignalName(sig), p.pid), err)
}

// reap is the process's undo at the end of the run: SIGKILL, reap, and
// wait (briefly) for its output pipes to close. It reports whether the
// process was still running.
func (p *Process) reap() (bool, error) {
	running := !p.isDone()
	if err := p.kill(unix.SIGKILL); err != nil {
		return running, err
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return running, fmt.Errorf("process %d did not die after SIGKILL", p.pid)
	}
	outs := make(chan struct{})
	go func() { p.outs.Wait(); close(outs) }()
	select {
	case <-outs:
	case <-time.After(2 * time.Second):
		// A descendant outside its PID namespace keeps the pipe open;
		// the reader ends when it does.
	}
	return running, nil
}

var (
	_ starlark.HasAttrs = (*Process)(nil)
	_ contextTarget     = (*Process)(nil)
)

// String renders the process with its state: <process 42 [sleep 1]
// running>, <process 42 [ip -br a] exited 0, stdout "lo UNKNOWN …">, or
// <process 42 [sleep 60] killed by SIGTERM>. A finished one shows the
// start of its captured output (stdout, else stderr), at most
// reprOutput characters with newlines escaped, and a note for a captured
// stream that was cut: (stdout cut at 1048576 bytes).
func (p *Process) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "<process %d %s", p.pid, quoteArgv(p.argv))
	switch {
	case !p.exited && p.child.Paused():
		b.WriteString(" paused")
	case !p.exited:
		b.WriteString(" running")
	case p.werr != nil:
		fmt.Fprintf(&b, " (wait failed: %v)", p.werr)
	case p.ws.Signaled():
		fmt.Fprintf(&b, " killed by %s", unix.SignalName(p.ws.Signal()))
		if p.ws.CoreDump() {
			b.WriteString(" (core dumped)")
		}
	default:
		fmt.Fprintf(&b, " exited %d", p.ws.ExitStatus())
	}
	if p.exited {
		for fd := 1; fd <= 2; fd++ {
			// One byte past what quoteHead shows tells it there is more.
			if h := p.bufs[fd].Head(4*reprOutput + 1); len(h) > 0 {
				fmt.Fprintf(&b, ", %s %s", [3]string{"", "stdout", "stderr"}[fd], quoteHead(h, reprOutput))
				break
			}
		}
	}
	for i, c := range p.bufs {
		if c != nil && c.Cut() {
			fmt.Fprintf(&b, " (%s cut at %d bytes)", [3]string{"", "stdout", "stderr"}[i], c.Max())
		}
	}
	b.WriteString(">")
	return b.String()
}

// reprOutput is how many characters of its output a process's str() shows.
const reprOutput = 60

// quoteHead quotes the first n characters of b as a Starlark string,
// with "…" at its end if there was more.
func quoteHead(b []byte, n int) string {
	head := string(b[:min(len(b), 4*n)]) // n characters take at most 4n bytes
	i := 0
	for at := range head {
		if i == n {
			return strconv.Quote(head[:at] + "…")
		}
		i++
	}
	if len(head) < len(b) {
		head += "…"
	}
	return strconv.Quote(head)
}

// Type returns "nsh.process".
func (p *Process) Type() string { return "nsh.process" }

// Freeze is a no-op.
func (p *Process) Freeze() {}

// Truth is always true.
func (p *Process) Truth() starlark.Bool { return true }

// Hash hashes the pid.
func (p *Process) Hash() (uint32, error) { return uint32(p.pid), nil }

// AttrNames lists the attributes and methods.
func (p *Process) AttrNames() []string { return processType.AttrNames() }

// Attr returns an attribute or a bound method.
func (p *Process) Attr(name string) (starlark.Value, error) { return processType.Attr(p, name) }

func (p *Process) isDone() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// captured is the output captured on fd 1 or 2, None if not captured.
func (p *Process) captured(fd int) starlark.Value {
	b := p.bufs[fd]
	if b == nil {
		return starlark.None
	}
	return starlark.String(b.String())
}

// cut reports whether the output captured on any of fds was cut at max_output.
func (p *Process) cut(fds ...int) starlark.Bool {
	for _, fd := range fds {
		if b := p.bufs[fd]; b != nil && b.Cut() {
			return true
		}
	}
	return false
}

func (p *Process) targetContext(st *state) (nsctx.Context, error) {
	if p.isDone() {
		return nsctx.Context{}, fmt.Errorf("process %d has exited; its namespaces are gone", p.pid)
	}
	return st.tab.OpenProc(p.pid)
}

func (p *Process) waitMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var timeout starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "timeout?", &timeout); err != nil {
		return nil, err
	}
	d, err := parseSeconds("timeout", timeout)
	if err != nil {
		return nil, err
	}
	code, err := p.waitFor(lifecycle.From(th), d)
	if errors.Is(err, errTimeout) {
		return nil, fmt.Errorf("process %d still running after %s", p.pid, d)
	}
	if err != nil {
		return nil, err
	}
	if p.entry != nil {
		// Reaped and its output read: nothing is left to undo, and the
		// registry need not keep the process (issue 18 item 5: a loop
		// of spawn().wait() grew by ~1.7 KB a process until the run's end).
		p.entry.Forget()
	}
	return starlark.MakeInt(code), nil
}

func parseSignal(v starlark.Value) (unix.Signal, error) {
	switch v := v.(type) {
	case starlark.Int:
		n, ok := v.Int64()
		if !ok || n <= 0 || n >= 65 {
			return 0, fmt.Errorf("invalid signal number %s", v)
		}
		return unix.Signal(n), nil
	case starlark.String:
		// ASCII case only: strings.ToUpper folds "ı" (dotless i) and
		// "ſ" (long s) into I and S, so "kıll" would have been SIGKILL.
		name := string(v)
		for i := 0; i < len(name); i++ {
			if name[i] >= 0x80 {
				return 0, fmt.Errorf("unknown signal %q", string(v))
			}
		}
		name = strings.ToUpper(name)
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		if s := unix.SignalNum(name); s != 0 {
			return s, nil
		}
		return 0, fmt.Errorf("unknown signal %q", string(v))
	}
	return 0, fmt.Errorf("signal must be a name or number, not %s", v.Type())
}

func (p *Process) resumeMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return nil, fmt.Errorf("process %d has exited", p.pid)
	}
	if !p.child.Paused() {
		return nil, fmt.Errorf("process %d is not paused (resume() follows clone(..., \"user\", paused=True))", p.pid)
	}
	if err := p.child.Resume(); err != nil {
		return nil, err
	}
	p.pid = p.child.Pid // a new PID namespace's first process, past its relay
	return starlark.None, nil
}

func (p *Process) killMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var sigv starlark.Value = starlark.String("SIGTERM")
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "signal?", &sigv); err != nil {
		return nil, err
	}
	sig, err := parseSignal(sigv)
	if err != nil {
		return nil, err
	}
	return starlark.None, p.kill(sig)
}

// processRecord describes the start of p, in directory cwd ("": nsh's),
// for the trace: its command line in the namespaces of its context, with
// unshare(1)'s options for those it is born in, setpriv(1)'s for its ids.
// A run that does not trace gets the record without its description: a
// process start is cheap, and the description is not.
func (st *state) processRecord(p *procSpec, cwd string) *change.Process {
	cfg := &p.cfg
	rec := &change.Process{Argv: p.argv, Detach: p.detach}
	rec.What, rec.Aside = "process ("+p.argv[0]+")", true
	if !st.ex.Tracing() {
		return rec
	}
	rec.Enter, rec.Cwd, rec.Root, rec.Background = st.enterOf(p.ctx), cwd, cfg.Root, !p.wait
	rec.Hostname, rec.Domain = cfg.Hostname, cfg.Domainname
	rec.LoUp, rec.Dev = cfg.LoUp, cfg.Root != "" && cfg.Dev != spawn.DevOff
	rec.Unshare = unshareFlags(cfg.New, p.propagate, cfg.UIDMap, cfg.GIDMap, cfg.Paused)
	if cfg.New&unix.CLONE_NEWPID != 0 {
		rec.Unshare = append(rec.Unshare, "--fork")
	}
	if cfg.MountProc {
		rec.Unshare = append(rec.Unshare, "--mount-proc")
	}
	if cfg.TimeOffsets {
		rec.Unshare = append(rec.Unshare, "--monotonic="+change.Seconds(cfg.Monotonic), "--boottime="+change.Seconds(cfg.Boottime))
	}
	if id := cfg.Identity; id != nil {
		if id.UID >= 0 {
			rec.Setpriv = append(rec.Setpriv, fmt.Sprintf("--reuid=%d", id.UID))
		}
		if id.GID >= 0 {
			rec.Setpriv = append(rec.Setpriv, fmt.Sprintf("--regid=%d", id.GID))
		}
		if id.GroupsGiven {
			if len(id.Groups) == 0 {
				rec.Setpriv = append(rec.Setpriv, "--clear-groups")
			} else {
				g := make([]string, len(id.Groups))
				for i, x := range id.Groups {
					g[i] = strconv.Itoa(x)
				}
				rec.Setpriv = append(rec.Setpriv, "--groups="+strings.Join(g, ","))
			}
		}
	}
	return rec
}

// unshareFlags renders unshare(1)'s options for the new namespaces of
// flags: "--user" (with the maps: "--map-root-user" for none given,
// "--map-users=OUTER,INNER,COUNT"), "--net", "--mount" (with
// "--propagation=P" unless private, unshare's default) and so on.
func unshareFlags(flags int, propagation string, uids, gids idmap.Map, paused bool) []string {
	var out []string
	for _, k := range nsthread.Kinds {
		if flags&k.Flag == 0 {
			continue
		}
		name := k.Name
		if name == "mnt" {
			name = "mount"
		}
		out = append(out, "--"+name)
		switch {
		case k.Name == "user" && paused:
		case k.Name == "user" && uids == nil && gids == nil:
			out = append(out, "--map-root-user")
		case k.Name == "user":
			for _, m := range []struct {
				opt string
				m   idmap.Map
			}{{"--map-users=", uids}, {"--map-groups=", gids}} {
				for _, e := range m.m {
					out = append(out, fmt.Sprintf("%s%d,%d,%d", m.opt, e.Outside, e.Inside, e.Count))
				}
			}
		case k.Name == "mnt" && propagation != "" && propagation != "private":
			out = append(out, "--propagation="+propagation)
		}
	}
	return out
}
