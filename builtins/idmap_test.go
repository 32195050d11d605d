package builtins

import (
	"nsh.dev/nsh/internal/startest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/spawn"
)

func TestCheckIDMaps(t *testing.T) {
	m := func(in, out, n uint32) IDMap { return IDMap{Kind: "uid", Inside: in, Outside: out, Count: n} }
	all := [][2]uint64{{0, maxID}}
	for _, c := range []struct {
		maps []IDMap
		own  [][2]uint64
		want string
	}{
		{[]IDMap{m(0, 1000, 1), m(1, 100000, 65536)}, all, ""},
		{[]IDMap{m(0, 1000, 10), m(5, 2000, 10)}, all, "overlap inside"},
		{[]IDMap{m(0, 1000, 10), m(100, 1005, 10)}, all, "overlap outside"},
		{nil, all, "empty uid map"},
		{[]IDMap{m(0, 0, 1)}, [][2]uint64{{0, 1}}, ""},
		{[]IDMap{m(0, 1, 1)}, [][2]uint64{{0, 1}}, "do not exist in nsh's user namespace"},
		{[]IDMap{m(0, 0, 3)}, [][2]uint64{{0, 1}, {1, 2}}, ""},
		{[]IDMap{m(0, 0, 4)}, [][2]uint64{{0, 1}, {1, 2}}, "do not exist"},
	} {
		err := checkIDMaps("uid", c.maps, c.own)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("checkIDMaps(%v, %v) = %v, want %q", c.maps, c.own, err, c.want)
		}
	}
	many := make([]IDMap, maxMapLines+1)
	for i := range many {
		many[i] = m(uint32(i), uint32(i), 1)
	}
	if err := checkIDMaps("uid", many, all); err == nil || !strings.Contains(err.Error(), "at most 340") {
		t.Errorf("341 lines: %v", err)
	}
}

func TestParseIDMaps(t *testing.T) {
	v := starlark.NewList([]starlark.Value{
		IDMap{Kind: "uid", Inside: 0, Outside: 1000, Count: 1},
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
	uids := []IDMap{{Kind: "uid", Inside: 0, Outside: 1000, Count: 1}, {Kind: "uid", Inside: 1, Outside: 100000, Count: 1000}}
	gids := []IDMap{{Kind: "gid", Inside: 0, Outside: 1000, Count: 1}}
	if err := (*state)(nil).writeIDMaps(pid, uids, gids, "deny", false); err != nil {
		t.Fatal(err)
	}
	got, err := readMap("uid", "/proc/"+itoa(pid)+"/uid_map")
	if err != nil || len(got) != 2 || got[1] != uids[1] {
		t.Errorf("uid_map read back %v, %v", got, err)
	}
	if sg, _ := os.ReadFile("/proc/" + itoa(pid) + "/setgroups"); strings.TrimSpace(string(sg)) != "deny" {
		t.Errorf("setgroups %q", sg)
	}
	err = (*state)(nil).writeIDMaps(pid, uids, nil, "", false)
	if err == nil || !strings.Contains(err.Error(), "already written") {
		t.Errorf("second write: %v", err)
	}
}

func itoa(i int) string { return strings.TrimSpace(starlark.MakeInt(i).String()) }

// Issue 15 item 2: a map is refused before anything is written when it
// does not fit the kernel's one write of less than a page, and the message
// names it by its first lines only.
func TestItem2MapSizeLimit(t *testing.T) {
	all := [][2]uint64{{0, maxID}}
	lines := func(n int, base uint32) []IDMap {
		ms := make([]IDMap, n)
		for i := range ms {
			ms[i] = IDMap{Kind: "uid", Inside: uint32(i), Outside: base + uint32(i), Count: 1}
		}
		return ms
	}
	if err := checkIDMaps("uid", lines(320, 100000), all); err != nil {
		t.Errorf("320 lines (4050 bytes): %v", err)
	}
	if err := checkIDMaps("uid", lines(340, 1000), all); err != nil {
		t.Errorf("340 short lines: %v", err)
	}
	// The largest map under a page passes; one byte more does not.
	page := os.Getpagesize()
	for n := 1; n <= maxMapLines; n++ {
		ms := lines(n, 100000)
		size := len(spawn.FormatMap(toSpawn(ms)))
		err := checkIDMaps("uid", ms, all)
		if (size < page) != (err == nil) {
			t.Fatalf("%d lines, %d bytes: %v", n, size, err)
		}
	}
	for _, n := range []int{330, 340, 341} {
		err := checkIDMaps("uid", lines(n, 100000), all)
		if err == nil {
			t.Fatalf("%d lines accepted", n)
		}
		msg := err.Error()
		if len(msg) > 400 || !strings.Contains(msg, "uidmap(2, 100002, 1), … ") {
			t.Errorf("%d lines: message of %d bytes: %s", n, len(msg), msg)
		}
	}
	if s := spawn.Summary(spawn.FormatMap(toSpawn(lines(340, 100000)))); s != "0 100000 1\n1 100001 1\n2 100002 1\n… 337 more" {
		t.Errorf("Summary: %q", s)
	}
}
