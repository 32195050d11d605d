// Package idmap is nsh's one notion of a user namespace's uid_map or
// gid_map: its lines (extents), the kernel's rules for writing one, its
// text as /proc/PID/uid_map takes and shows it, and the lookups the
// identity checks make. It knows nothing of Starlark (builtins wraps an
// extent as the nsh.idmap value) and writes nothing (internal/spawn does,
// directly or through newuidmap/newgidmap).
//
// Kinds are "uid" and "gid"; a Map does not carry its kind, which the
// functions that render messages take as an argument.
package idmap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MaxID is (uid_t)-1, which is not a valid id: ids go from 0 to MaxID-1.
const MaxID = 1<<32 - 1

// MaxLines is the kernel's limit on lines (extents) in a uid_map or
// gid_map, UID_GID_MAP_MAX_EXTENTS since Linux 4.15 (5 before).
const MaxLines = 340

// Extent is one line of a uid_map or gid_map: Count ids from Inside in a
// user namespace are the ids from Outside in its parent.
type Extent struct {
	Inside, Outside, Count uint32
}

// Format renders the line as nsh's messages (and its uidmap()/gidmap()
// builtins) write it: "uidmap(0, 1000, 1)".
func (e Extent) Format(kind string) string {
	return fmt.Sprintf("%smap(%d, %d, %d)", kind, e.Inside, e.Outside, e.Count)
}

// Map is a whole uid_map or gid_map. Callers keep nil (no map given)
// apart from an empty one where it matters.
type Map []Extent

// Root maps id (as the parent sees it) to root, in one line: the map
// nsh writes when none is given, as unshare --map-root-user.
func Root(id int) Map { return Map{{Inside: 0, Outside: uint32(id), Count: 1}} }

// Text renders the map as the kernel's uid_map/gid_map lines, the text
// written to the file in one write(2) and given to newuidmap as arguments.
func (m Map) Text() string {
	var b strings.Builder
	for _, l := range m {
		fmt.Fprintf(&b, "%d %d %d\n", l.Inside, l.Outside, l.Count)
	}
	return b.String()
}

// Short renders a map for a message: up to three lines, then how many
// more there are ("[uidmap(0, 1000, 1), …]").
func (m Map) Short(kind string) string {
	if len(m) <= 4 {
		return m.format(kind)
	}
	return strings.TrimSuffix(m[:3].format(kind), "]") + fmt.Sprintf(", … %d more]", len(m)-3)
}

func (m Map) format(kind string) string {
	parts := make([]string, len(m))
	for i, l := range m {
		parts[i] = l.Format(kind)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Summary shortens the text of a map for a message: its first three lines
// and how many more there are ("0 100000 1\n1 100001 1\n2 100002 1\n… 337
// more"), without the final newline.
func Summary(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) <= 4 {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:3], "\n") + fmt.Sprintf("\n… %d more", len(lines)-3)
}

// Maps reports whether id, an id inside the user namespace, is mapped.
func (m Map) Maps(id int64) bool {
	for _, l := range m {
		if id >= int64(l.Inside) && id < int64(l.Inside)+int64(l.Count) {
			return true
		}
	}
	return false
}

// ToInside maps id, an id of the parent user namespace (the outside
// column, as the kernel shows it to a reader there), to the id inside;
// false when unmapped.
func (m Map) ToInside(id int) (int, bool) {
	for _, l := range m {
		if uint64(id) >= uint64(l.Outside) && uint64(id) < uint64(l.Outside)+uint64(l.Count) {
			return int(l.Inside) + id - int(l.Outside), true
		}
	}
	return 0, false
}

// OwnIDOnly reports whether m is the one line an unprivileged writer may
// write itself: its own id, once.
func (m Map) OwnIDOnly(id int) bool {
	return len(m) == 1 && m[0].Count == 1 && int(m[0].Outside) == id
}

// Check applies the kernel's rules to a map before it is written: at
// most 340 lines, each of at least one id and not past 2^32-2, written
// out in less than a page (map_write takes one write(2) shorter than
// PAGE_SIZE, else EINVAL), no overlap inside, no overlap outside, and
// every outside id mapped in the writer's own user namespace (own lists
// the ranges of ids that exist there, as [start, count] pairs; nil:
// unknown). Its messages name a long map by its first lines only.
func (m Map) Check(kind string, own [][2]uint64) error {
	if len(m) == 0 {
		return fmt.Errorf("empty %s map", kind)
	}
	if len(m) > MaxLines {
		return fmt.Errorf("%s map has %d lines (%s); the kernel allows at most %d: merge adjacent lines into one %smap(inside, outside, count)",
			kind, len(m), m.Short(kind), MaxLines, kind)
	}
	if n, page := len(m.Text()), os.Getpagesize(); n >= page {
		return fmt.Errorf("%s map is %d bytes written out (%d lines: %s); the kernel takes it in one write of less than a page (%d bytes): merge adjacent lines into one %smap(inside, outside, count)",
			kind, n, len(m), m.Short(kind), page, kind)
	}
	for _, a := range m {
		// map_write refuses a line whose range is empty or wraps past
		// 2^32-1, which is not an id.
		if a.Count == 0 {
			return fmt.Errorf("%s maps no ids: count must be at least 1", a.Format(kind))
		}
		if uint64(a.Inside)+uint64(a.Count) > MaxID || uint64(a.Outside)+uint64(a.Count) > MaxID {
			return fmt.Errorf("%s goes past the largest id %d", a.Format(kind), MaxID-1)
		}
	}
	overlap := func(a0, an, b0, bn uint32) bool {
		return uint64(a0) < uint64(b0)+uint64(bn) && uint64(b0) < uint64(a0)+uint64(an)
	}
	for i, a := range m {
		for _, b := range m[i+1:] {
			if overlap(a.Inside, a.Count, b.Inside, b.Count) {
				return fmt.Errorf("%s and %s overlap inside the namespace", a.Format(kind), b.Format(kind))
			}
			if overlap(a.Outside, a.Count, b.Outside, b.Count) {
				return fmt.Errorf("%s and %s overlap outside the namespace", a.Format(kind), b.Format(kind))
			}
		}
		if own != nil && !covered(uint64(a.Outside), uint64(a.Count), own) {
			return fmt.Errorf("%s maps outside %ss %d..%d, which do not exist in nsh's user namespace (its %s_map: %s); a rootless nsh can map only the ids it was given",
				a.Format(kind), kind, a.Outside, uint64(a.Outside)+uint64(a.Count)-1, kind, fmtRanges(own))
		}
	}
	return nil
}

func covered(start, count uint64, own [][2]uint64) bool {
	for start < start+count && count > 0 {
		found := false
		for _, r := range own {
			if start >= r[0] && start < r[0]+r[1] {
				n := r[0] + r[1] - start
				if n >= count {
					return true
				}
				start, count, found = start+n, count-n, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return count == 0
}

// fmtRanges renders id ranges for a message, the first three of a long list.
func fmtRanges(rs [][2]uint64) string {
	var parts []string
	for i, r := range rs {
		if i == 3 && len(rs) > 4 {
			parts = append(parts, fmt.Sprintf("… %d more", len(rs)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%d..%d", r[0], r[0]+r[1]-1))
	}
	return strings.Join(parts, ", ")
}

// Parse parses the text of a /proc/PID/uid_map or gid_map file (name
// names it in errors). Reading the file is the caller's, whose errors keep
// their errno (internal/nserr, which this package is below).
func Parse(name string, text []byte) (Map, error) {
	var out Map
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		var n [3]uint64
		for i := range f {
			var err error
			if n[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("%s: bad line %q", name, sc.Text())
			}
		}
		out = append(out, Extent{Inside: uint32(n[0]), Outside: uint32(n[1]), Count: uint32(n[2])})
	}
	return out, nil
}

// Ranges returns the ids that exist inside the user namespace whose map m
// is (its inside column), as [start, count] pairs for Check.
func (m Map) Ranges() [][2]uint64 {
	var out [][2]uint64
	for _, l := range m {
		out = append(out, [2]uint64{uint64(l.Inside), uint64(l.Count)})
	}
	return out
}
