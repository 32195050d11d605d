package labs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/reaper"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "chain", "lab-1", "a.b_c", "Z9", strings.Repeat("x", 64)} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "_a", "a/b", "a b", "..", "a\x00", "é", strings.Repeat("x", 65)} {
		if err := CheckName(bad); err == nil || !strings.Contains(err.Error(), "invalid lab name") {
			t.Errorf("CheckName(%q) = %v, want a refusal", bad, err)
		}
	}
}

// A journal replays to its live records: set, replaced, withdrawn; a
// line cut short by a crash is skipped.
func TestJournalRead(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir, func(*nsctx.NS) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := j.NewID(), j.NewID(), j.NewID()
	j.Set(a, "a", reaper.Unlink(nil, "/x", 1))
	j.Set(b, "b", reaper.Rmdir(nil, "/y"))
	j.Set(a, "a", reaper.Unlink(nil, "/x", 2)) // replaced once made
	j.Set(c, "c", reaper.Rmdir(nil, "/z"))
	j.Del(b)
	j.Close()
	f, _ := os.OpenFile(filepath.Join(dir, "journal"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"id":9,"what":"cut sh`)
	f.Close()
	recs, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].What != "a" || recs[0].Steps[0].Arg != 2 || recs[1].What != "c" {
		t.Errorf("live records %+v, want a (inode 2) and c", recs)
	}
}

func TestNodeKinds(t *testing.T) {
	for _, c := range []struct {
		n    Node
		want string
	}{
		{Node{Name: "a"}, "net"},
		{Node{Name: "a", More: map[string]string{"ipc": "/x", "uts": "/y"}}, "net,uts,ipc"},
		{Node{Name: "a", More: map[string]string{"mnt": "/m"}, Init: &NodeInit{Kinds: []string{"pid"}}}, "net,mnt,pid"},
		{Node{Name: "a", Init: &NodeInit{Kinds: []string{"pid", "mnt", "uts"}}}, "net,uts,mnt,pid"},
	} {
		if got := strings.Join(c.n.Kinds(), ","); got != c.want {
			t.Errorf("%+v: kinds %s, want %s", c.n, got, c.want)
		}
	}
}

// OpenHead reads all of lab.json but the nodes.
func TestOpenHead(t *testing.T) {
	dir := t.TempDir()
	want := Lab{Version: Version, Name: "h", Recipe: "/r.star", Args: []string{"1"}, State: Up, Pid: 7, PidStart: 8,
		Nodes:   []Node{{Name: "n1", Net: "/run/netns/n1", More: map[string]string{"uts": "/x"}}, {Name: "n2", Net: "/run/netns/n2"}},
		Daemons: []Daemon{{Pid: 9, Start: 10, Argv: []string{"sleep", "1"}}}, Keeper: &Keeper{Pid: 11, Start: 12}}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lab.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	full, err := openDir("h", dir, true)
	if err != nil {
		t.Fatal(err)
	}
	head, err := openDir("h", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Nodes) != 2 || head.Nodes != nil {
		t.Fatalf("nodes: full %v, head %v; want 2 and none", full.Nodes, head.Nodes)
	}
	full.Nodes = nil
	if !reflect.DeepEqual(full, head) {
		t.Errorf("head %+v, want %+v without nodes", head, full)
	}
}
