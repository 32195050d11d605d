package builtins

import (
	"regexp"
	"testing"
)

// validSysctlKey accepts exactly what the pattern of sysctl names does.
func TestValidSysctlKey(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:@+-]*(/[A-Za-z0-9_.:@+-]+)*$`)
	for _, k := range []string{
		"net.ipv4.ip_forward", "net/ipv4/conf/eth0.1/forwarding", "kernel.hostname", "_x", "9",
		"net.ipv6.conf.veth-a@b.disable_ipv6", "a:b+c", "", "/net", ".net", "-x", "net//ipv4",
		"net/", "net/.x", "net ipv4", "net.ipv4.ip_forward\n", "ü", "a/b/c", "a*", "a/-",
	} {
		if got, want := validSysctlKey(k), re.MatchString(k); got != want {
			t.Errorf("validSysctlKey(%q) = %v, want %v", k, got, want)
		}
	}
}
