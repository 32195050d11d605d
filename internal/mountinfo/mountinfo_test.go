package mountinfo

import (
	"os"
	"strings"
	"testing"
)

const sample = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw,discard
50 42 0:40 / /mnt/with\040space\011tab rw master:3 propagate_from:1 - tmpfs my\134src rw,size=1024k
51 27 0:41 / /u ro,nosuid unbindable - overlay overlay rw,lowerdir=/a:/b,upperdir=/c,workdir=/d
52 27 0:42 / /s rw shared:7 master:2 future:9 - fuse.sshfs host:/x rw
`

func TestParse(t *testing.T) {
	es, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 6 {
		t.Fatalf("got %d entries", len(es))
	}
	p := es[0]
	if p.ID != 22 || p.Parent != 27 || p.Major != 0 || p.Minor != 21 || p.Root != "/" || p.Target != "/proc" ||
		p.Options != "rw,relatime" || p.FSType != "proc" || p.Source != "proc" || p.SuperOptions != "rw" || p.Propagation() != "private" {
		t.Errorf("proc entry: %+v", p)
	}
	if es[1].Major != 254 || es[1].Parent != 1 {
		t.Errorf("root entry: %+v", es[1])
	}
	if n := es[2]; n.Root != "/run/netns" || n.Shared != 1 || n.Propagation() != "shared" {
		t.Errorf("netns entry: %+v", n)
	}
	if s := es[3]; s.Target != "/mnt/with space\ttab" || s.Source != `my\src` || s.Master != 3 || s.PropagateFrom != 1 || s.Propagation() != "slave" {
		t.Errorf("escaped slave entry: %+v", s)
	}
	if u := es[4]; !u.Unbindable || u.Propagation() != "unbindable" || u.SuperOptions != "rw,lowerdir=/a:/b,upperdir=/c,workdir=/d" {
		t.Errorf("unbindable entry: %+v", u)
	}
	if s := es[5]; s.Shared != 7 || s.Master != 2 || s.Propagation() != "shared+slave" || s.FSType != "fuse.sshfs" || s.Source != "host:/x" {
		t.Errorf("shared slave entry: %+v", s)
	}
}

func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"",
		"22 27 0:21 / /proc rw,relatime proc proc rw", // no separator
		"x 27 0:21 / /proc rw - proc proc rw",
		"22 27 021 / /proc rw - proc proc rw",
		"22 27 0:21 / /proc rw -",
	} {
		if _, err := ParseLine(line); err == nil {
			t.Errorf("ParseLine(%q) succeeded", line)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:         "plain",
		`a\040b`:        "a b",
		`\134`:          `\`,
		`nl\012`:        "nl\n",
		`short\04`:      `short\04`,
		`not\999octal`:  `not\999octal`,
		`\040\040x\011`: "  x\t",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLive(t *testing.T) {
	f, err := openSelf()
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	es, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	root := false
	for _, e := range es {
		if e.Target == "/" {
			root = true
		}
	}
	if !root {
		t.Errorf("no / in own mountinfo: %+v", es)
	}
}

func openSelf() (*os.File, error) { return os.Open("/proc/self/mountinfo") }
