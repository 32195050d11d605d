package change

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
)

// A refused change reads as its equivalent command, the errno in words and
// what the builtin said, once each; errors.Is and errors.As still reach
// what Apply returned.
func TestFailedLeadsWithCommand(t *testing.T) {
	red := Netns{Name: "red"}
	addr := &Addr{NS: red, Dev: "veth-red", CIDR: "10.0.0.1/24"}
	mnt := &Mount{Args: []string{"-t", "tmpfs"}, Source: "tmpfs", Target: "/x"}
	mountErr := nserr.Errorf("mount", `-t tmpfs "tmpfs" "/x"`, unix.ENOENT, "the target does not exist; mkdir=True creates it")
	already := &Error{Command: "ip link add", Err: unix.EINVAL, msg: "ip link add: EINVAL"}
	for _, c := range []struct {
		r    Record
		err  error
		want string
	}{
		// What the builtin explained follows the errno's words.
		{addr, nserr.Explain(unix.EEXIST, `address 10.0.0.1/24 is already on "veth-red" in netns red`),
			`ip -n red addr add 10.0.0.1/24 dev veth-red: EEXIST: file exists: address 10.0.0.1/24 is already on "veth-red" in netns red`},
		// An error of the same operation gives way to the command (its
		// object is the command's), keeping its hint.
		{&LinkSet{NS: red, Name: "a", Up: true}, nserr.Errorf("link set up", `"a"`, unix.ENETDOWN, "the peer is down"),
			`ip -n red link set dev a up: ENETDOWN: network is down (the peer is down)`},
		{&UTSName{Name: "x"}, nserr.Errorf("sethostname", `"x" in uts:[1]`, unix.EINVAL, "too long"),
			`hostname x: EINVAL: invalid argument (too long)`},
		// Another step of the change keeps its own words.
		{&LinkAdd{Kind: "veth", NS: red, PeerNS: red, Name: "a", Peer: "b"}, nserr.New("link show", `"b"`, unix.ENODEV),
			`ip -n red link add name a type veth peer name b: link show "b": ENODEV: no such device`},
		{&Sysctl{NS: red, Key: "net.ipv4.ip_forward", Value: "1"}, nserr.New("write", `"1" to /proc/sys/net/ipv4/ip_forward`, unix.EINVAL),
			`ip netns exec red sysctl -q -w net.ipv4.ip_forward=1: write "1" to /proc/sys/net/ipv4/ip_forward: EINVAL: invalid argument`},
		// Any other error follows the command as it is.
		{addr, errors.New("boom"), `ip -n red addr add 10.0.0.1/24 dev veth-red: boom`},
		// A mount's error names its mount(8) call already: not doubled.
		{mnt, mountErr, mountErr.Error()},
		// Led once only.
		{addr, already, "ip link add: EINVAL"},
	} {
		got := failed(c.r, c.err)
		if got.Error() != c.want {
			t.Errorf("failed(%T, %q)\n got %q\nwant %q", c.r, c.err, got, c.want)
		}
		var errno unix.Errno
		if errors.As(c.err, &errno) && !errors.Is(got, errno) {
			t.Errorf("failed(%T, %q): errors.Is(%v) is false", c.r, c.err, errno)
		}
		var ne *nserr.Error
		if errors.As(c.err, &ne) && !errors.As(got, &ne) {
			t.Errorf("failed(%T, %q): not an *nserr.Error any more", c.r, c.err)
		}
	}
	// The command is there to read.
	var ce *Error
	if err := failed(addr, unix.EPERM); !errors.As(err, &ce) || ce.Command != "ip -n red addr add 10.0.0.1/24 dev veth-red" {
		t.Errorf("failed: Command not kept: %#v", err)
	}
}

// In a namespace held only by nsh's descriptor the command is nsenter's,
// and the namespace is named, unless the message names it.
func TestFailedNamesUnnamedNamespace(t *testing.T) {
	fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Close(fd)
	anon := Netns{Fd: fd}
	label := anon.label()
	r := &Route{NS: anon, Dst: "10.1.0.0/24", Via: "10.0.0.2"}
	got := failed(r, nserr.New("route add", "10.1.0.0/24 via 10.0.0.2 in "+label, unix.ENETUNREACH)).Error()
	want := anon.IP("route add 10.1.0.0/24 via 10.0.0.2") + "  # " + label + ": ENETUNREACH: network is unreachable"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	got = failed(r, nserr.Explain(unix.EEXIST, "a route to 10.1.0.0/24 already exists in %s", label)).Error()
	want = anon.IP("route add 10.1.0.0/24 via 10.0.0.2") + ": EEXIST: file exists: a route to 10.1.0.0/24 already exists in " + label
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// A labelled namespace (netns_new) is named by its label, not its inode.
func TestFailedNamesLabelledNamespace(t *testing.T) {
	fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Close(fd)
	h1 := Netns{Fd: fd, Label: "h1"}
	r := &Route{NS: h1, Dst: "10.1.0.0/24", Via: "10.0.0.2"}
	got := failed(r, nserr.New("route add", "10.1.0.0/24 via 10.0.0.2", unix.ENETUNREACH)).Error()
	want := h1.IP("route add 10.1.0.0/24 via 10.0.0.2") + "  # net:h1: ENETUNREACH: network is unreachable"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestSameOp(t *testing.T) {
	for _, c := range []struct {
		op, cmd string
		want    bool
	}{
		{"link set up", "ip -n red link set dev a up", true},
		{"link set netns", "ip link set dev a netns red", true},
		{"qdisc replace", "tc qdisc replace dev a root netem delay 1ms", true},
		{"setdomainname", "domainname x", true},
		{"link show", "ip link add name a type bridge", false},
		{"open", "sysctl -q -w a=1", false},
		{"", "ip link", false},
	} {
		if got := sameOp(c.op, c.cmd); got != c.want {
			t.Errorf("sameOp(%q, %q) = %v", c.op, c.cmd, got)
		}
	}
}
