package builtins

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/idmap"
)

// Issue 15 item 1: uid=, gid= and groups= are parsed and checked against
// the inside column of the maps.
func TestItem1IdentityCheck(t *testing.T) {
	i := starlark.MakeInt
	id, err := parseIdentity(i(1000), starlark.None, starlark.NewList([]starlark.Value{i(5), i(6)}))
	if err != nil || id.uid != 1000 || id.gid != -1 || !id.groupsGiven || len(id.groups) != 2 {
		t.Fatalf("parseIdentity: %+v, %v", id, err)
	}
	if id, err := parseIdentity(starlark.None, starlark.None, starlark.None); id != nil || err != nil {
		t.Errorf("nothing given: %+v, %v", id, err)
	}
	for _, bad := range []starlark.Value{i(-1), i(idmap.MaxID), starlark.String("0")} {
		if _, err := parseIdentity(bad, starlark.None, starlark.None); err == nil {
			t.Errorf("uid=%s accepted", bad)
		}
	}
	uids := idmap.Map{{Inside: 0, Outside: 100000, Count: 65536}}
	gids := idmap.Map{{Inside: 0, Outside: 100000, Count: 10}}
	if err := id.check("the new user namespace", uids, gids, "allow"); err != nil {
		t.Errorf("mapped ids refused: %v", err)
	}
	if err := id.check("the new user namespace", uids, gids, "deny"); err == nil || !strings.Contains(err.Error(), `setgroups is "deny"`) {
		t.Errorf("groups= with setgroups deny: %v", err)
	}
	id.uid = 65536
	err = id.check("the new user namespace", uids, gids, "")
	if err == nil || err.Error() != "uid=65536 is not mapped in the new user namespace, whose uid_map is [uidmap(0, 100000, 65536)]; pick an id of its inside column" {
		t.Errorf("unmapped uid: %v", err)
	}
	id.uid, id.groups = 0, []int64{5, 10}
	if err := id.check("x", uids, gids, ""); err == nil || !strings.Contains(err.Error(), "group 10 of groups= is not mapped in x") {
		t.Errorf("unmapped group: %v", err)
	}
	if err := id.check("x", uids, nil, ""); err == nil || !strings.Contains(err.Error(), "which has no gid_map") {
		t.Errorf("no gid_map: %v", err)
	}
}
