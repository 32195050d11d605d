// Package labs keeps labs: what `nsh up` built and left standing, with a
// journal of the undo of every kernel change made for it, written before
// the change (as the reaper is told, see internal/change), so that `nsh
// down` undoes exactly that, and `nsh gc` does the same for a lab whose
// nsh died before finishing it.
//
// A lab lives in a directory of Root: lab.json (what it is), journal (one
// JSON object a line: a record's undo steps, or its withdrawal), ns/ (bind
// mounts of the unnamed namespaces it keeps) and lock (flock'd by whoever
// builds or takes it down). The directory is 0700 and its files 0600,
// written whole and renamed into place; Root is on tmpfs (/run), like
// /run/netns, so a reboot clears both together.
package labs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/procstat"
	"nsh.dev/nsh/internal/rootless"
)

// Version is the format of lab.json and of the journal.
const Version = 1

// States of a lab.
const (
	Building = "building" // nsh up is running (or died running)
	Up       = "up"       // the recipe finished: everything it made is kept
)

// Lab is a lab's lab.json.
type Lab struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Recipe  string    `json:"recipe"`
	Args    []string  `json:"args,omitempty"`
	Prefix  string    `json:"prefix,omitempty"`
	Created time.Time `json:"created"`
	State   string    `json:"state"`
	// Pid and PidStart identify the nsh that builds the lab (start time
	// in clock ticks since boot, /proc/PID/stat field 22), so a reused pid
	// is never taken for it.
	Pid      int    `json:"pid"`
	PidStart uint64 `json:"pid_start"`
	// Nodes are the lab's named network namespaces, with the other
	// namespaces of the context each was made in.
	Nodes []Node `json:"nodes,omitempty"`
	// Daemons are the processes the recipe started and did not wait
	// for, alive when the lab came up.
	Daemons []Daemon `json:"daemons,omitempty"`
	// Keeper, for a lab made by a user other than root, is the process
	// that holds the lab's user and mount namespaces (see
	// internal/keeper); nil for root's labs.
	Keeper *Keeper `json:"keeper,omitempty"`
	// Host is this machine's part of a lab brought up on several hosts
	// (nsh up --host): the host's name, "" for a lab of one machine. Its
	// directory is Root/NAME@HOST (see Key), so that hosts sharing one
	// machine's /run (the one-machine test) keep apart.
	Host string `json:"host,omitempty"`

	// Dir is the lab's directory (not stored).
	Dir string `json:"-"`
}

// Node is a named part of a lab: a network namespace with a name in
// /run/netns, and the other namespaces (by kind: "uts", "mnt", "pid",
// "ipc") of the context it was made in, by path.
type Node struct {
	Name string            `json:"name"`
	Net  string            `json:"net"`
	More map[string]string `json:"more,omitempty"`
	// Init is the daemon that holds the node's pid namespace: a pid
	// namespace can be entered only while its init lives, so nsh exec
	// joins it through that process. nil when no daemon of the node has a
	// pid namespace of its own.
	Init *NodeInit `json:"init,omitempty"`
}

// NodeInit is the daemon of a node that holds its pid namespace, and the
// kinds of namespace nsh exec joins through it, by /proc/PID/ns/KIND:
// "pid", and each of "uts", "ipc", "mnt" in which the daemon has a
// namespace other than the node's (a daemon with its own /proc has its
// own mount namespace), overriding the node's More.
type NodeInit struct {
	Daemon
	Kinds []string `json:"kinds"`
}

// Kinds lists the kinds of namespace of the node: "net", then "uts",
// "ipc", "mnt" and "pid" as More and Init give it those.
func (n Node) Kinds() []string {
	kinds := []string{"net"}
	for _, k := range []string{"uts", "ipc", "mnt", "pid"} {
		has := n.More[k] != ""
		if n.Init != nil {
			for _, ik := range n.Init.Kinds {
				has = has || ik == k
			}
		}
		if has {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// Broken reports whether the lab's nsh died building it (nsh gc).
func (l *Lab) Broken() bool { return l.State == Building && !Alive(l.Pid, l.PidStart) }

// BeingBuilt reports whether a live nsh is building the lab.
func (l *Lab) BeingBuilt() bool { return l.State == Building && Alive(l.Pid, l.PidStart) }

// Daemon is a process of a lab, identified by pid and start time so a
// reused pid is never taken for it.
type Daemon struct {
	Pid   int      `json:"pid"`
	Start uint64   `json:"start"`
	Argv  []string `json:"argv"`
	Log   string   `json:"log,omitempty"` // where its inherited output goes
}

// Keeper is the keeper of a rootless lab, identified by pid and start
// time so a reused pid is never taken for it.
type Keeper struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Alive reports whether the keeper still runs.
func (k Keeper) Alive() bool { return Alive(k.Pid, k.Start) }

// Root returns the directory of all labs: /run/nsh/labs for root, else
// $XDG_RUNTIME_DIR/nsh/labs; root of a user namespace (rootless nsh, a
// process that joined a rootless lab's keeper) is not root.
func Root() (string, error) {
	if os.Geteuid() == 0 && !rootless.Active() {
		return "/run/nsh/labs", nil
	}
	d := os.Getenv("XDG_RUNTIME_DIR")
	if d == "" {
		return "", errors.New("XDG_RUNTIME_DIR is not set: rootless labs live in $XDG_RUNTIME_DIR/nsh/labs")
	}
	return filepath.Join(d, "nsh", "labs"), nil
}

// CheckName refuses a lab name that is not 1 to 64 letters, digits, '_',
// '.' or '-' starting with a letter or digit. (By hand: a regexp compiled
// at init cost every nsh start half a millisecond.)
func CheckName(name string) error {
	ok := len(name) >= 1 && len(name) <= 64
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("invalid lab name %q: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Key names the part of lab name that host holds on this machine:
// "NAME@HOST", or name for a lab of one machine (host ""). nsh's lab
// commands take a key wherever they take a lab's name.
func Key(name, host string) string {
	if host == "" {
		return name
	}
	return name + "@" + host
}

// checkKey refuses a key that is not NAME or NAME@HOST, both as
// CheckName wants them.
func checkKey(key string) error {
	name, host, ok := strings.Cut(key, "@")
	if err := CheckName(name); err != nil {
		return err
	}
	if ok {
		if err := CheckName(host); err != nil {
			return fmt.Errorf("lab %q: invalid host name %q: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", key, host)
		}
	}
	return nil
}

// Dir returns the directory of lab name (a key: NAME or NAME@HOST).
func Dir(name string) (string, error) {
	if err := checkKey(name); err != nil {
		return "", err
	}
	root, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, name), nil
}

// ErrNoLab is returned (errors.Is) for a lab that does not exist.
var ErrNoLab = errors.New("no such lab")

// Open reads lab name.
func Open(name string) (*Lab, error) {
	dir, err := Dir(name)
	if err != nil {
		return nil, err
	}
	return openDir(name, dir, true)
}

// OpenHead reads lab name as Open does, but not its nodes (Nodes is nil):
// what nsh down needs. The nodes are most of a large lab's lab.json;
// skipped, they are only scanned (a chain of 200: Open 2.1M instructions,
// OpenHead 1.3M, callgrind).
func OpenHead(name string) (*Lab, error) {
	dir, err := Dir(name)
	if err != nil {
		return nil, err
	}
	return openDir(name, dir, false)
}

// skipped is a JSON value read over and dropped.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// openDir reads lab name from its directory dir, with its nodes if
// nodes.
func openDir(name, dir string, nodes bool) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lab %q: %w (nsh ls lists the labs)", name, ErrNoLab)
	}
	if err != nil {
		return nil, err
	}
	var l Lab
	var into any = &l
	if !nodes {
		// The outer field hides Lab.Nodes from encoding/json.
		into = &struct {
			*Lab
			Nodes skipped `json:"nodes"`
		}{Lab: &l}
	}
	if err := json.Unmarshal(b, into); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, "lab.json"), err)
	}
	if l.Version != Version {
		return nil, fmt.Errorf("%s: format version %d, this nsh reads %d", filepath.Join(dir, "lab.json"), l.Version, Version)
	}
	l.Dir = dir
	return &l, nil
}

// List returns every lab, by name.
func List() ([]*Lab, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Lab
	for _, e := range ents {
		if checkKey(e.Name()) != nil {
			continue
		}
		// Root once for all (it reads /proc/self/uid_map).
		if l, err := openDir(e.Name(), filepath.Join(root, e.Name()), true); err == nil {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Save writes l's lab.json atomically (0600).
func (l *Lab) Save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(l.Dir, "lab.json"), append(b, '\n'))
}

func writeFile(path string, b []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Lock takes the lab directory's lock (flock on dir/lock), waiting for
// whoever holds it; it returns the unlock.
func Lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, nserr.New("flock", filepath.Join(dir, "lock"), err)
	}
	return func() { f.Close() }, nil
}

// Create makes the directory of a new lab l (l.Dir set), locked, with its
// lab.json in state Building; it fails, naming the lab, if one of that
// name exists.
func Create(l *Lab) (unlock func(), err error) {
	key := Key(l.Name, l.Host)
	dir, err := Dir(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o700); errors.Is(err, fs.ErrExist) {
		old, oerr := Open(key)
		if oerr == nil && old.Broken() {
			return nil, fmt.Errorf("lab %q exists, half built by nsh %d, which is gone: nsh gc undoes it", key, old.Pid)
		}
		return nil, fmt.Errorf("lab %q exists (nsh down %s takes it down; nsh up --replace builds it again)", key, key)
	} else if err != nil {
		return nil, err
	}
	l.Dir = dir
	if unlock, err = Lock(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l.Version, l.State, l.Created = Version, Building, time.Now().UTC().Truncate(time.Second)
	l.Pid = os.Getpid()
	l.PidStart, _ = StartTime(l.Pid)
	if err := l.Save(); err != nil {
		unlock()
		os.RemoveAll(dir)
		return nil, err
	}
	return unlock, nil
}

// StartTime returns the start time of process pid (clock ticks after
// boot, /proc/PID/stat field 22).
func StartTime(pid int) (uint64, error) {
	start, _, err := stat(pid)
	return start, err
}

// stat reads the start time and the state letter of process pid.
func stat(pid int) (uint64, byte, error) {
	f, err := procstat.Fields(pid)
	if err != nil {
		return 0, 0, err
	}
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err
}

// Alive reports whether process pid still runs (is not a zombie) and is
// the one that started at start (not a process that reused its pid).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, state, err := stat(pid)
	return err == nil && s == start && state != 'Z' && state != 'X'
}

// RunsRoot is where runs keep their journals: /run/nsh/runs (root only;
// "" for a rootless nsh, whose user namespace, and all it made in it,
// dies with it and its reaper).
func RunsRoot() string {
	if os.Geteuid() != 0 || rootless.Active() {
		return ""
	}
	return "/run/nsh/runs"
}

// Run is a run's journal directory, RunsRoot/PID-START: kept while the
// run lives, removed at its end, or by its reaper after a SIGKILL; nsh gc
// undoes and removes the ones whose nsh and reaper were both killed.
type Run struct {
	Dir        string
	Pid        int
	Start      uint64
	JournalErr error
}

// NewRun makes the journal directory of this process's run; before, it
// calls ahead with its path (to tell the reaper, which removes it last).
func NewRun(ahead func(dir string) error) (*Run, error) {
	root := RunsRoot()
	if root == "" {
		return nil, errors.New("no run journals when rootless")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	start, err := StartTime(os.Getpid())
	if err != nil {
		return nil, err
	}
	r := &Run{Pid: os.Getpid(), Start: start}
	r.Dir = filepath.Join(root, fmt.Sprintf("%d-%d", r.Pid, start))
	if err := ahead(r.Dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(r.Dir, 0o700); err != nil {
		return nil, err
	}
	return r, nil
}

// Runs returns the journal directories of runs whose nsh is gone.
func Runs() ([]*Run, error) {
	root := RunsRoot()
	if root == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Run
	for _, e := range ents {
		var r Run
		if _, err := fmt.Sscanf(e.Name(), "%d-%d", &r.Pid, &r.Start); err != nil || Alive(r.Pid, r.Start) {
			continue
		}
		r.Dir = filepath.Join(root, e.Name())
		out = append(out, &r)
	}
	return out, nil
}

// Key is the lab's key on this machine: its name, or NAME@HOST for a
// host's part of a lab of several hosts.
func (l *Lab) Key() string { return Key(l.Name, l.Host) }
