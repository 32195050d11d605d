package change

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/reaper"
)

func TestCommands(t *testing.T) {
	red, blue, host := Netns{Name: "red"}, Netns{Name: "blue"}, Netns{}
	anon := Netns{Fd: 7}
	path := fmt.Sprintf("/proc/%d/fd/7", os.Getpid())
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	ns := MountNS{Path: "/proc/1/fd/8", Label: "mnt:[4026532300]"}
	unmounted := func(r *Mount) *Mount { r.Unmounted(); return r }
	box := "box"
	for _, c := range []struct {
		r          Record
		cmds, undo string
	}{
		{&LinkAdd{Kind: "veth", NS: red, Name: "veth-red", Peer: "veth-blue", PeerNS: blue},
			"ip -n red link add name veth-red type veth peer name veth-blue netns blue", "ip -n red link del dev veth-red"},
		{&LinkAdd{Kind: "veth", NS: host, Name: "a", Peer: "b", PeerNS: host, MTU: 1400, Up: true},
			"ip link add name a mtu 1400 up type veth peer name b mtu 1400", "ip link del dev a"},
		{&LinkAdd{Kind: "veth", NS: host, Name: "a", Peer: "b", PeerNS: anon},
			"ip link add name a type veth peer name b netns " + path, "ip link del dev a"},
		{&LinkAdd{Kind: "bridge", NS: anon, Name: "br0", Up: true},
			"nsenter --net=" + path + " ip link add name br0 up type bridge", "nsenter --net=" + path + " ip link del dev br0"},
		{&LinkAdd{Kind: "vxlan", NS: red, Name: "vx0", MTU: 1450, Up: true, VXLAN: &VXLAN{Under: host, VNI: 42, Remote: "192.168.50.2", Dev: "eth0", Port: 4789}},
			"ip link add name vx0 mtu 1450 up netns red type vxlan id 42 remote 192.168.50.2 dev eth0 dstport 4789", "ip -n red link del dev vx0"},
		{&LinkAdd{Kind: "vxlan", NS: blue, Name: "vx1", VXLAN: &VXLAN{Under: blue, VNI: 7, Group: "ff05::7", Local: "fd00::1", Dev: "u6", Port: 8472, NoLearning: true}},
			"ip -n blue link add name vx1 type vxlan id 7 group ff05::7 local fd00::1 dev u6 dstport 8472 nolearning", "ip -n blue link del dev vx1"},
		{&LinkDel{NS: red, Name: "x"}, "ip -n red link del dev x", ""},
		{&LinkSet{NS: red, Name: "x", Up: true}, "ip -n red link set dev x up", ""},
		{&LinkSet{NS: red, Name: "x", Down: true}, "ip -n red link set dev x down", ""},
		{&LinkSet{NS: red, Name: "x", MTU: 9000}, "ip -n red link set dev x mtu 9000", ""},
		{&LinkSet{NS: red, Name: "x", Master: "br0"}, "ip -n red link set dev x master br0", ""},
		{&LinkSet{NS: red, Name: "x", NoMaster: true}, "ip -n red link set dev x nomaster", ""},
		{&LinkSet{NS: red, Name: "x", MoveTo: &blue}, "ip -n red link set dev x netns blue", ""},
		{&LinkSet{NS: red, Name: "x", MoveTo: &host}, "ip -n red link set dev x netns 1", ""},
		{&LinkSet{NS: red, Name: "x", NewName: "y"}, "ip -n red link set dev x name y", ""},
		{&LinkSet{NS: red, Name: "x", MAC: mac}, "ip -n red link set dev x address 02:00:00:00:00:01", ""},
		{&Addr{NS: red, Dev: "veth-red", CIDR: "10.0.0.1/24"},
			"ip -n red addr add 10.0.0.1/24 dev veth-red", "ip -n red addr del 10.0.0.1/24 dev veth-red"},
		{&Addr{NS: red, Dev: "veth-red", CIDR: "fd00::1/64", NoDAD: true},
			"ip -n red addr add fd00::1/64 dev veth-red nodad", "ip -n red addr del fd00::1/64 dev veth-red"},
		{&Addr{NS: red, Dev: "x", CIDR: "10.0.0.1/24", Del: true}, "ip -n red addr del 10.0.0.1/24 dev x", ""},
		{&Route{NS: red, Dst: "10.0.2.0/24", Via: "10.0.1.1"},
			"ip -n red route add 10.0.2.0/24 via 10.0.1.1", "ip -n red route del 10.0.2.0/24 via 10.0.1.1"},
		{&Route{NS: host, V6: true, Dst: "default", Via: "fd00::1", Dev: "eth0"},
			"ip -6 route add default via fd00::1 dev eth0", "ip -6 route del default via fd00::1 dev eth0"},
		{&Route{NS: red, Dst: "10.0.2.0/24", Dev: "x", Del: true}, "ip -n red route del 10.0.2.0/24 dev x", ""},
		{&Route{NS: red, Dst: "10.0.2.0/24", Dev: "x"},
			"ip -n red route add 10.0.2.0/24 dev x scope global", "ip -n red route del 10.0.2.0/24 dev x"},
		{&NetnsAdd{Name: "red", LoUp: true}, "ip netns add red\nip -n red link set dev lo up", "ip netns del red"},
		{&NetnsAdd{Name: "red"}, "ip netns add red", "ip netns del red"},
		{&NetnsAdd{Name: "red", Opened: true}, "", ""},
		{&Sysctl{NS: red, Key: "net.ipv4.ip_forward", Value: "1", Old: "0"},
			"ip netns exec red sysctl -q -w net.ipv4.ip_forward=1", "ip netns exec red sysctl -q -w net.ipv4.ip_forward=0"},
		{&Sysctl{NS: host, Key: "kernel.msgmax", Value: "a b", Old: "8192", Other: "ipc:[4026532201]"},
			"sysctl -q -w 'kernel.msgmax=a b'  # in ipc:[4026532201]", "sysctl -q -w kernel.msgmax=8192  # in ipc:[4026532201]"},
		{&Sysctl{NS: anon, Key: "net/ipv4/conf/eth0.1/forwarding", Value: "1", Old: "0"},
			"nsenter --net=" + path + " sysctl -q -w net/ipv4/conf/eth0.1/forwarding=1",
			"nsenter --net=" + path + " sysctl -q -w net/ipv4/conf/eth0.1/forwarding=0"},
		{&Qdisc{NS: red, Dev: "veth0", Verb: "replace", Handle: "1:", Kind: "tbf", Rate: 20e6, Burst: 25000, Limit: 150000},
			"tc -n red qdisc replace dev veth0 root handle 1: tbf rate 20mbit burst 25000 limit 150000", "tc -n red qdisc del dev veth0 root"},
		{&Qdisc{NS: host, Dev: "eth0", Verb: "add", Kind: "tbf", Rate: 512500, Burst: 6056, Limit: 9259},
			"tc qdisc add dev eth0 root tbf rate 512500bit burst 6056 limit 9259", "tc qdisc del dev eth0 root"},
		{&Qdisc{NS: anon, Dev: "x", Verb: "change", Handle: "1:", Kind: "netem", Delay: 30 * time.Millisecond, Jitter: 1500 * time.Microsecond, Loss: 2.5, Rate: 1e9},
			"nsenter --net=" + path + " tc qdisc change dev x root handle 1: netem delay 30ms 1500us loss 2.5% rate 1gbit",
			"nsenter --net=" + path + " tc qdisc del dev x root"},
		{&Qdisc{NS: red, Dev: "x", Verb: "replace", Kind: "netem", Loss: 5}, "tc -n red qdisc replace dev x root netem loss 5%", "tc -n red qdisc del dev x root"},
		{&Qdisc{NS: red, Dev: "veth0", Verb: "del"}, "tc -n red qdisc del dev veth0 root", ""},
		{&Qdisc{NS: red, Dev: "veth0", Verb: "del", None: true}, "", ""},
		{&UTSName{Name: "box"}, "hostname box", ""},
		{&UTSName{Name: "it's", Domain: true, UTS: "/proc/1/fd/9", Label: "uts:[4026532200]"},
			`nsenter --uts=/proc/1/fd/9 domainname 'it'\''s'  # uts:[4026532200]`, ""},
		{&Mount{Args: []string{"-t", "tmpfs", "-o", "size=64m"}, Source: "tmpfs", Target: "/tmp/box"},
			"mount -t tmpfs -o size=64m tmpfs /tmp/box", "umount /tmp/box"},
		{&Mount{Args: []string{"--bind", "-o", "ro"}, Source: "/usr", Target: "/tmp/box/usr", Dirs: []string{"/tmp/box", "/tmp/box/usr"}},
			"mkdir -p /tmp/box/usr\nmount --bind -o ro /usr /tmp/box/usr", "umount /tmp/box/usr\nrmdir /tmp/box/usr /tmp/box"},
		{&Mount{Args: []string{"--make-rslave"}, Target: "/", NS: ns},
			"nsenter --mount=/proc/1/fd/8 mount --make-rslave /  # mnt:[4026532300]",
			"nsenter --mount=/proc/1/fd/8 umount /  # mnt:[4026532300]"},
		{&Mount{Args: []string{"-t", "tmpfs"}, Source: "tmpfs", Target: "/a b", Dirs: []string{"/a b"}, NS: ns, Vanishes: true},
			"nsenter --mount=/proc/1/fd/8 mkdir -p '/a b'  # mnt:[4026532300]\nnsenter --mount=/proc/1/fd/8 mount -t tmpfs tmpfs '/a b'  # mnt:[4026532300]",
			"nsenter --mount=/proc/1/fd/8 rmdir '/a b'  # mnt:[4026532300]"},
		{&Mount{Args: []string{"--bind"}, Source: "/etc/hosts", Target: "/x/hosts", Dirs: []string{"/x", "/x/hosts"}, File: true},
			"mkdir -p /x\ntouch /x/hosts\nmount --bind /etc/hosts /x/hosts", "umount /x/hosts\nrm /x/hosts\nrmdir /x"},
		{unmounted(&Mount{Args: []string{"-t", "tmpfs"}, Source: "tmpfs", Target: "/x/y", Dirs: []string{"/x", "/x/y"}}),
			"mkdir -p /x/y\nmount -t tmpfs tmpfs /x/y", "rmdir /x/y /x"},
		{&Umount{Target: "/x"}, "umount /x", ""},
		{&UTSName{Name: "box", Old: "vm", Restore: true}, "hostname box", "hostname vm"},
		{&Cgroup{Path: "/sys/fs/cgroup/unified/nsh-7-ab"}, "mkdir /sys/fs/cgroup/unified/nsh-7-ab",
			"echo 1 > /sys/fs/cgroup/unified/nsh-7-ab/cgroup.kill\nrmdir /sys/fs/cgroup/unified/nsh-7-ab"},
		{&Subreaper{}, "# prctl(PR_SET_CHILD_SUBREAPER): the orphans of the run's processes are nsh's",
			"# the orphans of the run's processes are killed (kill -KILL)"},
		{&Process{Argv: []string{"sleep", "1"}, Pid: 42}, "sleep 1  # pid 42", "kill -KILL 42"},
		{&Process{Argv: []string{"id"}, Unshare: []string{"--net", "--uts", "--pid", "--fork", "--mount-proc"}, Hostname: &box, Background: true, Pid: 9},
			`unshare --net --uts --pid --fork --mount-proc sh -c 'hostname box && exec "$0" "$@"' id &  # pid 9`, "kill -KILL 9"},
		{&Process{Argv: []string{"ip", "addr"}, Enter: Enter{Opts: []string{"--net=/run/netns/red"}, Netns: "red"}, Cwd: "/tmp", Pid: 3},
			"ip netns exec red env -C /tmp ip addr  # pid 3", "kill -KILL 3"},
		{&Process{Argv: []string{"sh", "-c", "echo $$"}, Enter: Enter{Opts: []string{"--uts=/proc/1/fd/9", "--net=/run/netns/red"}},
			Setpriv: []string{"--reuid=1000", "--regid=1000", "--clear-groups"}, Detach: true, Pid: 5},
			`nsenter --uts=/proc/1/fd/9 --net=/run/netns/red setsid setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'echo $$'  # pid 5`, ""},
		{&Process{Argv: []string{"/bin/sh"}, Unshare: []string{"--mount"}, Root: "/tmp/root", Cwd: "/", Pid: 8},
			"unshare --mount --root=/tmp/root --wd=/ /bin/sh  # pid 8; nsh pivots the root, unshare --root chroots", "kill -KILL 8"},
		{&Unshare{Opts: []string{"--net", "--uts"}, Held: []string{"net:[4026532300] as /proc/1/fd/7", "uts:[4026532301] as /proc/1/fd/8"}, LoUp: true, Net: anon},
			"# unshare --net --uts: nsh holds net:[4026532300] as /proc/1/fd/7, uts:[4026532301] as /proc/1/fd/8\nnsenter --net=" + path + " ip link set dev lo up", ""},
		{&Unshare{Opts: []string{"--user", "--map-root-user", "--pid"}, Held: []string{"user:[1] as /proc/1/fd/7", "pid:[2] as /proc/1/fd/8"}, Init: 77},
			"# unshare --user --map-root-user --pid: nsh holds user:[1] as /proc/1/fd/7, pid:[2] as /proc/1/fd/8; pid 77 is the init of the new pid namespace",
			"kill -KILL 77  # the init of the pid namespace"},
		{&Setns{Enter: Enter{Opts: []string{"--net=/run/netns/red"}, Netns: "red"}}, "# nsenter --net=/run/netns/red: what follows runs there", ""},
		{&Setns{}, "# setns: back in nsh's own namespaces", ""},
		{&PivotRoot{NewRoot: "/tmp/r", PutOld: "/old", Bound: true, NS: ns},
			"nsenter --mount=/proc/1/fd/8 mount --rbind /tmp/r /tmp/r  # mnt:[4026532300]\nnsenter --mount=/proc/1/fd/8 mkdir -p /tmp/r/old  # mnt:[4026532300]\nnsenter --mount=/proc/1/fd/8 pivot_root /tmp/r /tmp/r/old  # mnt:[4026532300]", ""},
		{&PivotRoot{NewRoot: "/tmp/r"}, `sh -c 'cd /tmp/r && pivot_root . . && mount --make-rslave / && umount -l /'`, ""},
		{&IDMaps{Pid: 9, UID: idmap.Root(1000), GID: idmap.Root(1000), Setgroups: "deny"},
			"echo deny > /proc/9/setgroups\necho '0 1000 1' > /proc/9/uid_map\necho '0 1000 1' > /proc/9/gid_map", ""},
		{&IDMaps{Pid: 9, UID: idmap.Map{{Inside: 0, Outside: 1000, Count: 1}, {Inside: 1, Outside: 100000, Count: 65536}}, Parent: true},
			`printf '0 1000 1\n1 100000 65536\n' > /proc/9/uid_map  # from the parent user namespace of process 9's`, ""},
		{&IDMaps{Pid: 9, UID: idmap.Map{{Inside: 0, Outside: 1000, Count: 1}, {Inside: 1, Outside: 100000, Count: 65536}}, GID: idmap.Root(1000), Helpers: true},
			"newuidmap 9 0 1000 1 1 100000 65536\nnewgidmap 9 0 1000 1", ""},
		{&Umount{Target: "/x", Recursive: true, Detach: true, NS: ns}, "nsenter --mount=/proc/1/fd/8 umount -R -l /x  # mnt:[4026532300]", ""},
	} {
		if got := strings.Join(c.r.Commands(), "\n"); got != c.cmds {
			t.Errorf("%T Commands() = %q, want %q", c.r, got, c.cmds)
		}
		if got := strings.Join(c.r.UndoCommands(), "\n"); got != c.undo {
			t.Errorf("%T UndoCommands() = %q, want %q", c.r, got, c.undo)
		}
	}
}

// TestExecutor checks what the executor does with a record: the trace
// line before the change, the undo registered only with Undo set, the
// teardown line only when the undo acted, no registration on failure.
func TestExecutor(t *testing.T) {
	reg := lifecycle.New()
	var out bytes.Buffer
	Trace(reg, &out)
	fr := &fakeReaper{}
	x := NewExecutor(reg, func() Reaper { return fr })
	th := &starlark.Thread{}
	applied := 0
	undone := 0

	a := &Addr{NS: Netns{Name: "red"}, Dev: "x", CIDR: "10.0.0.1/24"}
	a.Apply = func() error { applied++; return nil }
	if e, err := x.Do(th, a); e != nil || err != nil {
		t.Fatalf("record without undo: %v, %v", e, err)
	}

	r := &Route{NS: Netns{Name: "red"}, Dst: "10.0.2.0/24", Via: "10.0.1.1"}
	r.What = "route"
	r.Apply = func() error { applied++; return nil }
	r.Undo = func() (bool, error) { undone++; return true, nil }
	r.Reap = func() []reaper.Op { return []reaper.Op{reaper.Unlink(nil, "/x", 0)} }
	if e, err := x.Do(th, r); e == nil || err != nil {
		t.Fatalf("record with undo: %v, %v", e, err)
	}

	l := &LinkAdd{Kind: "bridge", NS: Netns{Name: "red"}, Name: "br0"}
	l.What = "bridge"
	l.Apply = func() error { applied++; return nil }
	l.Undo = func() (bool, error) { undone++; return false, nil } // went with its namespace

	if _, err := x.Do(th, l); err != nil {
		t.Fatal(err)
	}
	bad := &LinkDel{NS: Netns{Name: "red"}, Name: "gone"}
	bad.What = "bad"
	bad.Ahead = func() []reaper.Op { return []reaper.Op{reaper.Unlink(nil, "/y", 7)} }
	bad.Apply = func() error {
		// Written ahead: the reaper has the ops before the change.
		if got := strings.Join(fr.log, ","); !strings.HasSuffix(got, "set 2 bad:1") {
			t.Errorf("before the change the reaper was given %q, want ... set 2 bad:1", got)
		}
		return errors.New("boom")
	}
	bad.Undo = func() (bool, error) { t.Error("undo of a failed change"); return true, nil }
	if _, err := x.Do(th, bad); err == nil {
		t.Fatal("failure not returned")
	}
	if got := strings.Join(reg.Live(), ","); got != "route,bridge" {
		t.Errorf("registered %q, want route,bridge", got)
	}
	// route: given once made (no Ahead), kept; bad: given ahead,
	// withdrawn when it failed.
	if got := strings.Join(fr.log, ","); got != "set 1 route:1,set 2 bad:1,del 2" {
		t.Errorf("reaper given %q, want set 1 route:1,set 2 bad:1,del 2", got)
	}
	if err := reg.Teardown(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fr.log, ","); !strings.HasSuffix(got, ",del 1") {
		t.Errorf("the route's ops were not withdrawn after its undo: %q", got)
	}
	if applied != 3 || undone != 2 {
		t.Errorf("applied %d, undone %d; want 3, 2", applied, undone)
	}
	want := `+ ip -n red addr add 10.0.0.1/24 dev x
+ ip -n red route add 10.0.2.0/24 via 10.0.1.1
+ ip -n red link add name br0 type bridge
+ ip -n red link del dev gone
- ip -n red route del 10.0.2.0/24 via 10.0.1.1
`
	if out.String() != want {
		t.Errorf("trace:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestNoTrace(t *testing.T) {
	reg := lifecycle.New()
	if Tracing(reg) {
		t.Fatal("a fresh run traces")
	}
	Trace(reg, &bytes.Buffer{})
	if !Tracing(reg) {
		t.Fatal("Trace did not turn tracing on")
	}
}

// TestScript checks the two scripts of --trace: the setup has the commands
// of what was applied (not of what failed), with the script positions as
// comments; the teardown undoes, newest first, what nsh registered an undo
// for and what it made to outlive the run (Kept). What is Aside is a
// comment in the setup script and has no undo in the teardown.
func TestScript(t *testing.T) {
	reg := lifecycle.New()
	var setup, teardown bytes.Buffer
	Script(reg, &setup, &teardown)
	x := NewExecutor(reg, func() Reaper { return &fakeReaper{} })
	n := &NetnsAdd{Name: "red", LoUp: true}
	n.Apply = func() error { n.Kept = true; return nil }
	l := &LinkAdd{Kind: "bridge", NS: Netns{Name: "red"}, Name: "br0"}
	l.Apply = func() error { return nil }
	l.Undo = func() (bool, error) { return false, nil }
	a := &Addr{NS: Netns{Name: "red"}, Dev: "br0", CIDR: "10.0.0.1/24"}
	a.Apply = func() error { return nil }
	bad := &LinkDel{NS: Netns{Name: "red"}, Name: "gone"}
	bad.Apply = func() error { return errors.New("boom") }
	// A process the script runs is no part of what it builds: a comment
	// in the setup script, and its kill is not in the teardown script.
	p := &Process{Argv: []string{"sh", "-c", "ip -n red addr\nip -n red route"}, Pid: 9}
	p.Aside = true
	p.Apply = func() error { return nil }
	p.Undo = func() (bool, error) { return true, nil }
	u := &Unshare{Opts: []string{"--net"}, Held: []string{"net:[1] as /proc/1/fd/3"}}
	u.Aside = true
	u.Apply = func() error { return nil }
	for _, r := range []Record{n, l, p, u, a, bad} {
		x.Do(nil, r)
	}
	if err := reg.Teardown(); err != nil {
		t.Fatal(err)
	}
	if err := Finish(reg); err != nil {
		t.Fatal(err)
	}
	want := setupHeader + `ip netns add red
ip -n red link set dev lo up
ip -n red link add name br0 type bridge
# sh -c 'ip -n red addr
# ip -n red route'  # pid 9
# unshare --net: nsh holds net:[1] as /proc/1/fd/3
ip -n red addr add 10.0.0.1/24 dev br0
`
	if setup.String() != want {
		t.Errorf("setup:\n%s\nwant:\n%s", setup.String(), want)
	}
	want = teardownHeader + `ip -n red link del dev br0
ip netns del red
`
	if teardown.String() != want {
		t.Errorf("teardown:\n%s\nwant:\n%s", teardown.String(), want)
	}
}

// fakeReaper logs what the executor gives the reaper.
type fakeReaper struct {
	next uint64
	log  []string
}

func (f *fakeReaper) NewID() uint64 { f.next++; return f.next }
func (f *fakeReaper) Set(id uint64, what string, ops ...reaper.Op) error {
	f.log = append(f.log, fmt.Sprintf("set %d %s:%d", id, what, len(ops)))
	return nil
}
func (f *fakeReaper) Del(id uint64) error {
	f.log = append(f.log, fmt.Sprintf("del %d", id))
	return nil
}
