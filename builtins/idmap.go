package builtins

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
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

// IDMap is one line of a uid_map or gid_map, the Starlark value of
// uidmap() and gidmap(): an idmap.Extent and its kind.
type IDMap struct {
	Kind string // "uid" or "gid"
	idmap.Extent
}

var (
	_ starlark.HasAttrs   = IDMap{}
	_ starlark.Comparable = IDMap{}
)

// String renders the map line as the kernel file shows it.
func (m IDMap) String() string {
	return m.Extent.Format(m.Kind)
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

func makeIDMap(kind string, inside, outside, count int64) (IDMap, error) {
	switch {
	case inside < 0 || outside < 0:
		return IDMap{}, fmt.Errorf("%smap(%d, %d, %d): ids cannot be negative", kind, inside, outside, count)
	case count < 1:
		return IDMap{}, fmt.Errorf("%smap(%d, %d, %d): count must be at least 1", kind, inside, outside, count)
	case inside > idmap.MaxID-count || outside > idmap.MaxID-count: // inside+count could overflow
		return IDMap{}, fmt.Errorf("%smap(%d, %d, %d): range goes past the largest id %d", kind, inside, outside, count, idmap.MaxID-1)
	}
	return IDMap{Kind: kind, Extent: idmap.Extent{Inside: uint32(inside), Outside: uint32(outside), Count: uint32(count)}}, nil
}

// parseIDMaps accepts a list of IDMap values or (inside, outside[, count])
// tuples for the given kind; nil when v is None.
func parseIDMaps(kind string, v starlark.Value) (idmap.Map, error) {
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
	var out idmap.Map
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		switch x := x.(type) {
		case IDMap:
			if x.Kind != kind {
				return nil, fmt.Errorf("%s given where a %smap is expected", x, kind)
			}
			out = append(out, x.Extent)
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
			out = append(out, m.Extent)
		default:
			return nil, fmt.Errorf("%smap entries must be %smap() values or tuples, not %s", kind, kind, x.Type())
		}
	}
	return out, nil
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
	// Refused before the change, a map is not led by the write it
	// refuses (a map too long for the kernel is too long for a message).
	if err := spawn.CheckIDMaps(pid, uids, gids); err != nil {
		return nil, err
	}
	rec := &change.IDMaps{Pid: pid, UID: uids, GID: gids}
	rec.What = fmt.Sprintf("id maps of process %d", pid)
	rec.Apply = func() error {
		how, err := st.spawner().WriteIDMaps(pid, uids, gids, setgroups)
		rec.Setgroups, rec.Helpers, rec.Parent = how.Setgroups, how.Helpers, how.Parent
		return err
	}
	if _, err := st.ex.Do(th, rec); err != nil {
		return nil, err
	}
	return starlark.None, nil
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
	um, err := spawn.ReadIDMap(base + "uid_map")
	if err != nil {
		return nil, err
	}
	gm, err := spawn.ReadIDMap(base + "gid_map")
	if err != nil {
		return nil, err
	}
	sg, err := readSetgroups(base)
	if err != nil {
		return nil, err
	}
	userNS, err := st.tab.Open(base+"ns/user", "user")
	if err != nil {
		return nil, err
	}
	sameNS := nsctx.Same(userNS, st.tab.Initial.Get("user"))
	toList := func(kind string, ms idmap.Map) *starlark.List {
		vs := make([]starlark.Value, len(ms))
		for i, m := range ms {
			vs[i] = IDMap{Kind: kind, Extent: m}
		}
		return starlark.NewList(vs)
	}
	return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"pid":        starlark.MakeInt(pid),
		"uid":        starlark.MakeInt(uid),
		"gid":        starlark.MakeInt(gid),
		"inside_uid": starlark.MakeInt(inside(uid, um, sameNS)),
		"inside_gid": starlark.MakeInt(inside(gid, gm, sameNS)),
		"uid_map":    toList("uid", um),
		"gid_map":    toList("gid", gm),
		"setgroups":  starlark.String(sg),
		"user":       &Namespace{ns: userNS, st: st},
	}), nil
}

// inside maps an id as nsh sees it to the id a process sees in its own
// user namespace, through that namespace's map (whose outside column the
// kernel shows in nsh's terms); 65534 (the overflow id) when unmapped.
func inside(id int, m idmap.Map, sameNS bool) int {
	if sameNS {
		return id
	}
	if in, ok := m.ToInside(id); ok {
		return in
	}
	return 65534
}

// statusIDs returns the effective uid and gid from /proc/PID/status.
func statusIDs(path string) (int, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, nserr.New("read", path, err)
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
