package idmap

// Fuzz targets for id maps and the kernel's rules on them (issue 18,
// item 3); see builtins/fuzz_test.go for the others. `go test` runs them
// on their seed corpora (testdata/fuzz), `make fuzz` for FUZZTIME each.

import (
	"encoding/binary"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse covers the text of /proc/PID/uid_map (Parse): no input
// panics, a refusal names the line, and a map reads back the same from
// its Text(). None of issue 15's defects was in this parser.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, text []byte) {
		m, err := Parse("uid_map", text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "uid_map: bad line ") {
				t.Fatalf("Parse(%q): error %q does not name the file and line", text, err)
			}
			return
		}
		back, err := Parse("uid_map", []byte(m.Text()))
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("Parse(%q) = %v; its text %q reads back as %v, %v", text, m, m.Text(), back, err)
		}
	})
}

// extents decodes b as 12-byte (inside, outside, count) lines.
func extents(b []byte) Map {
	var m Map
	for ; len(b) >= 12; b = b[12:] {
		m = append(m, Extent{
			Inside:  binary.LittleEndian.Uint32(b),
			Outside: binary.LittleEndian.Uint32(b[4:]),
			Count:   binary.LittleEndian.Uint32(b[8:]),
		})
	}
	return m
}

// FuzzCheck covers the kernel's rules for a map (Map.Check): what it
// accepts has 1..340 lines of at least one id, none past 2^32-2, is
// written out in less than a page, has no
// two lines overlapping inside or outside, and (with the writer's own
// ranges given) maps outside only ids that exist; a refusal is a short
// message. It would have caught issue 15's item 2 (a 340-line map passed
// to the kernel, EINVAL, with a 4.7 KB message).
func FuzzCheck(f *testing.F) {
	f.Fuzz(func(t *testing.T, lines []byte, own []byte) {
		m := extents(lines)
		ownMap := extents(own)
		var ranges [][2]uint64
		if len(own) > 0 {
			ranges = ownMap.Ranges()
			if ranges == nil {
				ranges = [][2]uint64{}
			}
		}
		err := m.Check("uid", ranges)
		if err != nil {
			if msg := err.Error(); msg == "" || len(msg) > 1024 || !strings.Contains(msg, "uid") {
				t.Fatalf("Check(%v): message %q", m, msg)
			}
			return
		}
		if len(m) == 0 || len(m) > MaxLines || len(m.Text()) >= os.Getpagesize() {
			t.Fatalf("Check accepts a map of %d lines, %d bytes", len(m), len(m.Text()))
		}
		for i, a := range m {
			if a.Count == 0 || uint64(a.Inside)+uint64(a.Count) > MaxID || uint64(a.Outside)+uint64(a.Count) > MaxID {
				// The kernel refuses a count of 0 and a range that wraps
				// past 2^32-1 (map_write: first + count <= first).
				t.Fatalf("Check accepts line %v", a)
			}
			for _, b := range m[i+1:] {
				in := func(x, y Extent) bool { return uint64(x.Inside) < uint64(y.Inside)+uint64(y.Count) }
				out := func(x, y Extent) bool { return uint64(x.Outside) < uint64(y.Outside)+uint64(y.Count) }
				if in(a, b) && in(b, a) || out(a, b) && out(b, a) {
					t.Fatalf("Check accepts overlapping lines %v and %v", a, b)
				}
			}
			if ranges != nil {
				// Every outside id of the line is in one of the ranges: walk
				// the line's ids range by range.
				id, end := uint64(a.Outside), uint64(a.Outside)+uint64(a.Count)
				for id < end {
					next := id
					for _, r := range ranges {
						if id >= r[0] && id < r[0]+r[1] {
							next = r[0] + r[1]
							break
						}
					}
					if next == id {
						t.Fatalf("Check accepts %v; outside id %d is not among %v", a, id, ranges)
					}
					id = next
				}
			}
		}
	})
}
