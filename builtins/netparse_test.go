package builtins

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
)

func TestCheckLinkName(t *testing.T) {
	for _, ok := range []string{"a", "veth0", "h1-eth0", "x.y", "exactly15bytes_", "nt-a@b"} {
		if err := checkLinkName("veth", ok); err != nil {
			t.Errorf("checkLinkName(%q) = %v, want ok", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                 "empty",
		"sixteen-bytes-xx": `"sixteen-bytes-xx" is longer than 15 bytes`,
		".":                "not allowed",
		"..":               "not allowed",
		"a/b":              "contains '/'",
		"a:b":              "contains '/' or ':'",
		"a b":              "whitespace",
		"a\tb":             "whitespace",
		"a\u00a0b":         "whitespace",
	} {
		err := checkLinkName("veth", name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkLinkName(%q) = %v, want error containing %q", name, err, want)
		}
	}
}

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1/24":  "10.0.0.1/24",
		"10.0.0.1":     "10.0.0.1/32",
		"fd00::1/64":   "fd00::1/64",
		"fd00::1":      "fd00::1/128",
		" 10.0.0.1/8":  "",
		"10.0.0.1/33":  "",
		"10.0.0.256/8": "",
		"fd00::1/129":  "",
		"1.2.3.4/x":    "",
		"":             "",
		"hostname/24":  "",
	} {
		a, err := parseAddr(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("parseAddr(%q) = %v, want an error", in, a.IPNet)
		case want == "" && !strings.Contains(err.Error(), "malformed"):
			t.Errorf("parseAddr(%q) error %q does not say malformed", in, err)
		case want != "" && err != nil:
			t.Errorf("parseAddr(%q): %v", in, err)
		case want != "" && a.IPNet.String() != want:
			t.Errorf("parseAddr(%q) = %s, want %s", in, a.IPNet, want)
		}
	}
	if a, _ := parseAddr("fd00::1/64"); a.Flags == 0 {
		t.Errorf("IPv6 addresses should be added without DAD")
	}
	if a, _ := parseAddr("10.0.0.1/24"); a.IPNet.IP.To4() == nil || len(a.IPNet.IP) != 4 {
		t.Errorf("IPv4 address should be 4 bytes, got %v", a.IPNet.IP)
	}
}

func TestParseRoute(t *testing.T) {
	for _, c := range []struct{ dst, via, want, err string }{
		{"default", "10.0.0.1", "0.0.0.0/0 v4", ""},
		{"default", "fd00::1", "::/0 v6", ""},
		{"default", "", "0.0.0.0/0 v4", ""},
		{"default6", "", "::/0 v6", ""},
		{"10.1.2.3/24", "", "10.1.2.0/24 v4", ""},
		{"10.1.2.3", "10.0.0.1", "10.1.2.3/32 v4", ""},
		{"fd01::/64", "fe80::1", "fd01::/64 v6", ""},
		{"10.1.0.0/16", "fd00::1", "", "gateway fd00::1 is IPv6 but destination 10.1.0.0/16 is IPv4"},
		{"fd01::/64", "10.0.0.1", "", "gateway 10.0.0.1 is IPv4 but destination fd01::/64 is IPv6"},
		{"default6", "10.0.0.1", "", "is IPv4 but destination"},
		{"10.1.0.0/40", "", "", `malformed CIDR "10.1.0.0/40"`},
		{"10.1.0.0/16", "10.0.0", "", `malformed gateway address "10.0.0"`},
	} {
		r, err := parseRoute(c.dst, c.via)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseRoute(%q, %q) = %v, want error %q", c.dst, c.via, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRoute(%q, %q): %v", c.dst, c.via, err)
			continue
		}
		fam := "v4"
		if r.v6 {
			fam = "v6"
		}
		if got := r.dst.String() + " " + fam; got != c.want {
			t.Errorf("parseRoute(%q, %q) = %s, want %s", c.dst, c.via, got, c.want)
		}
	}
}

func TestParseNetem(t *testing.T) {
	s := func(v string) starlark.Value { return starlark.String(v) }
	i := func(v int) starlark.Value { return starlark.MakeInt(v) }
	n := starlark.None
	for _, c := range []struct {
		delay, jitter, loss, rate starlark.Value
		want                      netemArgs
		err                       string
	}{
		{s("10ms"), n, n, n, netemArgs{delay: 10 * time.Millisecond}, ""},
		{i(25), s("5ms"), n, n, netemArgs{delay: 25 * time.Millisecond, jitter: 5 * time.Millisecond}, ""},
		{starlark.Float(1.5), n, n, n, netemArgs{delay: 1500 * time.Microsecond}, ""},
		{n, n, i(5), n, netemArgs{loss: 5, hasLoss: true}, ""},
		{n, n, s("0.5%"), n, netemArgs{loss: 0.5, hasLoss: true}, ""},
		{n, n, n, s("10mbit"), netemArgs{rate: 10e6}, ""},
		{n, n, n, s("1Gbit"), netemArgs{rate: 1e9}, ""},
		{n, n, n, s("100kbps"), netemArgs{rate: 800e3}, ""},
		{n, n, n, s("512 kbit"), netemArgs{rate: 512e3}, ""},
		{n, n, n, i(1000000), netemArgs{rate: 1e6}, ""},
		{s("-1ms"), n, n, n, netemArgs{}, "negative"},
		{i(-1), n, n, n, netemArgs{}, "negative"},
		{s("1h"), n, n, n, netemArgs{}, "absurd"},
		{s("soon"), n, n, n, netemArgs{}, "not a duration"},
		{n, s("1ms"), n, n, netemArgs{}, "needs a delay"},
		{n, n, i(101), n, netemArgs{}, "between 0 and 100"},
		{n, n, s("-3%"), n, netemArgs{}, "between 0 and 100"},
		{n, n, n, s("-1mbit"), netemArgs{}, "negative"},
		{n, n, n, s("2tbit"), netemArgs{}, "absurd"},
		{n, n, n, i(4), netemArgs{}, "too low"},
		{n, n, n, s("fast"), netemArgs{}, "not a rate"},
		{n, n, n, starlark.True, netemArgs{}, "bits per second"},
	} {
		got, err := parseNetem(c.delay, c.jitter, c.loss, c.rate)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseNetem(%v, %v, %v, %v) = %v, want error %q", c.delay, c.jitter, c.loss, c.rate, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseNetem(%v, %v, %v, %v) = %+v, %v; want %+v", c.delay, c.jitter, c.loss, c.rate, got, err, c.want)
		}
	}
}

func TestTbfParameters(t *testing.T) {
	q, burst := tbf(netlink.QdiscAttrs{Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}, 20e6, 1500)
	if burst != 25000 || q.Buffer != netlink.Xmittime(q.Rate, burst) {
		t.Errorf("burst %d bytes (buffer %d), want 10 ms at 20mbit, 25000", burst, q.Buffer)
	}
	if q.Rate != 20e6/8 {
		t.Errorf("rate %d bytes/s, want %d", q.Rate, uint64(20e6/8))
	}
	if q.Limit < 25000 || q.Limit > 1<<20 {
		t.Errorf("limit %d bytes is not about 10 ms burst + 50 ms of queue", q.Limit)
	}
	if q.Buffer == 0 {
		t.Errorf("zero bucket")
	}
}

func TestSysctlPath(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_forward":                "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/conf/eth0.100/rp_filter":   "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
		"kernel.hostname":                    "/proc/sys/kernel/hostname",
		"net.ipv6.conf.h1-eth0.disable_ipv6": "/proc/sys/net/ipv6/conf/h1-eth0/disable_ipv6",
	} {
		if got, err := sysctlPath(in); err != nil || got != want {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "net..ipv4", "net/../../etc/passwd", "/etc/passwd", "net ipv4", "net.ipv4.", "a//b"} {
		if got, err := sysctlPath(bad); err == nil {
			t.Errorf("sysctlPath(%q) = %q, want an error", bad, got)
		}
	}
}

func TestChecksum(t *testing.T) {
	// An echo request with its checksum filled in sums to zero.
	b := echoRequest(false, 0x1234, 7)
	if c := checksum(b); c != 0 {
		t.Errorf("checksum over a finished packet = %#x, want 0", c)
	}
	if seq, ok := echoReply(append([]byte{0, 0}, b[2:]...), false, 0x1234); !ok || seq != 7 {
		t.Errorf("reply not recognised")
	}
	if _, ok := echoReply(b, false, 0x1234); ok {
		t.Errorf("our own request taken for a reply")
	}
}

func TestSolicitedNode(t *testing.T) {
	if got := solicitedNode(net.ParseIP("fd88::1:2:3")).String(); got != "ff02::1:ff02:3" {
		t.Errorf("solicited-node group of fd88::1:2:3 = %s", got)
	}
}

func TestItem3LinkNameTemplateAndNUL(t *testing.T) {
	for name, want := range map[string]string{
		"pa%d":   `name "pa%d" contains '%'`,
		"%":      `name "%" contains '%'`,
		"a\x00b": `name "a\x00b" contains a NUL byte`,
		"\x00":   `contains a NUL byte`,
	} {
		err := checkLinkName("", name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkLinkName(%q) = %v, want error containing %q", name, err, want)
		}
	}
}

func TestItem13PrefixLengthAndMappedAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1/024":        `malformed CIDR "10.0.0.1/024": prefix length "024" has a leading zero`,
		"10.0.0.1/00":         `prefix length "00" has a leading zero`,
		"fd00::1/064":         `prefix length "064" has a leading zero`,
		"10.0.0.1/+8":         `prefix length "+8" is not a number from 0 to 32`,
		"10.0.0.1/":           `prefix length "" is not a number`,
		"fd00::1/0129":        `leading zero`,
		"fd00::1/1280":        `is not a number from 0 to 128`,
		"::ffff:10.0.0.1/96":  `"::ffff:10.0.0.1/96" is an IPv4-mapped IPv6 address`,
		"::ffff:10.0.0.1":     `write the IPv4 address (10.0.0.1)`,
		"::FFFF:10.0.0.1/128": `IPv4-mapped`,
	} {
		if got, err := parsePrefix(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parsePrefix(%q) = %v, %v; want error containing %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"10.0.0.1/0":    "10.0.0.1/0",
		"10.0.0.1/24":   "10.0.0.1/24",
		"10.0.0.1/32":   "10.0.0.1/32",
		"fd00::1/128":   "fd00::1/128",
		"::/0":          "::/0",
		"::10.0.0.1":    "::a00:1/128", // IPv4-compatible, not mapped: plain IPv6
		"64:ff9b::1/96": "64:ff9b::1/96",
	} {
		got, err := parsePrefix(in)
		if err != nil || got.String() != want {
			t.Errorf("parsePrefix(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseRoute("10.1.0.0/16", "::ffff:10.0.0.1"); err == nil || !strings.Contains(err.Error(), `gateway "::ffff:10.0.0.1" is an IPv4-mapped IPv6 address`) {
		t.Errorf("parseRoute with a mapped gateway: %v", err)
	}
	if _, err := parseRoute("10.1.0.0/016", ""); err == nil || !strings.Contains(err.Error(), "leading zero") {
		t.Errorf("parseRoute(10.1.0.0/016): %v", err)
	}
}

func TestItem13NULRefused(t *testing.T) {
	if err := checkNoNUL("name", "a\x00b"); err == nil || err.Error() != `name "a\x00b" contains a NUL byte` {
		t.Errorf("checkNoNUL: %v", err)
	}
	if err := checkNoNUL("name", "ab"); err != nil {
		t.Errorf("checkNoNUL(ab): %v", err)
	}
	if _, err := parseArgv(starlark.NewList([]starlark.Value{starlark.String("echo"), starlark.String("a\x00b")})); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("parseArgv with a NUL: %v", err)
	}
}
