// Package mountopt turns a mount(8)-style option string ("ro,nosuid,size=10m")
// into what mount(2) takes: MS_* flags and the filesystem's data string.
// Options mount(8) keeps for itself (defaults, noauto, user, _netdev, x-*)
// are dropped, as mount(8) drops them. It also owns the names of the
// propagation types ("shared", "slave", "private", "unbindable") and their
// MS_* flags, for every builtin that takes or shows one.
package mountopt

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Options is a parsed option string.
type Options struct {
	Flags uintptr  // MS_* flags to set
	Clear uintptr  // MS_* flags an option turned off explicitly (rw, suid, ...)
	Data  []string // filesystem options, in order: "size=10m", "mode=755"
	Names []string // the flag options as written, for messages
}

// DataString joins the filesystem options for mount(2).
func (o Options) DataString() string { return strings.Join(o.Data, ",") }

type flagOpt struct {
	set   uintptr
	clear uintptr
}

// flags are the options that are mount flags, not filesystem data.
var flags = map[string]flagOpt{
	"ro":          {set: unix.MS_RDONLY},
	"rw":          {clear: unix.MS_RDONLY},
	"nosuid":      {set: unix.MS_NOSUID},
	"suid":        {clear: unix.MS_NOSUID},
	"nodev":       {set: unix.MS_NODEV},
	"dev":         {clear: unix.MS_NODEV},
	"noexec":      {set: unix.MS_NOEXEC},
	"exec":        {clear: unix.MS_NOEXEC},
	"sync":        {set: unix.MS_SYNCHRONOUS},
	"async":       {clear: unix.MS_SYNCHRONOUS},
	"dirsync":     {set: unix.MS_DIRSYNC},
	"mand":        {set: unix.MS_MANDLOCK},
	"nomand":      {clear: unix.MS_MANDLOCK},
	"noatime":     {set: unix.MS_NOATIME},
	"atime":       {clear: unix.MS_NOATIME},
	"nodiratime":  {set: unix.MS_NODIRATIME},
	"diratime":    {clear: unix.MS_NODIRATIME},
	"relatime":    {set: unix.MS_RELATIME},
	"norelatime":  {clear: unix.MS_RELATIME},
	"strictatime": {set: unix.MS_STRICTATIME},
	"lazytime":    {set: unix.MS_LAZYTIME},
	"nolazytime":  {clear: unix.MS_LAZYTIME},
	"nosymfollow": {set: unix.MS_NOSYMFOLLOW},
	"silent":      {set: unix.MS_SILENT},
	"loud":        {clear: unix.MS_SILENT},
	"remount":     {set: unix.MS_REMOUNT},
}

// userspace are options mount(8) interprets itself and never passes on.
var userspace = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "_netdev": true, "nofail": true,
}

// propagations are the propagation types by their mount(8) names
// (--make-shared, ...), in the order messages list them.
var propagations = []struct {
	name string
	flag uintptr
}{
	{"shared", unix.MS_SHARED},
	{"slave", unix.MS_SLAVE},
	{"private", unix.MS_PRIVATE},
	{"unbindable", unix.MS_UNBINDABLE},
}

// Unchanged is the propagation name with which unshare() and clone() leave
// a new mount namespace's mounts as they were copied.
const Unchanged = "unchanged"

// Propagation returns the MS_* flag of a propagation name: "shared",
// "slave", "private" or "unbindable"; with unchanged, also Unchanged,
// whose flag is 0. An unknown name is an error that lists the valid ones.
func Propagation(name string, unchanged bool) (uintptr, error) {
	var names []string
	for _, p := range propagations {
		if p.name == name {
			return p.flag, nil
		}
		names = append(names, p.name)
	}
	if unchanged {
		if name == Unchanged {
			return 0, nil
		}
		names = append(names, Unchanged)
	}
	return 0, fmt.Errorf("unknown propagation %q (%s)", name, strings.Join(names, ", "))
}

// PropagationName names propagation flags as mount(8) would: "shared",
// "slave", "shared+slave" (a slave that also shares), "unbindable" (which
// wins over the others), or "private" when none of them is set.
func PropagationName(flags uintptr) string {
	switch {
	case flags&unix.MS_UNBINDABLE != 0:
		flags = unix.MS_UNBINDABLE
	case flags&(unix.MS_SHARED|unix.MS_SLAVE) != 0:
		flags &= unix.MS_SHARED | unix.MS_SLAVE
	default:
		flags = unix.MS_PRIVATE
	}
	var names []string
	for _, p := range propagations {
		if flags&p.flag != 0 {
			names = append(names, p.name)
		}
	}
	return strings.Join(names, "+")
}

// propagationOpt reports whether opt is a propagation name, possibly with
// mount(8)'s r prefix for the recursive form ("rprivate"), and returns the
// name without it.
func propagationOpt(opt string) (string, bool) {
	name := strings.TrimPrefix(opt, "r")
	for _, p := range propagations {
		if p.name == name {
			return p.name, true
		}
	}
	return "", false
}

// Parse parses an option string. Options are separated by commas; a comma
// inside a value can be escaped with a backslash or the value quoted
// ("lowerdir=\"a,b\""), as mount(8) allows; both reach the kernel as
// "\,", which overlay reads as a comma in a path. "bind" and "rbind" are
// refused (use bind=/recursive=), as are the propagation names (use
// propagation=).
func Parse(s string) (Options, error) {
	var o Options
	opts, err := split(s)
	if err != nil {
		return o, err
	}
	for _, opt := range opts {
		if opt == "" {
			continue
		}
		if f, ok := flags[opt]; ok {
			o.Flags = o.Flags&^f.clear | f.set
			o.Clear = o.Clear&^f.set | f.clear
			o.Names = append(o.Names, opt)
			continue
		}
		if name, ok := propagationOpt(opt); ok {
			return o, fmt.Errorf("option %q: use propagation=%q (and recursive=True) instead", opt, name)
		}
		switch {
		case userspace[opt] || strings.HasPrefix(opt, "x-") || strings.HasPrefix(opt, "comment="):
			continue
		case opt == "bind" || opt == "rbind":
			return o, fmt.Errorf("option %q: use bind=True (and recursive=True) instead", opt)
		case strings.HasPrefix(opt, "="):
			return o, fmt.Errorf("option %q has no name", opt)
		}
		o.Data = append(o.Data, opt)
	}
	return o, nil
}

// split cuts s at commas that are neither escaped nor inside double
// quotes. Quotes are removed, and a comma inside them is escaped as the
// kernel reads one in overlay's paths ("\,"): mount(2) gets the options
// joined with commas, so a bare one would cut the option in two there.
// Backslash escapes are kept for the kernel. An unterminated quote is an
// error, as in mount(8).
func split(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
		case c == ',' && quoted:
			cur.WriteString(`\,`)
		case c == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if quoted {
		return nil, fmt.Errorf("options %q have an unterminated quote", s)
	}
	return append(out, cur.String()), nil
}

// Value returns the value of key=value among the data options.
func (o Options) Value(key string) (string, bool) {
	for _, d := range o.Data {
		if k, v, ok := strings.Cut(d, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
