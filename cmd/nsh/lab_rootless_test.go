package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/leakcheck"
)

// rootlessLabs is a user other than root with labs of its own: nsh run as
// uid 65534 (through setpriv when the test runs as root; as the test's own
// user under make test-rootless) with XDG_RUNTIME_DIR a directory of its
// own, and the working directory work, where the recipes are.
type rootlessLabs struct {
	xdg, work string
	asRoot    bool
	uid       int
	// wrap, if set, is a shell command line run before nsh in a private
	// mount namespace (unshare -m), as root.
	wrap string
}

func newRootlessLabs(t *testing.T) *rootlessLabs {
	t.Helper()
	return newRootlessLabsAs(t, 65534)
}

// newRootlessLabsAs is newRootlessLabs for uid (when the test runs as
// root).
func newRootlessLabsAs(t *testing.T, uid int) *rootlessLabs {
	t.Helper()
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping not installed")
	}
	r := &rootlessLabs{asRoot: os.Geteuid() == 0, uid: uid}
	if r.asRoot {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("setpriv not installed")
		}
		leakcheck.Check(t)
		os.Chmod(filepath.Dir(nshBin), 0o755)
	}
	dir, err := os.MkdirTemp("", "nsh-rootless-lab")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r.xdg, r.work = filepath.Join(dir, "xdg"), filepath.Join(dir, "work")
	for _, d := range []string{r.xdg, r.work} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(r.work, 0o755)
	os.Chmod(dir, 0o755)
	src, err := os.ReadFile("../../scripts/chain.star")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.work, "chain.star"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if r.asRoot {
		for _, d := range []string{r.xdg, r.work} {
			os.Chown(d, uid, uid)
		}
	}
	if _, stderr, code := r.nsh(t, "--rootless", "-c", "pass"); code != 0 {
		t.Skipf("no user namespace for an unprivileged user here: %s", stderr)
	}
	t.Cleanup(func() {
		if ls, _ := os.ReadDir(filepath.Join(r.xdg, "nsh", "labs")); len(ls) > 0 {
			for _, l := range ls {
				t.Errorf("lab %s left", l.Name())
			}
			r.nsh(t, "down", "--all")
		}
	})
	return r
}

// nsh runs nsh as the unprivileged user.
func (r *rootlessLabs) nsh(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return r.nshIn(t, "", args...)
}

// nshIn is nsh with stdin.
func (r *rootlessLabs) nshIn(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var cmd *exec.Cmd
	id := strconv.Itoa(r.uid)
	switch {
	case r.wrap != "":
		cmd = exec.Command("unshare", append([]string{"-m", "sh", "-c", r.wrap + ` && exec setpriv --reuid=$0 --regid=$0 --clear-groups "$@"`, id, nshBin}, args...)...)
	case r.asRoot:
		cmd = exec.Command("setpriv", append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", nshBin}, args...)...)
	default:
		cmd = exec.Command(nshBin, args...)
	}
	cmd.Env = append(os.Environ(), "HOME=/tmp", "XDG_RUNTIME_DIR="+r.xdg, "NSH_ROOTLESS=")
	cmd.Dir = r.work
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(t, cmd)
}

func (r *rootlessLabs) recipe(t *testing.T, name, src string) {
	t.Helper()
	p := filepath.Join(r.work, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lab reads lab name's lab.json.
func (r *rootlessLabs) lab(t *testing.T, name string) *labs.Lab {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.xdg, "nsh", "labs", name, "lab.json"))
	if err != nil {
		t.Fatalf("lab %s: %v", name, err)
	}
	var l labs.Lab
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	if l.Keeper == nil || !l.Keeper.Alive() {
		t.Fatalf("lab %s: no live keeper in lab.json: %s", name, b)
	}
	return &l
}

// gone reports whether lab name's directory is gone.
func (r *rootlessLabs) gone(name string) bool {
	_, err := os.Stat(filepath.Join(r.xdg, "nsh", "labs", name))
	return os.IsNotExist(err)
}

// usernsOf is the inode of process pid's user namespace.
func usernsOf(t *testing.T, pid int) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/user", pid), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// inUserns lists the live processes of the user namespace whose inode is
// ino (zombies are dead: their parent has yet to reap them).
func inUserns(ino uint64) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/user", pid), &st) != nil || st.Ino != ino {
			continue
		}
		if start, err := labs.StartTime(pid); err == nil && labs.Alive(pid, start) {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
	}
	return out
}

// noneLeft fails unless no process of user namespace ino is left (within
// 5 s) and the lab's directory is gone.
func (r *rootlessLabs) noneLeft(t *testing.T, ino uint64, name string) {
	t.Helper()
	var left []string
	for i := 0; i < 500; i++ {
		if left = inUserns(ino); len(left) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("processes of lab %s's user namespace left: %q", name, left)
	}
	if !r.gone(name) {
		t.Errorf("lab %s's directory is left", name)
	}
}

// The done-criterion, rootless: nsh up scripts/chain.star 5 &&
// nsh exec chain c1 -- ping -c1 <c5> && nsh status chain && nsh graph chain
// && nsh down chain works for an unprivileged user and leaves nothing.
func TestRootlessLabUpStatusExecDown(t *testing.T) {
	r := newRootlessLabs(t)
	out, stderr, code := r.nsh(t, "up", "chain.star", "5")
	if code != 0 || !strings.Contains(stderr, `lab "chain" is up: 5 nodes`) {
		t.Fatalf("up: %d\n%s%s", code, out, stderr)
	}
	l := r.lab(t, "chain")
	ns := usernsOf(t, l.Keeper.Pid)
	if self := usernsOf(t, os.Getpid()); ns == self {
		t.Fatalf("the keeper is in the test's own user namespace")
	}
	// The lab's nodes are in the keeper's private /run/netns.
	if _, err := os.Stat("/run/netns/c1"); err == nil {
		t.Error("/run/netns/c1 exists outside the lab's mount namespace")
	}
	if out, stderr, code := r.nsh(t, "exec", "chain", "c1", "--", "ping", "-c1", "-W2", "10.100.4.2"); code != 0 || !strings.Contains(out, "1 received") {
		t.Errorf("c1 cannot reach c5: %d\n%s%s", code, out, stderr)
	}
	if _, _, code := r.nsh(t, "exec", "chain", "c3", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exec's exit status %d, want 7 (passed through)", code)
	}
	out, stderr, code = r.nsh(t, "status", "chain", "--json")
	var st struct {
		State string
		Nodes []struct {
			Name    string
			Present bool
			Live    *struct{ Links []struct{ Name string } }
		}
		Missing []string
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v\n%s%s", code, err, out, stderr)
	}
	if st.State != "up" || len(st.Nodes) != 5 || !st.Nodes[4].Present || st.Nodes[4].Live == nil || len(st.Missing) > 0 {
		t.Errorf("status: %s", out)
	}
	if out, stderr, code := r.nsh(t, "status", "chain"); code != 0 || !strings.Contains(out, "c5-eth0") || !strings.Contains(out, "10.100.4.2/24") {
		t.Errorf("status: %d\n%s%s", code, out, stderr)
	}
	if out, stderr, code := r.nsh(t, "graph", "chain"); code != 0 || !strings.Contains(out, `"netns c4" -- "netns c5"`) {
		t.Errorf("graph: %d\n%s%s", code, out, stderr)
	} else {
		renderDOT(t, out)
	}
	if out, _, _ := r.nsh(t, "ls"); !strings.Contains(out, "chain  up") {
		t.Errorf("ls:\n%s", out)
	}
	if _, stderr, code := r.nsh(t, "down", "chain"); code != 0 || !strings.Contains(stderr, `lab "chain" is down`) {
		t.Fatalf("down: %d %q", code, stderr)
	}
	r.noneLeft(t, ns, "chain")
	if _, stderr, code := r.nsh(t, "down", "chain"); code != 0 || !strings.Contains(stderr, `no lab named "chain"`) {
		t.Errorf("down twice: %d %q", code, stderr)
	}
}

// A lab whose keeper was killed is gone with it, but for its directory and
// daemons that outlived it: ls says so, exec refuses, gc removes them.
func TestRootlessLabKeeperKilled(t *testing.T) {
	r := newRootlessLabs(t)
	r.recipe(t, "dmn.star", `
a = netns("d1", persist = False)
spawn("sleep 4546", ns = a)
`)
	if _, stderr, code := r.nsh(t, "up", "dmn.star"); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	l := r.lab(t, "dmn")
	ns := usernsOf(t, l.Keeper.Pid)
	if len(l.Daemons) != 1 || !labs.Alive(l.Daemons[0].Pid, l.Daemons[0].Start) {
		t.Fatalf("daemons: %+v", l.Daemons)
	}
	if err := syscall.Kill(l.Keeper.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500 && l.Keeper.Alive(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if out, _, _ := r.nsh(t, "ls"); !strings.Contains(out, "dmn   gone") {
		t.Errorf("ls after the keeper's death:\n%s", out)
	}
	if _, stderr, code := r.nsh(t, "exec", "dmn", "d1", "--", "true"); code == 0 || !strings.Contains(stderr, "keeper is gone") {
		t.Errorf("exec in a lab whose keeper is gone: %d %q", code, stderr)
	}
	if out, _, code := r.nsh(t, "gc", "--dry-run"); code != 0 || !strings.Contains(out, "dmn: its keeper") || r.gone("dmn") {
		t.Errorf("gc --dry-run: %d %q", code, out)
	}
	if _, stderr, code := r.nsh(t, "gc"); code != 0 || !strings.Contains(stderr, `lab "dmn" is down`) {
		t.Errorf("gc: %d %q", code, stderr)
	}
	r.noneLeft(t, ns, "dmn")
	if _, stderr, _ := r.nsh(t, "gc"); !strings.Contains(stderr, "nothing to collect") {
		t.Errorf("gc twice: %q", stderr)
	}
}

// A recipe that fails leaves no lab, no keeper, no process; --replace
// builds a lab again.
func TestRootlessLabFailsAndReplace(t *testing.T) {
	r := newRootlessLabs(t)
	r.recipe(t, "half.star", `
a = netns("h1", persist = False)
spawn("sleep 4547", ns = a)
fail("half-way")
`)
	_, stderr, code := r.nsh(t, "up", "half.star")
	if code == 0 || !strings.Contains(stderr, "half-way") || !strings.Contains(stderr, `lab "half" not made`) {
		t.Errorf("up of a failing recipe: %d %q", code, stderr)
	}
	if !r.gone("half") {
		t.Error("a failed up left a lab")
	}
	if left := sleepers("4547"); len(left) > 0 {
		t.Errorf("the failed lab's daemon is left: %v", left)
	}
	if _, stderr, code := r.nsh(t, "up", "chain.star", "2"); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	first := r.lab(t, "chain").Keeper
	ns := usernsOf(t, first.Pid)
	if _, stderr, code := r.nsh(t, "up", "--replace", "chain.star", "3"); code != 0 || !strings.Contains(stderr, `lab "chain" is up: 3 nodes`) {
		t.Fatalf("up --replace: %d %q", code, stderr)
	}
	second := r.lab(t, "chain").Keeper
	if *first == *second || first.Alive() {
		t.Errorf("--replace kept the first keeper %+v (now %+v)", first, second)
	}
	if left := inUserns(ns); len(left) > 0 {
		t.Errorf("the replaced lab's processes are left: %q", left)
	}
	ns = usernsOf(t, second.Pid)
	if _, stderr, code := r.nsh(t, "down", "--all"); code != 0 {
		t.Errorf("down --all: %d %q", code, stderr)
	}
	r.noneLeft(t, ns, "chain")
}

// A user with subordinate ranges (/etc/subuid, newuidmap) gets them in the
// lab's user namespace, as rootless mode maps them: the keeper's maps are
// written after it started, by newuidmap.
func TestRootlessLabSubIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a made-up user with subordinate ranges, in a private mount namespace)")
	}
	for _, c := range []string{"newuidmap", "unshare"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is not installed", c)
		}
	}
	const uid = 23458
	r := newRootlessLabsAs(t, uid)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for _, f := range [][3]string{
		{"passwd", "/etc/passwd", fmt.Sprintf("nshsublab:x:%d:%d::/tmp:/bin/sh\n", uid, uid)},
		{"group", "/etc/group", fmt.Sprintf("nshsublab:x:%d:\n", uid)},
		{"subuid", "/dev/null", "nshsublab:400000:65536\n"},
		{"subgid", "/dev/null", "nshsublab:400000:65536\n"},
	} {
		b, _ := os.ReadFile(f[1])
		p := filepath.Join(dir, f[0])
		if err := os.WriteFile(p, append(b, f[2]...), 0o644); err != nil {
			t.Fatal(err)
		}
		r.wrap += fmt.Sprintf("mount --bind %s /etc/%s && ", p, f[0])
	}
	r.wrap += "true"
	if _, stderr, code := r.nsh(t, "up", "chain.star", "3"); code != 0 {
		t.Fatalf("up: %d %q", code, stderr)
	}
	r.wrap = ""
	l := r.lab(t, "chain")
	ns := usernsOf(t, l.Keeper.Pid)
	if m, _ := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", l.Keeper.Pid)); !regexpMatch(`400000\s+65536`, string(m)) {
		t.Errorf("the subordinate range is not mapped in the lab's user namespace: %q", m)
	}
	if out, stderr, code := r.nsh(t, "exec", "chain", "c1", "--", "ping", "-c1", "-W2", "10.100.2.2"); code != 0 || !strings.Contains(out, "1 received") {
		t.Errorf("c1 cannot reach c3: %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := r.nsh(t, "down", "chain"); code != 0 {
		t.Errorf("down: %d %q", code, stderr)
	}
	r.noneLeft(t, ns, "chain")
}

// attach and --dry-run work for a rootless lab too: attach joins the
// keeper's namespaces like status and exec, and a dry run builds in a
// sandbox of its own and leaves no lab.
func TestRootlessLabAttachAndDryRun(t *testing.T) {
	r := newRootlessLabs(t)
	if _, stderr, code := r.nsh(t, "up", "chain.star", "3"); code != 0 {
		t.Fatalf("up: %d %s", code, stderr)
	}
	out, stderr, code := r.nshIn(t, "print(c1_eth1.addrs[0])\n", "attach", "chain")
	if code != 0 || !strings.Contains(out, "10.100.1.1/24") {
		t.Errorf("attach: %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := r.nsh(t, "down", "chain"); code != 0 {
		t.Fatalf("down: %d %s", code, stderr)
	}
	out, stderr, code = r.nsh(t, "up", "--dry-run", "chain.star", "3")
	if code != 0 || !strings.Contains(out, "ip netns add c1") {
		t.Errorf("dry run: %d\n%s%s", code, out, stderr)
	}
	if !r.gone("chain") {
		t.Error("a dry run left a lab")
	}
}

// A rootless lab's node with its own UTS, IPC and mount namespaces and a
// daemon's pid namespace: nsh exec joins them all inside the keeper's
// user and mount namespaces, passes the exit status through, and refuses
// once the daemon is gone; nsh down leaves nothing.
func TestRootlessLabExecEveryNamespace(t *testing.T) {
	r := newRootlessLabs(t)
	mnt := filepath.Join(r.work, "m")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if r.asRoot {
		os.Chown(mnt, r.uid, r.uid)
	}
	r.recipe(t, "every.star", fmt.Sprintf(`
setns(netns("re1"))
unshare("uts", "ipc", "mnt")
hostname("re1-host")
mount("tmpfs", %q, "tmpfs", "size=1m")
clone("sleep infinity", "pid", mount_proc = True, wait = False)
`, mnt))
	if _, stderr, code := r.nsh(t, "up", "every.star"); code != 0 {
		t.Fatalf("up: %d %s", code, stderr)
	}
	l := r.lab(t, "every")
	ns := usernsOf(t, l.Keeper.Pid)
	if len(l.Nodes) != 1 || l.Nodes[0].Init == nil || len(l.Daemons) != 1 {
		t.Fatalf("lab.json: nodes %+v, daemons %+v: want the daemon as the node's init", l.Nodes, l.Daemons)
	}
	out, stderr, code := r.nsh(t, "exec", "every", "re1", "--", "sh", "-c",
		`hostname; echo $$; tr '\0' ' ' </proc/1/cmdline; echo; grep -c " `+mnt+` " /proc/self/mountinfo`)
	if f := strings.Fields(out); code != 0 || len(f) != 5 || f[0] != "re1-host" || len(f[1]) > 2 || f[2] != "sleep" || f[4] != "1" {
		t.Errorf("in the node: %d %q %q, want its hostname, a small pid, the daemon as pid 1 and the tmpfs", code, out, stderr)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), " "+mnt+" ") {
		t.Errorf("the node's tmpfs on %s is in the host's mount namespace", mnt)
	}
	if _, _, code := r.nsh(t, "exec", "every", "re1", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exec's exit status %d, want 7 (passed through)", code)
	}
	d := l.Daemons[0]
	if err := syscall.Kill(d.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && labs.Alive(d.Pid, d.Start); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	out, stderr, code = r.nsh(t, "exec", "every", "re1", "--", "hostname")
	if want := fmt.Sprintf("held by daemon %d (sleep infinity), which has exited", d.Pid); code == 0 || out != "" || !strings.Contains(stderr, want) {
		t.Errorf("exec after the daemon died: %d %q %q, want a refusal saying %q", code, out, stderr, want)
	}
	if _, stderr, code := r.nsh(t, "down", "every"); code != 0 {
		t.Fatalf("down: %d %s", code, stderr)
	}
	r.noneLeft(t, ns, "every")
}

// nsh up --host as an unprivileged user: each host's part is a rootless
// lab LAB@HOST with a keeper of its own (here both hosts are this machine,
// reached by a transport that runs the command as it is), status combines
// them, down takes both down, --replace replaces both.
func TestRootlessLabHosts(t *testing.T) {
	r := newRootlessLabs(t)
	r.recipe(t, "parts.star", `
n = netns_new("n" + lab.host)
veth("e0", "e1", ns=n, peer_ns=n, addr="10.0.0.1/24", peer_addr="10.0.0.2/24")
print("part of", lab.host, "with", hosts)
`)
	hosts := []string{"--host", "a=here,10.9.0.1", "--host", "b=there,10.9.0.2", "--transport", "env NSH_TARGET={target}", "--remote-nsh", nshBin}
	for _, up := range [][]string{{"up"}, {"up", "--replace"}} {
		out, stderr, code := r.nsh(t, append(append(up, hosts...), "parts.star")...)
		if code != 0 || !strings.Contains(out, `a: part of a with {"a": "10.9.0.1", "b": "10.9.0.2"}`) || !strings.Contains(stderr, `lab "parts" is up on 2 hosts`) {
			t.Fatalf("%s: %d\n%s%s", strings.Join(up, " "), code, out, stderr)
		}
	}
	a, b := r.lab(t, "parts@a"), r.lab(t, "parts@b")
	if *a.Keeper == *b.Keeper || a.Host != "a" || b.Host != "b" {
		t.Errorf("the hosts' parts: %+v %+v", a, b)
	}
	nsA, nsB := usernsOf(t, a.Keeper.Pid), usernsOf(t, b.Keeper.Pid)
	out, stderr, code := r.nsh(t, append([]string{"status", "parts"}, hosts...)...)
	if code != 0 || !strings.Contains(out, "a     na    e0") || !strings.Contains(out, "b     nb    e0") {
		t.Errorf("status: %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := r.nsh(t, append([]string{"down", "parts"}, hosts...)...); code != 0 {
		t.Errorf("down: %d %s", code, stderr)
	}
	r.noneLeft(t, nsA, "parts@a")
	r.noneLeft(t, nsB, "parts@b")
}
