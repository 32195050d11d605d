package labs

import (
	"strings"
	"testing"
)

// A host's part of a lab of several hosts is NAME@HOST; both halves are
// checked as lab names.
func TestKey(t *testing.T) {
	if Key("lab", "") != "lab" || Key("lab", "a") != "lab@a" || (&Lab{Name: "x", Host: "b"}).Key() != "x@b" {
		t.Errorf("Key: %q %q", Key("lab", ""), Key("lab", "a"))
	}
	for _, ok := range []string{"lab", "lab@a", "l.1@host-2"} {
		if err := checkKey(ok); err != nil {
			t.Errorf("checkKey(%q): %v", ok, err)
		}
	}
	for key, want := range map[string]string{"lab@": "invalid host name", "@a": "invalid lab name", "lab@a@b": "invalid host name", "lab@../x": "invalid host name"} {
		if err := checkKey(key); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkKey(%q): %v, want %q", key, err, want)
		}
	}
}
