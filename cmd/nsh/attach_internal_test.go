package main

import "testing"

func TestIdent(t *testing.T) {
	for in, want := range map[string]string{"c1": "c1", "c1-eth1": "c1_eth1", "h.1": "h_1", "1a": "_1a", "": ""} {
		if got := ident(in); got != want {
			t.Errorf("ident(%q) = %q, want %q", in, got, want)
		}
	}
}
