package idmap

import (
	"os"
	"strings"
	"testing"
)

func TestCheckIDMaps(t *testing.T) {
	m := func(in, out, n uint32) Extent { return Extent{Inside: in, Outside: out, Count: n} }
	all := [][2]uint64{{0, MaxID}}
	for _, c := range []struct {
		maps Map
		own  [][2]uint64
		want string
	}{
		{Map{m(0, 1000, 1), m(1, 100000, 65536)}, all, ""},
		{Map{m(0, 1000, 10), m(5, 2000, 10)}, all, "overlap inside"},
		{Map{m(0, 1000, 10), m(100, 1005, 10)}, all, "overlap outside"},
		{nil, all, "empty uid map"},
		{Map{m(0, 0, 1)}, [][2]uint64{{0, 1}}, ""},
		{Map{m(0, 1, 1)}, [][2]uint64{{0, 1}}, "do not exist in nsh's user namespace"},
		{Map{m(0, 0, 3)}, [][2]uint64{{0, 1}, {1, 2}}, ""},
		{Map{m(0, 0, 4)}, [][2]uint64{{0, 1}, {1, 2}}, "do not exist"},
	} {
		err := c.maps.Check("uid", c.own)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Check(%v, %v) = %v, want %q", c.maps, c.own, err, c.want)
		}
	}
	many := make(Map, MaxLines+1)
	for i := range many {
		many[i] = m(uint32(i), uint32(i), 1)
	}
	if err := many.Check("uid", all); err == nil || !strings.Contains(err.Error(), "at most 340") {
		t.Errorf("341 lines: %v", err)
	}
}

// Issue 15 item 2: a map is refused before anything is written when it
// does not fit the kernel's one write of less than a page, and the message
// names it by its first lines only.
func TestItem2MapSizeLimit(t *testing.T) {
	all := [][2]uint64{{0, MaxID}}
	lines := func(n int, base uint32) Map {
		ms := make(Map, n)
		for i := range ms {
			ms[i] = Extent{Inside: uint32(i), Outside: base + uint32(i), Count: 1}
		}
		return ms
	}
	if err := lines(320, 100000).Check("uid", all); err != nil {
		t.Errorf("320 lines (4050 bytes): %v", err)
	}
	if err := lines(340, 1000).Check("uid", all); err != nil {
		t.Errorf("340 short lines: %v", err)
	}
	// The largest map under a page passes; one byte more does not.
	page := os.Getpagesize()
	for n := 1; n <= MaxLines; n++ {
		ms := lines(n, 100000)
		size := len(ms.Text())
		err := ms.Check("uid", all)
		if (size < page) != (err == nil) {
			t.Fatalf("%d lines, %d bytes: %v", n, size, err)
		}
	}
	for _, n := range []int{330, 340, 341} {
		err := lines(n, 100000).Check("uid", all)
		if err == nil {
			t.Fatalf("%d lines accepted", n)
		}
		msg := err.Error()
		if len(msg) > 400 || !strings.Contains(msg, "uidmap(2, 100002, 1), … ") {
			t.Errorf("%d lines: message of %d bytes: %s", n, len(msg), msg)
		}
	}
	if s := Summary(lines(340, 100000).Text()); s != "0 100000 1\n1 100001 1\n2 100002 1\n… 337 more" {
		t.Errorf("Summary: %q", s)
	}
}

// The text of /proc/PID/uid_map parses back to the map written, and the
// lookups the identity checks make read the right column.
func TestParseAndLookups(t *testing.T) {
	m := Map{{Inside: 0, Outside: 1000, Count: 1}, {Inside: 1, Outside: 100000, Count: 65536}}
	// The kernel pads its columns; Parse takes any spacing.
	got, err := Parse("uid_map", []byte("         0       1000          1\n         1     100000      65536\n"))
	if err != nil || len(got) != 2 || got[0] != m[0] || got[1] != m[1] {
		t.Fatalf("Parse = %v, %v", got, err)
	}
	if got.Text() != "0 1000 1\n1 100000 65536\n" {
		t.Errorf("Text = %q", got.Text())
	}
	if _, err := Parse("uid_map", []byte("0 x 1\n")); err == nil || err.Error() != `uid_map: bad line "0 x 1"` {
		t.Errorf("bad line: %v", err)
	}
	if empty, err := Parse("uid_map", nil); err != nil || empty != nil {
		t.Errorf("unwritten map: %v, %v", empty, err)
	}
	for _, c := range []struct {
		id   int64
		want bool
	}{{0, true}, {65536, true}, {65537, false}, {1000, true}} {
		if m.Maps(c.id) != c.want {
			t.Errorf("Maps(%d) = %v", c.id, !c.want)
		}
	}
	if in, ok := m.ToInside(1000); !ok || in != 0 {
		t.Errorf("ToInside(1000) = %d, %v", in, ok)
	}
	if in, ok := m.ToInside(100005); !ok || in != 6 {
		t.Errorf("ToInside(100005) = %d, %v", in, ok)
	}
	if _, ok := m.ToInside(0); ok {
		t.Error("ToInside(0): outside id 0 is not mapped")
	}
	if !Root(1000).OwnIDOnly(1000) || m.OwnIDOnly(1000) {
		t.Error("OwnIDOnly")
	}
	if s := m.Short("gid"); s != "[gidmap(0, 1000, 1), gidmap(1, 100000, 65536)]" {
		t.Errorf("Short = %q", s)
	}
	if r := m.Ranges(); len(r) != 2 || r[1] != [2]uint64{1, 65536} {
		t.Errorf("Ranges = %v", r)
	}
}
