package sockdiag

import (
	"net"
	"os"
	"slices"
	"testing"
)

func TestEndpoint(t *testing.T) {
	for _, c := range []struct {
		ip   net.IP
		port int
		want string
	}{
		{net.IPv4(10, 0, 0, 1), 80, "10.0.0.1:80"},
		{net.IPv4zero, 80, "*:80"},
		{net.IPv6zero, 0, "*:*"},
		{nil, 0, "*:*"},
		{net.IPv6loopback, 53, "[::1]:53"},
	} {
		if got := Endpoint(c.ip, c.port); got != c.want {
			t.Errorf("Endpoint(%v, %d) = %q, want %q", c.ip, c.port, got, c.want)
		}
	}
}

func TestStateName(t *testing.T) {
	for _, c := range []struct {
		s    Socket
		want string
	}{
		{Socket{Proto: "tcp", State: Listen}, "listen"},
		{Socket{Proto: "tcp", State: Established}, "estab"},
		{Socket{Proto: "udp", State: Established}, "estab"},
		{Socket{Proto: "udp", State: Close}, "unconn"},
		{Socket{Proto: "tcp", State: Close}, "close"},
		{Socket{Proto: "tcp", State: 6}, "time-wait"},
		{Socket{Proto: "tcp", State: 99}, "state-99"},
	} {
		if got := c.s.StateName(); got != c.want {
			t.Errorf("StateName(%+v) = %q, want %q", c.s, got, c.want)
		}
		if c.s.State != 99 && !slices.Contains(StateNames(), c.want) {
			t.Errorf("StateNames() lacks %q", c.want)
		}
	}
}

func TestSocketInode(t *testing.T) {
	for _, c := range []struct {
		s   string
		ino uint32
		ok  bool
	}{
		{"socket:[12345]", 12345, true},
		{"pipe:[12345]", 0, false},
		{"socket:[12x]", 0, false},
		{"socket:[1", 0, false},
		{"/dev/null", 0, false},
	} {
		ino, ok := socketInode(c.s)
		if ino != c.ino || ok != c.ok {
			t.Errorf("socketInode(%q) = %d, %v", c.s, ino, ok)
		}
	}
}

// A listener of this process is listed with this process as its owner.
func TestListAndOwners(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback:", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	socks, err := d.List("tcp")
	if err != nil {
		t.Fatal(err)
	}
	var mine *Socket
	for i, s := range socks {
		if s.LPort == port && s.State == Listen && s.Local.Equal(net.IPv4(127, 0, 0, 1)) {
			mine = &socks[i]
		}
	}
	if mine == nil || mine.V6 || mine.Proto != "tcp" || mine.Inode == 0 {
		t.Fatalf("listener on %d not listed right: %+v in %v", port, mine, socks)
	}
	owners, err := Owners("/proc", map[uint32]bool{mine.Inode: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(owners[mine.Inode], os.Getpid()) {
		t.Errorf("owners of inode %d = %v, want this process %d", mine.Inode, owners[mine.Inode], os.Getpid())
	}
}
