package main

// Labs across machines: nsh up --host NAME=TARGET[,ADDR] ... brings one
// lab up on several hosts. nsh (the coordinator, which needs no
// privilege) reaches each host by running a transport command, a template
// ("ssh {target}" by default) split into words with {target} replaced,
// followed by the remote nsh and its arguments:
//
//   - nsh --version on every host first; different versions (among the
//     hosts, or from the coordinator's) refuse the start, naming each.
//   - nsh underlay-addr [PEER] (hidden) on each host whose address
//     --host does not give: the source address of its route towards
//     PEER (another host's given or found address), or without one
//     towards 192.0.2.1 (its default route), or else its first global
//     address.
//   - nsh up --name LAB --as-host NAME --hosts A=ADDR,... - on every host
//     at once, with the recipe, the modules it loads and its arguments on
//     stdin (a JSON hostPayload); the host unpacks them into a private
//     temporary directory, runs the recipe from there as nsh up does,
//     with lab.host and hosts set, and removes the directory. Its part is
//     the lab LAB@NAME there (labs.Key), so that hosts sharing one
//     machine's /run keep apart. Each host's output is printed with its
//     name in front of every line.
//   - A host whose part is up says so on stdout (readyLine) and keeps it
//     only when the coordinator then sends "commit" (once every host is
//     up); when its stdin ends instead (another host failed, or the
//     coordinator or the connection died), it takes its part down again.
//     Its stdin ending while the recipe runs interrupts the run, as
//     SIGTERM would. So a failing host, or a coordinator that dies, leaves
//     nothing half built across the hosts (a host's nsh killed outright
//     leaves its part to nsh gc or nsh down there, as for any lab).
//   - nsh down/status/graph LAB --host ... run nsh down LAB@NAME,
//     nsh status --json LAB@NAME and nsh graph --json LAB@NAME on every
//     host and combine what they print.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/topo"
	"nsh.dev/nsh/interp"
)

const hostsUsage = `several hosts:
  nsh up --host NAME=TARGET[,ADDR] ... [--transport T] [--remote-nsh CMD]
         [--name LAB] [--prefix P] [--replace] RECIPE.star [ARG...]
                 bring lab LAB up on every host at once: each runs the
                 recipe (sent with the modules it loads) with lab.host its
                 NAME and hosts a dict NAME -> underlay address, and builds
                 its part; if one fails, the others are taken down again
  nsh down|status|graph LAB --host NAME=TARGET ... [--transport T]
                 the same on every host, combined (status: one table with a
                 HOST column; graph: one topology with the VXLAN links)
  T is the command that reaches a host, {target} replaced by TARGET
  (default "ssh {target}"); CMD the nsh to run there (default "nsh").
  ADDR is the host's underlay address; without it nsh asks the host.
`

// defaultTransport reaches a host.
const defaultTransport = "ssh {target}"

// hostSpec is one --host NAME=TARGET[,ADDR].
type hostSpec struct {
	Name, Target, Addr string
}

// multiHost is what the --host, --transport and --remote-nsh flags say.
type multiHost struct {
	hosts     []hostSpec
	transport string
	remote    []string // the nsh to run on a host, as words
	// out keeps lines of different hosts from mixing on our stdout and
	// stderr.
	out sync.Mutex
}

// parseHostSpec parses NAME=TARGET[,ADDR].
func parseHostSpec(s string) (hostSpec, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || rest == "" {
		return hostSpec{}, fmt.Errorf("--host %q: want NAME=TARGET or NAME=TARGET,ADDR", s)
	}
	if err := labs.CheckName(name); err != nil {
		return hostSpec{}, fmt.Errorf("--host %q: host name: %v", s, err)
	}
	h := hostSpec{Name: name, Target: rest}
	if t, addr, ok := strings.Cut(rest, ","); ok {
		h.Target = t
		if net.ParseIP(addr) == nil {
			return hostSpec{}, fmt.Errorf("--host %q: %q is no IP address", s, addr)
		}
		h.Addr = net.ParseIP(addr).String()
	}
	if h.Target == "" {
		return hostSpec{}, fmt.Errorf("--host %q: no target", s)
	}
	return h, nil
}

// takeHostFlags removes --host, --transport and --remote-nsh (with their
// values, as "--flag V" or "--flag=V") from args, up to the first
// argument that is no flag after the verb's own (for up: the recipe,
// after which come its arguments). m is nil when there is no --host.
func takeHostFlags(verb string, args []string) (m *multiHost, rest []string, err error) {
	m = &multiHost{transport: defaultTransport, remote: []string{"nsh"}}
	transportSet := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		flag, val, eq := strings.Cut(a, "=")
		switch flag {
		case "--host", "--transport", "--remote-nsh":
		default:
			rest = append(rest, a)
			if verb == "up" && !strings.HasPrefix(a, "-") && (i == 0 || !isUpValueFlag(args[i-1])) {
				// The recipe: what follows is its arguments.
				rest = append(rest, args[i+1:]...)
				i = len(args)
			}
			continue
		}
		if !eq {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("%s needs a value", flag)
			}
			i++
			val = args[i]
		}
		switch flag {
		case "--host":
			h, err := parseHostSpec(val)
			if err != nil {
				return nil, nil, err
			}
			for _, o := range m.hosts {
				if o.Name == h.Name {
					return nil, nil, fmt.Errorf("--host %s given twice", h.Name)
				}
			}
			m.hosts = append(m.hosts, h)
		case "--transport":
			if !strings.Contains(val, "{target}") {
				return nil, nil, fmt.Errorf("--transport %q: no {target} in it", val)
			}
			m.transport, transportSet = val, true
		case "--remote-nsh":
			m.remote = strings.Fields(val)
			if len(m.remote) == 0 {
				return nil, nil, errors.New("--remote-nsh: empty")
			}
		}
	}
	if len(m.hosts) == 0 {
		if transportSet {
			return nil, nil, errors.New("--transport without --host")
		}
		return nil, args, nil
	}
	return m, rest, nil
}

// isUpValueFlag reports whether a is a flag of nsh up that takes the next
// argument as its value.
func isUpValueFlag(a string) bool { return a == "--name" || a == "--prefix" }

// command is the argv that runs nsh with args on host h.
func (m *multiHost) command(h hostSpec, args ...string) []string {
	var argv []string
	for _, w := range strings.Fields(m.transport) {
		argv = append(argv, strings.ReplaceAll(w, "{target}", h.Target))
	}
	argv = append(argv, m.remote...)
	return append(argv, args...)
}

// output runs nsh with args on h and returns its standard output; its
// standard error goes to ours with h's name in front.
func (m *multiHost) output(h hostSpec, args ...string) ([]byte, error) {
	argv := m.command(h, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	pw := m.prefixWriter(os.Stderr, h.Name)
	cmd.Stderr = pw
	out, err := cmd.Output()
	pw.Flush()
	if err != nil {
		return out, fmt.Errorf("host %s (%s): %v", h.Name, strings.Join(argv, " "), err)
	}
	return out, nil
}

// each runs fn for every host at once and returns the errors, by host.
func (m *multiHost) each(fn func(h hostSpec) error) map[string]error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := map[string]error{}
	for _, h := range m.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(h); err != nil {
				mu.Lock()
				errs[h.Name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// names lists the hosts of errs, in the order of the --host flags.
func (m *multiHost) names(errs map[string]error) []string {
	var out []string
	for _, h := range m.hosts {
		if errs[h.Name] != nil {
			out = append(out, h.Name)
		}
	}
	return out
}

// checkVersions asks every host's nsh --version and refuses hosts whose
// version differs from this nsh's.
func (m *multiHost) checkVersions() error {
	var mu sync.Mutex
	got := map[string]string{}
	errs := m.each(func(h hostSpec) error {
		out, err := m.output(h, "--version")
		if err != nil {
			return err
		}
		mu.Lock()
		got[h.Name] = strings.TrimSpace(string(out))
		mu.Unlock()
		return nil
	})
	for _, n := range m.names(errs) {
		return fmt.Errorf("asking host %s for its nsh version: %v", n, errs[n])
	}
	mine := "nsh " + version
	differ := false
	var each []string
	for _, h := range m.hosts {
		differ = differ || got[h.Name] != mine
		each = append(each, fmt.Sprintf("%s: %s", h.Name, got[h.Name]))
	}
	if differ {
		return fmt.Errorf("the hosts' nsh versions differ (%s; this one: %s): install the same nsh on every host", strings.Join(each, ", "), mine)
	}
	return nil
}

// resolveAddrs asks each host whose address --host does not give for its
// underlay address (nsh underlay-addr), towards a host whose address is
// known when there is one.
func (m *multiHost) resolveAddrs() error {
	for i := range m.hosts {
		h := &m.hosts[i]
		if h.Addr != "" {
			continue
		}
		args := []string{"underlay-addr"}
		for _, o := range m.hosts {
			if o.Name != h.Name && o.Addr != "" {
				args = append(args, o.Addr)
				break
			}
		}
		out, err := m.output(*h, args...)
		if err != nil {
			return fmt.Errorf("asking host %s for its underlay address: %v (give it as --host %s=%s,ADDR)", h.Name, err, h.Name, h.Target)
		}
		addr := strings.TrimSpace(string(out))
		if net.ParseIP(addr) == nil {
			return fmt.Errorf("host %s gave %q as its underlay address, which is no IP address (give it as --host %s=%s,ADDR)", h.Name, addr, h.Name, h.Target)
		}
		h.Addr = addr
	}
	return nil
}

// hostsArg renders the hosts' addresses for --hosts: NAME=ADDR,...
func (m *multiHost) hostsArg() string {
	var parts []string
	for _, h := range m.hosts {
		parts = append(parts, h.Name+"="+h.Addr)
	}
	return strings.Join(parts, ",")
}

// parseHostsArg parses --hosts NAME=ADDR,...
func parseHostsArg(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		n, a, ok := strings.Cut(p, "=")
		if !ok || labs.CheckName(n) != nil || net.ParseIP(a) == nil {
			return nil, fmt.Errorf("--hosts: %q is not NAME=ADDR", p)
		}
		out[n] = a
	}
	return out, nil
}

// hostPayload is what nsh up sends a host on stdin.
type hostPayload struct {
	Bundle *interp.Bundle `json:"bundle"`
	Recipe string         `json:"recipe"` // as named on the coordinator's command line
	Args   []string       `json:"args,omitempty"`
}

// readyLine is what a host's nsh up prints on stdout when its part is up
// and it waits for the coordinator's commit (not shown to the user).
const readyLine = "\x1ensh up: part up, waiting for commit"

// hostVerdict is what a host's nsh up hears from the coordinator after
// the payload: "commit", or the end of its stdin.
type hostVerdict struct {
	done    atomic.Bool   // the recipe has finished: the end of stdin no longer interrupts it
	gone    chan struct{} // closed at the end of stdin
	verdict chan string   // "commit", or "" for the end of stdin
}

// awaitVerdict reads the rest of stdin (r) in the background, for the
// verdict: a line.
func awaitVerdict(r io.Reader) *hostVerdict {
	v := &hostVerdict{gone: make(chan struct{}), verdict: make(chan string, 1)}
	go func() {
		br := bufio.NewReader(r)
		line, err := br.ReadString('\n')
		for err == nil && strings.TrimSpace(line) == "" {
			line, err = br.ReadString('\n') // the payload's newline
		}
		if err != nil {
			close(v.gone)
			line = ""
		}
		v.verdict <- strings.TrimSpace(line)
	}()
	return v
}

// watch interrupts run r, as SIGTERM would, if stdin ends while its
// recipe runs (the coordinator or its connection died): the run undoes
// what it made as any interrupted nsh up does.
func (v *hostVerdict) watch(r *interp.Run) {
	go func() {
		<-v.gone
		if !v.done.Load() {
			fmt.Fprintln(os.Stderr, "nsh: up: nsh up --host went away (this nsh's stdin ended): interrupting the recipe")
			r.Interrupt(unix.SIGTERM)
		}
	}()
}

// commit waits for the coordinator's verdict on lab key, which is up:
// "commit" keeps it; the end of stdin takes it down again.
func (v *hostVerdict) commit(key string) int {
	fmt.Println(readyLine)
	if <-v.verdict == "commit" {
		return 0
	}
	fmt.Fprintf(os.Stderr, "nsh: lab %q is not up on every host (or nsh up --host went away): taking down this host's part\n", key)
	// 0 once taken down: what the coordinator expects of a part it did
	// not commit (its failure is the host that failed).
	return downLab(key, os.Stderr)
}

// multiCmd runs the lab commands given --host, before anything else (the
// coordinator needs no privilege, so no rootless lab): done is false when
// args are not such a command.
func multiCmd(args []string) (code int, done bool) {
	if len(args) == 0 {
		return 0, false
	}
	verb := args[0]
	switch verb {
	case "up", "down", "status", "inspect", "graph":
	default:
		return 0, false
	}
	m, rest, err := takeHostFlags(verb, args[1:])
	if err != nil {
		return labFail("%s: %v\n%s", verb, err, hostsUsage), true
	}
	if m == nil {
		return 0, false
	}
	switch verb {
	case "up":
		return m.up(rest), true
	case "down":
		return m.down(rest), true
	case "graph":
		return m.graph(rest), true
	}
	return m.status(rest), true
}

// up is nsh up --host ...
func (m *multiHost) up(args []string) int {
	var name string
	var flags []string // passed on to every host
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		flag, val, eq := strings.Cut(a, "=")
		switch {
		case a == "--replace":
			flags = append(flags, a)
		case flag == "--name" || flag == "--prefix":
			if !eq {
				if i+1 >= len(args) {
					return labFail("up: %s needs a value", a)
				}
				i++
				val = args[i]
			}
			if flag == "--name" {
				name = val
				continue
			}
			// Sent as a word of the remote command: kept to characters
			// no shell on the way reads.
			if val != "" && labs.CheckName(val) != nil {
				return labFail("up: --prefix %q: with --host, a prefix is letters, digits, '_', '.' or '-' (it is passed through the transport's command line)", val)
			}
			flags = append(flags, "--prefix", val)
		case a == "--dry-run":
			return labFail("up: --dry-run is for one machine: it cannot be combined with --host")
		case strings.HasPrefix(a, "-"):
			return labFail("up: unknown flag %q\n%s", a, hostsUsage)
		default:
			goto recipe
		}
	}
recipe:
	if i >= len(args) {
		return labFail("up: which recipe?\n%s", hostsUsage)
	}
	recipe, rargs := args[i], args[i+1:]
	if name == "" {
		name = strings.TrimSuffix(baseName(recipe), ".star")
	}
	if err := labs.CheckName(name); err != nil {
		return labFail("up: %v", err)
	}
	b, err := interp.NewBundle(recipe)
	if err != nil {
		return labFail("up: %v", err)
	}
	payload, err := json.Marshal(hostPayload{Bundle: b, Recipe: recipe, Args: rargs})
	if err != nil {
		return labFail("up: %v", err)
	}
	if err := m.checkVersions(); err != nil {
		return labFail("up: %v", err)
	}
	if err := m.resolveAddrs(); err != nil {
		return labFail("up: %v", err)
	}
	var hs []string
	for _, h := range m.hosts {
		hs = append(hs, fmt.Sprintf("%s (%s, %s)", h.Name, h.Target, h.Addr))
	}
	fmt.Fprintf(os.Stderr, "nsh: bringing lab %q up on %d hosts: %s; sending %s\n", name, len(m.hosts), strings.Join(hs, ", "), strings.Join(b.Names(), ", "))
	runs := make([]*hostRun, len(m.hosts))
	for i, h := range m.hosts {
		a := append([]string{"up", "--name", name, "--as-host", h.Name, "--hosts", m.hostsArg()}, flags...)
		runs[i] = m.start(h, payload, append(a, "-")...)
	}
	// Every host's part up, or failed: then commit. At the first failure
	// every host's stdin ends: a part that is up takes itself down
	// again, a run still building is interrupted.
	type event struct {
		r   *hostRun
		err error // nil: up
	}
	events := make(chan event, len(runs))
	for _, r := range runs {
		go func() {
			select {
			case <-r.ready:
				events <- event{r, nil}
			case err := <-r.exit:
				r.exited = true
				if err == nil {
					err = errors.New("nsh up ended without saying its part is up")
				}
				events <- event{r, err}
			}
		}()
	}
	errs := map[string]error{}
	var stopped []string // interrupted by the first failure: they undo themselves
	closeAll := func(commit bool) {
		for _, r := range runs {
			if r.stdin != nil {
				if commit {
					io.WriteString(r.stdin, "commit\n")
				}
				r.stdin.Close()
				r.stdin = nil
			}
		}
	}
	for range runs {
		e := <-events
		switch {
		case e.err != nil && len(errs) > 0:
			stopped = append(stopped, e.r.h.Name)
		case e.err != nil:
			errs[e.r.h.Name] = e.err
			closeAll(false)
		}
	}
	if len(errs) == 0 {
		closeAll(true)
	}
	// The hosts' ends: after a commit, each nsh up exits 0 keeping its
	// part; without one, a part that was up exits 0 once taken down.
	var after []string
	for _, r := range runs {
		if r.exited {
			continue
		}
		if err := <-r.exit; err != nil {
			errs[r.h.Name] = err
			after = append(after, r.h.Name)
		}
	}
	if len(errs) == 0 {
		fmt.Fprintf(os.Stderr, "nsh: lab %q is up on %d hosts (nsh status %s --host ...; nsh down %s --host ...)\n", name, len(m.hosts), name, name)
		return 0
	}
	if len(after) == len(errs) {
		return labFail("up: lab %q was up on every host, then nsh up failed on host %s: nsh status %s --host ... shows what is up, nsh down %s --host ... takes it down",
			name, strings.Join(after, ", "), name, name)
	}
	var failed, why, back []string
	for _, r := range runs {
		switch {
		case errs[r.h.Name] != nil && !slices.Contains(after, r.h.Name):
			failed = append(failed, r.h.Name)
			why = append(why, fmt.Sprintf("%s: %v", r.h.Name, errs[r.h.Name]))
		case !r.exited:
			back = append(back, r.h.Name)
		}
	}
	var done []string
	if len(back) > 0 {
		done = append(done, "taken down again on "+strings.Join(back, ", "))
	}
	if len(stopped) > 0 {
		done = append(done, "interrupted and undone on "+strings.Join(stopped, ", "))
	}
	if len(done) == 0 {
		done = append(done, "nothing else was up")
	}
	if len(after) > 0 {
		return labFail("up: lab %q failed on host %s (%s); %s; taking it down failed on host %s: nsh down %s --host ... tries again",
			name, strings.Join(failed, ", "), strings.Join(why, "; "), strings.Join(done, "; "), strings.Join(after, ", "), name)
	}
	return labFail("up: lab %q failed on host %s (%s); %s: nothing of it is up",
		name, strings.Join(failed, ", "), strings.Join(why, "; "), strings.Join(done, "; "))
}

// hostRun is a host's nsh up under way.
type hostRun struct {
	h      hostSpec
	stdin  io.WriteCloser // nil when it could not start
	ready  chan struct{}  // closed when it says its part is up (readyLine)
	exit   chan error     // its end: nil for exit status 0
	exited bool           // exit was read
}

// start runs nsh with args on h, sends it payload, and keeps its stdin
// open for the verdict.
func (m *multiHost) start(h hostSpec, payload []byte, args ...string) *hostRun {
	r := &hostRun{h: h, ready: make(chan struct{}), exit: make(chan error, 1)}
	argv := m.command(h, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	ow, ew := m.prefixWriter(os.Stdout, h.Name), m.prefixWriter(os.Stderr, h.Name)
	var once sync.Once
	ow.hide = func(line []byte) bool {
		if string(bytes.TrimRight(line, "\n")) == readyLine {
			once.Do(func() { close(r.ready) })
			return true
		}
		return false
	}
	cmd.Stdout, cmd.Stderr = ow, ew
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		r.exit <- fmt.Errorf("%s: %v", strings.Join(argv, " "), err)
		return r
	}
	r.stdin = stdin
	go func() {
		// Not waited for: a host that fails before reading it all
		// makes this fail, and its exit says why.
		stdin.Write(append(payload, '\n'))
	}()
	go func() {
		err := cmd.Wait()
		ow.Flush()
		ew.Flush()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("nsh up exited with status %d", ee.ExitCode())
		} else if err != nil {
			err = fmt.Errorf("%s: %v", strings.Join(argv, " "), err)
		}
		r.exit <- err
	}()
	return r
}

// baseName is the last element of a slash path.
func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// stream runs nsh with args on h, with stdin (nil: none), its output and
// errors printed with h's name in front of each line.
func (m *multiHost) stream(h hostSpec, stdin io.Reader, args ...string) error {
	argv := m.command(h, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = stdin
	ow, ew := m.prefixWriter(os.Stdout, h.Name), m.prefixWriter(os.Stderr, h.Name)
	cmd.Stdout, cmd.Stderr = ow, ew
	err := cmd.Run()
	ow.Flush()
	ew.Flush()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("nsh %s exited with status %d", args[0], ee.ExitCode())
		}
		return fmt.Errorf("%s: %v", strings.Join(argv, " "), err)
	}
	return nil
}

// down is nsh down LAB --host ...
func (m *multiHost) down(args []string) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return labFail("down: which lab? (nsh down LAB --host NAME=TARGET ...)")
	}
	name := args[0]
	if err := labs.CheckName(name); err != nil {
		return labFail("down: %v", err)
	}
	errs := m.each(func(h hostSpec) error {
		return m.stream(h, nil, "down", labs.Key(name, h.Name))
	})
	if len(errs) > 0 {
		return labFail("down: lab %q: failed on host %s; the rest is down (nsh down %s --host ... tries again)", name, strings.Join(m.names(errs), ", "), name)
	}
	fmt.Fprintf(os.Stderr, "nsh: lab %q is down on %d hosts\n", name, len(m.hosts))
	return 0
}

// hostStatus is what status and the table need of nsh status --json.
type hostStatus struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Recipe  string `json:"recipe"`
	Changes int    `json:"changes"`
	Nodes   []struct {
		Name    string      `json:"name"`
		Kinds   []string    `json:"kinds"`
		Present bool        `json:"present"`
		Live    *topo.Netns `json:"live,omitempty"`
	} `json:"nodes"`
	Daemons []struct {
		Pid   int      `json:"pid"`
		Argv  []string `json:"argv"`
		Alive bool     `json:"alive"`
	} `json:"daemons,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// status is nsh status LAB --host ...: every host's nsh status --json,
// as one table with a HOST column, or one JSON object {"name", "hosts":
// [{"host", "addr"?, "status"}]}.
func (m *multiHost) status(args []string) int {
	asJSON := false
	var name string
	var rest []string
	for _, a := range args {
		switch {
		case a == "--json":
			asJSON = true
		case a == "--links":
			rest = append(rest, a)
		case name == "" && !strings.HasPrefix(a, "-"):
			name = a
		case !strings.HasPrefix(a, "-"):
			rest = append(rest, a)
		default:
			return labFail("status: unexpected argument %q (nsh status LAB [NODE...] [--links] [--json] --host NAME=TARGET ...)", a)
		}
	}
	if err := labs.CheckName(name); err != nil {
		return labFail("status: which lab? %v", err)
	}
	if !asJSON {
		// To name the host a vxlan's remote is.
		if err := m.resolveAddrs(); err != nil {
			return labFail("status: %v", err)
		}
	}
	raw := make([]json.RawMessage, len(m.hosts))
	errs := m.each(func(h hostSpec) error {
		out, err := m.output(h, append([]string{"status", "--json", labs.Key(name, h.Name)}, rest...)...)
		if err != nil {
			return err
		}
		for i := range m.hosts {
			if m.hosts[i].Name == h.Name {
				raw[i] = json.RawMessage(bytes.TrimSpace(out))
			}
		}
		return nil
	})
	if asJSON {
		type part struct {
			Host   string          `json:"host"`
			Status json.RawMessage `json:"status,omitempty"`
			Error  string          `json:"error,omitempty"`
		}
		out := struct {
			Name  string `json:"name"`
			Hosts []part `json:"hosts"`
		}{Name: name}
		for i, h := range m.hosts {
			p := part{Host: h.Name, Status: raw[i]}
			if errs[h.Name] != nil {
				p.Status, p.Error = nil, errs[h.Name].Error()
			}
			out.Hosts = append(out.Hosts, p)
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Println(string(b))
		if len(errs) > 0 {
			return 1
		}
		return 0
	}
	stdout := bufio.NewWriter(os.Stdout)
	defer stdout.Flush()
	sts := make([]*hostStatus, len(m.hosts))
	for i, h := range m.hosts {
		if errs[h.Name] != nil {
			fmt.Fprintf(stdout, "host %s: %v\n", h.Name, errs[h.Name])
			continue
		}
		var st hostStatus
		if err := json.Unmarshal(raw[i], &st); err != nil {
			fmt.Fprintf(stdout, "host %s: reading its status: %v\n", h.Name, err)
			errs[h.Name] = err
			continue
		}
		sts[i] = &st
		fmt.Fprintf(stdout, "lab %s on host %s: %s, %d changes journaled\n", name, h.Name, st.State, st.Changes)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNODE\tLINK\tKIND\tSTATE\tADDRESSES\tPEER")
	for i, h := range m.hosts {
		st := sts[i]
		if st == nil {
			continue
		}
		for _, n := range st.Nodes {
			statusRows(tw, h.Name+"\t", n.Name, n.Kinds, n.Present, n.Live, m.byAddr)
		}
	}
	tw.Flush()
	for i, h := range m.hosts {
		if st := sts[i]; st != nil {
			for _, d := range st.Daemons {
				fmt.Fprintf(stdout, "host %s: daemon %d (%s) alive: %v\n", h.Name, d.Pid, strings.Join(d.Argv, " "), d.Alive)
			}
			for _, s := range st.Missing {
				fmt.Fprintf(stdout, "host %s: differs from the journal: %s\n", h.Name, s)
			}
		}
	}
	if len(errs) > 0 {
		stdout.Flush()
		return labFail("status: lab %q: no status from host %s", name, strings.Join(m.names(errs), ", "))
	}
	return 0
}

// byAddr names the host whose underlay address is addr ("" for none).
func (m *multiHost) byAddr(addr string) string {
	ip := net.ParseIP(addr)
	for _, h := range m.hosts {
		if ip != nil && ip.Equal(net.ParseIP(h.Addr)) {
			return h.Name
		}
	}
	return ""
}

// graph is nsh graph LAB --host ...: every host's nodes, as nsh graph
// --json prints them, drawn as one topology whose nodes are named
// HOST/NODE, with an edge per VXLAN link between hosts.
func (m *multiHost) graph(args []string) int {
	mermaid := false
	var name string
	for _, a := range args {
		switch {
		case a == "--mermaid":
			mermaid = true
		case a == "--dot":
			mermaid = false
		case name == "" && !strings.HasPrefix(a, "-"):
			name = a
		default:
			return labFail("graph: unexpected argument %q (nsh graph [--mermaid] LAB --host NAME=TARGET ...)", a)
		}
	}
	if err := labs.CheckName(name); err != nil {
		return labFail("graph: which lab? %v", err)
	}
	if err := m.resolveAddrs(); err != nil {
		return labFail("graph: %v", err)
	}
	parts := make([]topo.Part, len(m.hosts))
	errs := m.each(func(h hostSpec) error {
		out, err := m.output(h, "graph", "--json", labs.Key(name, h.Name))
		if err != nil {
			return err
		}
		var t topo.Topology
		if err := json.Unmarshal(out, &t); err != nil {
			return fmt.Errorf("reading its topology: %v", err)
		}
		for i := range m.hosts {
			if m.hosts[i].Name == h.Name {
				parts[i] = topo.Part{Host: h.Name, Addr: h.Addr, Topology: &t}
			}
		}
		return nil
	})
	if len(errs) > 0 {
		var why []string
		for _, n := range m.names(errs) {
			why = append(why, fmt.Sprintf("%s: %v", n, errs[n]))
		}
		return labFail("graph: lab %q: %s", name, strings.Join(why, "; "))
	}
	t := topo.Merge(parts)
	if mermaid {
		fmt.Print(t.Mermaid())
	} else {
		fmt.Print(t.DOT())
	}
	return 0
}

// underlayAddrCmd is the hidden "nsh underlay-addr [PEER]": this host's
// address towards PEER (the source address of its route there), or
// without PEER the source of its default route, or else its first global
// address (IPv4 first). It sends nothing.
func underlayAddrCmd(args []string) int {
	dst := "192.0.2.1" // TEST-NET-1: where the default route goes
	if len(args) > 0 {
		dst = args[0]
	}
	ip := net.ParseIP(dst)
	if ip == nil {
		return labFail("underlay-addr: %q is no IP address", dst)
	}
	if rs, err := netlink.RouteGet(ip); err == nil {
		for _, r := range rs {
			if r.Src != nil && !r.Src.IsLoopback() {
				fmt.Println(r.Src)
				return 0
			}
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return labFail("underlay-addr: listing addresses: %v", err)
	}
	sort.SliceStable(addrs, func(i, j int) bool { return addrs[i].IP.To4() != nil && addrs[j].IP.To4() == nil })
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() {
			fmt.Println(a.IP)
			return 0
		}
	}
	return labFail("underlay-addr: no route towards %s and no global address", dst)
}

// lineWriter writes whole lines to w, each with a prefix, under a lock
// shared by all hosts so that their lines do not mix.
type lineWriter struct {
	w      io.Writer
	prefix string
	buf    []byte
	mu     *sync.Mutex
	hide   func(line []byte) bool // lines not to pass on
}

// prefixWriter returns a writer that puts "NAME: " before each line it
// passes to w.
func (m *multiHost) prefixWriter(w io.Writer, name string) *lineWriter {
	return &lineWriter{w: w, prefix: name + ": ", mu: &m.out}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineWriter) emit(line []byte) {
	if l.hide != nil && l.hide(line) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, l.prefix)
	l.w.Write(line)
}

// Flush writes what is left of a last line without a newline.
func (l *lineWriter) Flush() {
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
}
