package builtins

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/rootless"
	"nsh.dev/nsh/internal/spawn"
)

func idmapTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "uidmap", Sig: "uidmap(inside, outside, count=1)", Impl: idmapBuiltin("uid"), Doc: `Returns one line of a user-ID map: ids inside..inside+count-1 of a user
namespace are ids outside..outside+count-1 of its parent. A list of them is
a full map, e.g. clone(..., "user", uidmap=[uidmap(0, 1000), uidmap(1, 100000, 65536)]).`},
			{Name: "gidmap", Sig: "gidmap(inside, outside, count=1)", Impl: idmapBuiltin("gid"), Doc: `Returns one line of a group-ID map; see uidmap().`},
			{Name: "set_idmaps", Sig: `set_idmaps(target, uidmap=None, gidmap=None, setgroups=None)`, Impl: setIDMapsBuiltin, Doc: `Writes the uid_map and gid_map of the user namespace of a process.
This is the parent's half of the user-namespace handshake, done by hand:
  p = clone("id", "user", paused=True, stdout=True)   # waits, unmapped
  set_idmaps(p, uidmap=[uidmap(0, ids().uid)], gidmap=[gidmap(0, ids().gid)])
  p.resume()                                          # id: uid=0(root) ...
target is a process or a pid; uidmap and gidmap are lists of
uidmap()/gidmap() values (or (inside, outside, count) tuples); either may be
left out (a map never written leaves its ids unmapped: 65534 inside).
The kernel's rules are checked first, and a refused call writes nothing:
  - each map is written once ("already written");
  - ranges do not overlap, inside or outside; at most 340 lines,
    written out in less than a page (4096 bytes);
  - outside ids must exist in nsh's user namespace (rootless nsh has only
    the ids it was given);
  - without CAP_SETUID/CAP_SETGID (nsh run by a user with --no-rootless)
    nsh may map only its own uid/gid, one line each, and gid_map only after
    "deny" is written to setgroups (nsh writes it; setgroups="allow" is
    refused). Other ranges go through newuidmap/newgidmap (Debian's uidmap)
    within the user's /etc/subuid and /etc/subgid ranges, as podman does.
setgroups ("allow" or "deny") is written before gid_map when given. When
the process's user namespace was created inside one the context moved
into, a helper process joins that parent to write the maps, as the kernel
requires.`},
			{Name: "ids", Sig: "ids(target=None)", Impl: idsBuiltin, Doc: `Returns the identity of a process as seen from nsh, and its maps.
A struct with uid, gid (the effective ids, as /proc/PID/status shows them in
nsh's user namespace: the real user outside), inside_uid, inside_gid (the
same ids as the process sees them in its own user namespace, through its
maps; 65534, nobody, when unmapped), uid_map and gid_map (lists of
nsh.idmap, empty when not written yet; outside ids as nsh sees them),
setgroups ("allow" or "deny") and user (its user namespace). target is a
process or pid; default nsh itself. After set_idmaps(p, uidmap=[uidmap(0,
ids().uid)]) alone, ids(p) shows inside_uid 0 and inside_gid 65534, the
tutorial's "uid=0(root) gid=65534" inside.`},
		},
		Types: []doc.Type{idmapType.Type()},
	}
}

// IDMap is one line of a uid_map or gid_map.
type IDMap struct {
	Kind                   string // "uid" or "gid"
	Inside, Outside, Count uint32
}

var (
	_ starlark.HasAttrs   = IDMap{}
	_ starlark.Comparable = IDMap{}
)

// String renders the map line as the kernel file shows it.
func (m IDMap) String() string {
	return fmt.Sprintf("%smap(%d, %d, %d)", m.Kind, m.Inside, m.Outside, m.Count)
}

// Type returns "nsh.idmap".
func (m IDMap) Type() string { return "nsh.idmap" }

// Freeze is a no-op: IDMap is immutable.
func (m IDMap) Freeze() {}

// Truth is always true.
func (m IDMap) Truth() starlark.Bool { return true }

// Hash combines the fields.
func (m IDMap) Hash() (uint32, error) { return m.Inside*31 ^ m.Outside*17 ^ m.Count, nil }

// CompareSameType compares all fields.
func (m IDMap) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	n := y.(IDMap)
	switch op {
	case syntax.EQL:
		return m == n, nil
	case syntax.NEQ:
		return m != n, nil
	}
	return false, fmt.Errorf("%s %s %s not supported", m.Type(), op, y.Type())
}

var idmapType = doc.Members[IDMap]{
	Name: "nsh.idmap",
	Doc:  "One line of a uid_map or gid_map: inside, outside, count (str() as the kernel file shows it).",
	Attrs: []doc.AttrOf[IDMap]{
		{Name: "kind", Doc: `"uid" or "gid"`, Get: func(m IDMap) (starlark.Value, error) { return starlark.String(m.Kind), nil }},
		{Name: "inside", Doc: "first id inside the user namespace", Get: func(m IDMap) (starlark.Value, error) { return starlark.MakeUint64(uint64(m.Inside)), nil }},
		{Name: "outside", Doc: "first id in the parent user namespace", Get: func(m IDMap) (starlark.Value, error) { return starlark.MakeUint64(uint64(m.Outside)), nil }},
		{Name: "count", Doc: "number of ids in the range", Get: func(m IDMap) (starlark.Value, error) { return starlark.MakeUint64(uint64(m.Count)), nil }},
	},
}

// AttrNames lists the attributes.
func (m IDMap) AttrNames() []string { return idmapType.AttrNames() }

// Attr returns an attribute.
func (m IDMap) Attr(name string) (starlark.Value, error) { return idmapType.Attr(m, name) }

func idmapBuiltin(kind string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var inside, outside int64
		count := int64(1)
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "inside", &inside, "outside", &outside, "count?", &count); err != nil {
			return nil, err
		}
		return makeIDMap(kind, inside, outside, count)
	}
}

const maxID = 1<<32 - 1 // (uid_t)-1 is not a valid id

func makeIDMap(kind string, inside, outside, count int64) (IDMap, error) {
	switch {
	case inside < 0 || outside < 0:
		return IDMap{}, fmt.Errorf("%smap(%d, %d, %d): ids cannot be negative", kind, inside, outside, count)
	case count < 1:
		return IDMap{}, fmt.Errorf("%smap(%d, %d, %d): count must be at least 1", kind, inside, outside, count)
	case inside+count > maxID || outside+count > maxID:
		return IDMap{}, fmt.Errorf("%smap(%d, %d, %d): range goes past the largest id %d", kind, inside, outside, count, maxID-1)
	}
	return IDMap{Kind: kind, Inside: uint32(inside), Outside: uint32(outside), Count: uint32(count)}, nil
}

// parseIDMaps accepts a list of IDMap values or (inside, outside[, count])
// tuples for the given kind.
func parseIDMaps(kind string, v starlark.Value) ([]IDMap, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	if m, ok := v.(IDMap); ok {
		v = starlark.NewList([]starlark.Value{m})
	}
	it, ok := v.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("%smap must be a list of %smap() values, not %s", kind, kind, v.Type())
	}
	var out []IDMap
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		switch x := x.(type) {
		case IDMap:
			if x.Kind != kind {
				return nil, fmt.Errorf("%s given where a %smap is expected", x, kind)
			}
			out = append(out, x)
		case starlark.Tuple:
			if len(x) < 2 || len(x) > 3 {
				return nil, fmt.Errorf("%smap tuple %s must be (inside, outside) or (inside, outside, count)", kind, x)
			}
			nums := []int64{0, 0, 1}
			for i, e := range x {
				if err := starlark.AsInt(e, &nums[i]); err != nil {
					return nil, fmt.Errorf("%smap tuple %s: %v", kind, x, err)
				}
			}
			m, err := makeIDMap(kind, nums[0], nums[1], nums[2])
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		default:
			return nil, fmt.Errorf("%smap entries must be %smap() values or tuples, not %s", kind, kind, x.Type())
		}
	}
	return out, nil
}

// maxMapLines is the kernel's limit on lines (extents) in a uid_map or
// gid_map, UID_GID_MAP_MAX_EXTENTS since Linux 4.15 (5 before).
const maxMapLines = 340

// checkIDMaps applies the kernel's rules to a map before it is written:
// at most 340 lines, written out in less than a page (map_write takes one
// write(2) shorter than PAGE_SIZE, else EINVAL), no overlap inside, no
// overlap outside, and every outside id mapped in the writer's own user
// namespace (own lists the ranges of ids that exist there, as [start,
// count] pairs). Its messages name a long map by its first lines only.
func checkIDMaps(kind string, maps []IDMap, own [][2]uint64) error {
	if len(maps) == 0 {
		return fmt.Errorf("empty %s map", kind)
	}
	if len(maps) > maxMapLines {
		return fmt.Errorf("%s map has %d lines (%s); the kernel allows at most %d: merge adjacent lines into one %smap(inside, outside, count)",
			kind, len(maps), fmtMapsShort(maps), maxMapLines, kind)
	}
	if n, page := len(spawn.FormatMap(toSpawn(maps))), os.Getpagesize(); n >= page {
		return fmt.Errorf("%s map is %d bytes written out (%d lines: %s); the kernel takes it in one write of less than a page (%d bytes): merge adjacent lines into one %smap(inside, outside, count)",
			kind, n, len(maps), fmtMapsShort(maps), page, kind)
	}
	overlap := func(a0, an, b0, bn uint32) bool {
		return uint64(a0) < uint64(b0)+uint64(bn) && uint64(b0) < uint64(a0)+uint64(an)
	}
	for i, a := range maps {
		for _, b := range maps[i+1:] {
			if overlap(a.Inside, a.Count, b.Inside, b.Count) {
				return fmt.Errorf("%s and %s overlap inside the namespace", a, b)
			}
			if overlap(a.Outside, a.Count, b.Outside, b.Count) {
				return fmt.Errorf("%s and %s overlap outside the namespace", a, b)
			}
		}
		if own != nil && !covered(uint64(a.Outside), uint64(a.Count), own) {
			return fmt.Errorf("%s maps outside %ss %d..%d, which do not exist in nsh's user namespace (its %s_map: %s); a rootless nsh can map only the ids it was given",
				a, kind, a.Outside, uint64(a.Outside)+uint64(a.Count)-1, kind, fmtRanges(own))
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

// readMap parses /proc/PID/{uid,gid}_map.
func readMap(kind, path string) ([]IDMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nserr.New("read", path, unwrap(err))
	}
	var out []IDMap
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		var n [3]uint64
		for i := range f {
			if n[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
			}
		}
		out = append(out, IDMap{Kind: kind, Inside: uint32(n[0]), Outside: uint32(n[1]), Count: uint32(n[2])})
	}
	return out, nil
}

// ownRanges returns the ids that exist in nsh's own user namespace: the
// inside column of its own map.
func ownRanges(kind string) ([][2]uint64, error) {
	maps, err := readMap(kind, "/proc/self/"+kind+"_map")
	if err != nil {
		return nil, err
	}
	var out [][2]uint64
	for _, m := range maps {
		out = append(out, [2]uint64{uint64(m.Inside), uint64(m.Count)})
	}
	return out, nil
}

// writeIDMaps writes the maps of process pid's user namespace after
// checking the kernel's rules; setgroups is "", "deny" or "allow". A
// writer with CAP_SETUID/CAP_SETGID (root, or rootless nsh in its own user
// namespace) writes any ids that exist in nsh's user namespace itself
// (spawn.WriteIDMaps, the one place maps are written). One without may
// write only its own id in one line, gid_map only after "deny" to
// setgroups; other ranges go through newuidmap/newgidmap and the caller's
// /etc/subuid and /etc/subgid ranges.
//
// When the parent of pid's user namespace is not nsh's own (a user
// namespace the context moved into), the kernel wants the writer there: a
// helper process joins it and writes (spawn.WriteIDMapsAs). rootByDefault
// maps the writer's own id to root for a map not given.
func (st *state) writeIDMaps(pid int, uids, gids []IDMap, setgroups string, rootByDefault bool) error {
	base := fmt.Sprintf("/proc/%d/", pid)
	parent, err := parentUserNS(pid)
	if err != nil {
		return err
	}
	if parent != nil {
		defer parent.Close()
	}
	for _, w := range []struct {
		kind string
		maps []IDMap
	}{{"uid", uids}, {"gid", gids}} {
		if w.maps == nil {
			continue
		}
		var own [][2]uint64 // the ids of the parent: nsh's own, or unknown
		if parent == nil {
			if own, err = ownRanges(w.kind); err != nil {
				return err
			}
		}
		if err := checkIDMaps(w.kind, w.maps, own); err != nil {
			return err
		}
		cur, err := readMap(w.kind, base+w.kind+"_map")
		if err != nil {
			return err
		}
		if len(cur) > 0 {
			return fmt.Errorf("the %s_map of process %d is already written (%s); the kernel allows one write", w.kind, pid, cur[0])
		}
	}
	if parent != nil {
		if st == nil {
			return fmt.Errorf("process %d's user namespace is not a child of nsh's", pid)
		}
		sp := st.spawner()
		u, g := toSpawn(uids), toSpawn(gids)
		if rootByDefault && u == nil {
			u = []spawn.IDMap{}
		}
		if rootByDefault && g == nil {
			g = []spawn.IDMap{}
		}
		join := nsthread.Join{Fd: int(parent.Fd()), Type: unix.CLONE_NEWUSER, Name: fmt.Sprintf("the parent user namespace of process %d", pid)}
		return sp.WriteIDMapsAs(join, pid, u, g, setgroups)
	}
	if rootByDefault && uids == nil {
		uids = []IDMap{{Kind: "uid", Inside: 0, Outside: uint32(os.Geteuid()), Count: 1}}
	}
	if rootByDefault && gids == nil {
		gids = []IDMap{{Kind: "gid", Inside: 0, Outside: uint32(os.Getegid()), Count: 1}}
	}
	capUID, capGID := spawn.Capable(unix.CAP_SETUID), spawn.Capable(unix.CAP_SETGID)
	if (uids != nil && !capUID && !ownIDOnly(uids, os.Geteuid())) || (gids != nil && !capGID && !ownIDOnly(gids, os.Getegid())) {
		return writeWithHelpers(pid, uids, gids, setgroups)
	}
	if gids != nil && !capGID {
		if setgroups == "allow" {
			return fmt.Errorf(`setgroups="allow" cannot go with a gid_map written without CAP_SETGID: the kernel wants "deny" in /proc/%d/setgroups first (leave setgroups unset and nsh writes it)`, pid)
		}
		setgroups = "deny"
	}
	return spawn.WriteIDMaps(pid, toSpawn(uids), toSpawn(gids), setgroups)
}

// parentUserNS opens the parent of pid's user namespace when it is not
// nsh's own user namespace; nil when it is (or when pid's user namespace is
// nsh's own or an ancestor's, whose maps are written anyway).
func parentUserNS(pid int) (*os.File, error) {
	path := fmt.Sprintf("/proc/%d/ns/user", pid)
	// A plain descriptor: os.Open would try to register it with the poller.
	nsfd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nserr.New("open", path, err)
	}
	defer unix.Close(nsfd)
	fd, err := unix.IoctlRetInt(nsfd, unix.NS_GET_PARENT)
	if err == unix.EPERM {
		return nil, nil
	}
	if err != nil {
		return nil, nserr.New("ioctl NS_GET_PARENT", path, err)
	}
	p := os.NewFile(uintptr(fd), "user namespace parent")
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		p.Close()
		return nil, nserr.New("fstat", "user namespace parent", err)
	}
	if err := unix.Stat("/proc/self/ns/user", &b); err != nil {
		p.Close()
		return nil, nserr.New("stat", "/proc/self/ns/user", err)
	}
	if a.Dev == b.Dev && a.Ino == b.Ino {
		p.Close()
		return nil, nil
	}
	unix.CloseOnExec(fd)
	return p, nil
}

// ownIDOnly reports whether maps is the one line an unprivileged writer
// may write itself: its own id, once.
func ownIDOnly(maps []IDMap, id int) bool {
	return len(maps) == 1 && maps[0].Count == 1 && int(maps[0].Outside) == id
}

func toSpawn(maps []IDMap) []spawn.IDMap {
	if maps == nil {
		return nil
	}
	out := make([]spawn.IDMap, len(maps))
	for i, m := range maps {
		out[i] = spawn.IDMap{Inside: int(m.Inside), Outside: int(m.Outside), Count: int(m.Count)}
	}
	return out
}

// writeWithHelpers writes maps beyond the caller's own id through
// newuidmap/newgidmap, after checking that each outside range is the
// caller's own id or inside its subordinate range.
func writeWithHelpers(pid int, uids, gids []IDMap, setgroups string) error {
	sub := rootless.Subordinate()
	if sub == nil {
		m, who := uids, os.Geteuid()
		if uids == nil || ownIDOnly(uids, os.Geteuid()) {
			m, who = gids, os.Getegid()
		}
		return fmt.Errorf("%s maps ids other than nsh's own %s %d, which needs CAP_SET%sID; without it, ranges come from newuidmap/newgidmap (Debian's uidmap) and the caller's entries in /etc/subuid and /etc/subgid, which this user lacks",
			fmtMapsShort(m), m[0].Kind, who, strings.ToUpper(m[0].Kind[:1]))
	}
	var lines [2][][3]int
	for i, w := range []struct {
		maps []IDMap
		self int
		rng  [2]int
		file string
	}{{uids, os.Geteuid(), sub.UID, "/etc/subuid"}, {gids, os.Getegid(), sub.GID, "/etc/subgid"}} {
		for _, m := range w.maps {
			inSub := int(m.Outside) >= w.rng[0] && int(m.Outside)+int(m.Count) <= w.rng[0]+w.rng[1]
			if !inSub && !(m.Count == 1 && int(m.Outside) == w.self) {
				return fmt.Errorf("%s is neither nsh's own %s %d nor inside %s's range %d..%d in %s",
					m, m.Kind, w.self, sub.User, w.rng[0], w.rng[0]+w.rng[1]-1, w.file)
			}
			lines[i] = append(lines[i], [3]int{int(m.Inside), int(m.Outside), int(m.Count)})
		}
	}
	if setgroups == "deny" {
		// Anyone may deny; newgidmap leaves setgroups as it finds it.
		if err := spawn.WriteIDMaps(pid, nil, nil, setgroups); err != nil {
			return err
		}
	}
	return sub.Map(pid, lines[0], lines[1])
}

// fmtMapsShort renders a map for a message: up to three lines, then how
// many more there are.
func fmtMapsShort(ms []IDMap) string {
	if len(ms) <= 4 {
		return fmtMaps(ms)
	}
	return strings.TrimSuffix(fmtMaps(ms[:3]), "]") + fmt.Sprintf(", … %d more]", len(ms)-3)
}

func fmtMaps(ms []IDMap) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// pidOf accepts a pid or any value with an int pid attribute (a process).
func pidOf(v starlark.Value) (int, error) {
	if ha, ok := v.(starlark.HasAttrs); ok {
		if p, err := ha.Attr("pid"); err == nil && p != nil {
			v = p
		}
	}
	var pid int
	if err := starlark.AsInt(v, &pid); err != nil || pid <= 0 {
		return 0, fmt.Errorf("want a process or pid, not %s", v.String())
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return 0, fmt.Errorf("no process with pid %d", pid)
	}
	return pid, nil
}

func setIDMapsBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target, uv, gv starlark.Value
	setgroups := ""
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "target", &target, "uidmap?", &uv, "gidmap?", &gv, "setgroups?", &setgroups); err != nil {
		return nil, err
	}
	if setgroups != "" && setgroups != "allow" && setgroups != "deny" {
		return nil, fmt.Errorf(`setgroups must be "allow" or "deny", not %q`, setgroups)
	}
	uids, err := parseIDMaps("uid", uv)
	if err != nil {
		return nil, err
	}
	gids, err := parseIDMaps("gid", gv)
	if err != nil {
		return nil, err
	}
	if uids == nil && gids == nil {
		return nil, fmt.Errorf("nothing to write: give uidmap= and/or gidmap=")
	}
	pid, err := pidOf(target)
	if err != nil {
		return nil, err
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	return starlark.None, st.writeIDMaps(pid, uids, gids, setgroups, false)
}

func idsBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "target?", &target); err != nil {
		return nil, err
	}
	pid := os.Getpid()
	if target != starlark.None {
		var err error
		if pid, err = pidOf(target); err != nil {
			return nil, err
		}
	}
	st, err := stateOf(th)
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("/proc/%d/", pid)
	uid, gid, err := statusIDs(base + "status")
	if err != nil {
		return nil, err
	}
	um, err := readMap("uid", base+"uid_map")
	if err != nil {
		return nil, err
	}
	gm, err := readMap("gid", base+"gid_map")
	if err != nil {
		return nil, err
	}
	sg, err := os.ReadFile(base + "setgroups")
	if err != nil {
		return nil, nserr.New("read", base+"setgroups", unwrap(err))
	}
	userNS, err := st.tab.Open(base+"ns/user", "user")
	if err != nil {
		return nil, err
	}
	sameNS := nsctx.Same(userNS, st.tab.Initial.Get("user"))
	toList := func(ms []IDMap) *starlark.List {
		vs := make([]starlark.Value, len(ms))
		for i, m := range ms {
			vs[i] = m
		}
		return starlark.NewList(vs)
	}
	return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"pid":        starlark.MakeInt(pid),
		"uid":        starlark.MakeInt(uid),
		"gid":        starlark.MakeInt(gid),
		"inside_uid": starlark.MakeInt(inside(uid, um, sameNS)),
		"inside_gid": starlark.MakeInt(inside(gid, gm, sameNS)),
		"uid_map":    toList(um),
		"gid_map":    toList(gm),
		"setgroups":  starlark.String(strings.TrimSpace(string(sg))),
		"user":       &Namespace{ns: userNS, st: st},
	}), nil
}

// inside maps an id as nsh sees it to the id a process sees in its own
// user namespace, through that namespace's map (whose outside column the
// kernel shows in nsh's terms); 65534 (the overflow id) when unmapped.
func inside(id int, m []IDMap, sameNS bool) int {
	if sameNS {
		return id
	}
	for _, l := range m {
		if uint64(id) >= uint64(l.Outside) && uint64(id) < uint64(l.Outside)+uint64(l.Count) {
			return int(l.Inside) + id - int(l.Outside)
		}
	}
	return 65534
}

// statusIDs returns the effective uid and gid from /proc/PID/status.
func statusIDs(path string) (int, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, nserr.New("read", path, unwrap(err))
	}
	uid, gid := -1, -1
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "Uid:" {
			uid, _ = strconv.Atoi(f[2])
		}
		if len(f) >= 3 && f[0] == "Gid:" {
			gid, _ = strconv.Atoi(f[2])
		}
	}
	if uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("%s: no Uid/Gid lines", path)
	}
	return uid, gid, nil
}
