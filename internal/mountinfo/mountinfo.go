// Package mountinfo parses /proc/PID/mountinfo, the kernel's description of
// a mount namespace as seen from one process's root (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)         (6)       (7)      (8) (9)  (10)      (11)
//
// Fields (4), (5), (10) and (11) escape space, tab, newline and backslash as
// octal (\040); Parse undoes that. Field (7) is zero or more optional fields
// ended by the "-" separator.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/mountopt"
)

// Entry is one line of mountinfo.
type Entry struct {
	ID, Parent    int
	Major, Minor  int
	Root          string // the directory of the filesystem mounted here
	Target        string // mount point, relative to the reading process's root
	Options       string // per-mount options, e.g. "rw,nosuid,relatime"
	Shared        int    // peer group id of a shared mount, 0 if not shared
	Master        int    // peer group this mount receives from (a slave), 0 if none
	PropagateFrom int    // nearest dominant peer group reachable from this root, 0 if none
	Unbindable    bool
	FSType        string // "ext4", "fuse.sshfs" (type.subtype)
	Source        string // "/dev/vda", "tmpfs", "none"
	SuperOptions  string // per-superblock options
}

// Propagation names the mount's propagation as mount(8) would:
// "shared", "slave", "shared+slave" (a slave that also shares), "unbindable"
// or "private".
func (e *Entry) Propagation() string {
	var flags uintptr
	if e.Shared != 0 {
		flags |= unix.MS_SHARED
	}
	if e.Master != 0 {
		flags |= unix.MS_SLAVE
	}
	if e.Unbindable {
		flags |= unix.MS_UNBINDABLE
	}
	return mountopt.PropagationName(flags)
}

// Parse reads a whole mountinfo file.
func Parse(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if sc.Text() == "" {
			continue
		}
		e, err := ParseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// ParseLine parses one mountinfo line.
func ParseLine(line string) (Entry, error) {
	var e Entry
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+3 > len(f) {
		return e, fmt.Errorf("malformed: %q", line)
	}
	var err error
	if e.ID, err = strconv.Atoi(f[0]); err != nil {
		return e, fmt.Errorf("bad mount id %q", f[0])
	}
	if e.Parent, err = strconv.Atoi(f[1]); err != nil {
		return e, fmt.Errorf("bad parent id %q", f[1])
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return e, fmt.Errorf("bad device %q", f[2])
	}
	if e.Major, err = strconv.Atoi(maj); err != nil {
		return e, fmt.Errorf("bad device %q", f[2])
	}
	if e.Minor, err = strconv.Atoi(min); err != nil {
		return e, fmt.Errorf("bad device %q", f[2])
	}
	e.Root = Unescape(f[3])
	e.Target = Unescape(f[4])
	e.Options = f[5]
	for _, opt := range f[6:sep] {
		k, v, _ := strings.Cut(opt, ":")
		id, _ := strconv.Atoi(v)
		switch k {
		case "shared":
			e.Shared = id
		case "master":
			e.Master = id
		case "propagate_from":
			e.PropagateFrom = id
		case "unbindable":
			e.Unbindable = true
		}
		// Unknown optional fields are skipped, as proc(5) asks.
	}
	e.FSType = Unescape(f[sep+1])
	e.Source = Unescape(f[sep+2])
	if sep+3 < len(f) {
		e.SuperOptions = Unescape(strings.Join(f[sep+3:], " "))
	}
	return e, nil
}

// Unescape undoes the kernel's octal escapes (\040 for space, \011 tab,
// \012 newline, \134 backslash). Anything else is kept as is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// IDOf returns the ID of the mount path is on (statx STATX_MNT_ID, the
// ID of field (1)), not following a final symlink.
func IDOf(path string) (uint64, error) {
	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &sx); err != nil {
		return 0, err
	}
	return sx.Mnt_id, nil
}
