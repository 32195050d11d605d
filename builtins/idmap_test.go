package builtins

import (
	"nsh.dev/nsh/internal/startest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/spawn"
)

func TestParseIDMaps(t *testing.T) {
	v := starlark.NewList([]starlark.Value{
		IDMap{Kind: "uid", Extent: idmap.Extent{Inside: 0, Outside: 1000, Count: 1}},
		starlark.Tuple{starlark.MakeInt(1), starlark.MakeInt(100000), starlark.MakeInt(65536)},
		starlark.Tuple{starlark.MakeInt(70000), starlark.MakeInt(5)},
	})
	maps, err := parseIDMaps("uid", v)
	if err != nil || len(maps) != 3 || maps[1].Count != 65536 || maps[2].Count != 1 {
		t.Fatalf("got %v, %v", maps, err)
	}
	if _, err := parseIDMaps("gid", v); err == nil || !strings.Contains(err.Error(), "where a gidmap is expected") {
		t.Errorf("kind mismatch: %v", err)
	}
	if _, err := makeIDMap("uid", -1, 0, 1); err == nil {
		t.Error("negative id accepted")
	}
	if _, err := makeIDMap("uid", 0, 0, 0); err == nil {
		t.Error("count 0 accepted")
	}
}

// The parent's half of the handshake on a real child in a new user
// namespace: maps written once, a second write refused before the syscall.
func TestWriteIDMaps(t *testing.T) {
	startest.NeedsRealRoot(t)
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot create a user namespace: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	uids := idmap.Map{{Inside: 0, Outside: 1000, Count: 1}, {Inside: 1, Outside: 100000, Count: 1000}}
	gids := idmap.Map{{Inside: 0, Outside: 1000, Count: 1}}
	if _, err := (*spawn.Spawner)(nil).WriteIDMaps(pid, uids, gids, "deny"); err != nil {
		t.Fatal(err)
	}
	got, err := spawn.ReadIDMap("/proc/" + itoa(pid) + "/uid_map")
	if err != nil || len(got) != 2 || got[1] != uids[1] {
		t.Errorf("uid_map read back %v, %v", got, err)
	}
	if sg, _ := os.ReadFile("/proc/" + itoa(pid) + "/setgroups"); strings.TrimSpace(string(sg)) != "deny" {
		t.Errorf("setgroups %q", sg)
	}
	_, err = (*spawn.Spawner)(nil).WriteIDMaps(pid, uids, nil, "")
	if err == nil || !strings.Contains(err.Error(), "already written") {
		t.Errorf("second write: %v", err)
	}
}

func itoa(i int) string { return strings.TrimSpace(starlark.MakeInt(i).String()) }
