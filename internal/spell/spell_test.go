package spell

import "testing"

func TestNearest(t *testing.T) {
	names := []string{"ping", "print", "route", "routes", "netns_delete", "ip_forward", "ip_no_pmtu_disc"}
	for _, c := range []struct{ x, want string }{
		{"pnig", "ping"},
		{"prnt", "print"},
		{"rute", "route"},
		{"ip_fowrard", "ip_forward"},
		{"IP_FORWARD", "ip_forward"},
		{"netnsdelete", "netns_delete"},
		{"ping", ""},     // itself is no suggestion
		{"xyzzy", ""},    // nothing near
		{"transfer", ""}, // half its letters differ from everything
	} {
		if got := Nearest(c.x, names); got != c.want {
			t.Errorf("Nearest(%q) = %q, want %q", c.x, got, c.want)
		}
	}
}
