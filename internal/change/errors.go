package change

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
)

// Error is a change the kernel refused: the equivalent command line that
// failed, and why. It unwraps to what the record's Apply returned, so
// errors.Is(err, unix.EEXIST) and errors.As(err, **nserr.Error) still work.
type Error struct {
	Command string // e.g. "ip -n red addr add 10.0.0.1/24 dev a"
	Err     error  // as Apply returned it
	msg     string
}

// Error renders "COMMAND: ERRNO: words[: what the builtin found] (the
// usual fix)", e.g. `ip -n red link add name a up type veth peer name b:
// EEXIST: file exists: a link named "a" already exists in netns red`.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the error of Apply.
func (e *Error) Unwrap() error { return e.Err }

// failed is the error Do returns when r could not be made: err, led by
// the equivalent command that failed, its errno in words, and, when nsh
// runs in a user namespace and lacks the privilege r needs, what needs it
// over which namespace and how to do without. An error that names its
// command already (the mount(8) call, or the step of it, that failed) is
// not led by it again.
func failed(r Record, err error) error {
	var done *Error
	if errors.As(err, &done) {
		return err
	}
	hint, hinted := permHint(r, err)
	ne, isNS := err.(*nserr.Error)
	cmd := failedCommand(r)
	if cmd == "" || namesCommand(r, err) {
		if hinted && isNS {
			c := *ne
			c.Hint = hint
			return &c
		}
		return err
	}
	var why string
	switch {
	case !isNS:
		why = err.Error()
		if hinted {
			why += " (" + hint + ")"
		}
	default:
		if !hinted {
			hint = ne.Hint
		}
		switch {
		case ne.Msg != "":
			why = nserr.Words(ne.Err) + ": " + ne.Msg
		case sameOp(ne.Op, cmd):
			// "link set up" on `"a"` is what the command says.
			why = nserr.Words(ne.Err)
		default:
			// Another step of the change: a look-up, a file it wrote.
			why = ne.Op
			if ne.Obj != "" {
				why += " " + ne.Obj
			}
			why += ": " + nserr.Words(ne.Err)
		}
		if hint != "" {
			why += " (" + hint + ")"
		}
	}
	if ns, ok := netnsOf(r); ok && ns.Name == "" && !ns.Host() {
		// nsenter --net=/proc/PID/fd/N: say which namespace that is,
		// unless the message does.
		if l := ns.label(); !strings.Contains(why, l) {
			cmd += "  # " + l
		}
	}
	return &Error{Command: cmd, Err: err, msg: cmd + ": " + why}
}

// failedCommand is the command of r that failed: the mount(8) line of a
// mount (after its mkdir -p), else the first; none for an Aside record.
func failedCommand(r Record) string {
	if r.effect().Aside {
		// Notes of running the script (a process started, a namespace
		// held by nsh): their errors name the step that failed.
		return ""
	}
	cmds := r.Commands()
	if len(cmds) == 0 {
		return ""
	}
	if _, ok := r.(*Mount); ok {
		return cmds[len(cmds)-1]
	}
	return cmds[0]
}

// namesCommand reports whether err, from r's Apply, names the command that
// failed already: mounts' errors name the mount(8) or umount(8) call, or
// the mkdir (or file create) of mkdir=True, that the kernel refused.
func namesCommand(r Record, err error) bool {
	switch r.(type) {
	case *Mount, *Umount:
		s := err.Error()
		for _, p := range []string{"mount ", "umount ", "mkdir ", "create "} {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
	}
	return false
}

// sameOp reports whether op (nserr's "link set up", "addr add",
// "sethostname") says what cmd (`ip -n red link set dev a up`, `hostname
// x`) does: each of its words is one of cmd's.
func sameOp(op, cmd string) bool {
	if op == "" {
		return false
	}
	words := map[string]bool{}
	for _, w := range strings.Fields(cmd) {
		words[w] = true
	}
	for _, w := range strings.Fields(op) {
		if !words[w] && !words[strings.TrimPrefix(w, "set")] {
			return false
		}
	}
	return true
}

// netnsOf returns the network namespace r acts in, for the records that
// have one.
func netnsOf(r Record) (Netns, bool) {
	switch r := r.(type) {
	case *LinkAdd:
		return r.NS, true
	case *LinkDel:
		return r.NS, true
	case *LinkSet:
		return r.NS, true
	case *Addr:
		return r.NS, true
	case *Route:
		return r.NS, true
	case *Qdisc:
		return r.NS, true
	case *Sysctl:
		return r.NS, true
	}
	return Netns{}, false
}

// label names n in a message: "net:h1" (its Label), "netns red",
// "net:[4026532200]".
func (n Netns) label() string {
	if n.Label != "" {
		return "net:" + n.Label
	}
	if n.Name != "" {
		return "netns " + n.Name
	}
	var st unix.Stat_t
	if n.Host() {
		if unix.Stat("/proc/self/ns/net", &st) != nil {
			return "nsh's own network namespace"
		}
	} else if unix.Fstat(n.Fd, &st) != nil {
		return n.path()
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

// open opens n for an ioctl; the caller closes the descriptor.
func (n Netns) open() (int, error) {
	p := "/proc/self/ns/net"
	switch {
	case n.Name != "":
		p = "/run/netns/" + n.Name
	case !n.Host():
		p = n.path()
	}
	return unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

// permHint returns what to say instead of nserr's hint when err is EPERM
// or EACCES and nsh runs in a user namespace (rootless): the privilege r
// needs, over which namespace, and the fix. It returns false when err is
// another one, nsh is not in a user namespace, or the namespace r acts in
// is one nsh's user namespace owns (the refusal is then for another
// reason than privilege).
func permHint(r Record, err error) (string, bool) {
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) || !nserr.InUserNS() {
		return "", false
	}
	const owned = "owned by a user namespace outside rootless nsh's: run nsh as root, or "
	var what, kind, open string
	switch r := r.(type) {
	case *NetnsAdd:
		return fmt.Sprintf("naming a network namespace mounts it on /run/netns/%s, which needs CAP_SYS_ADMIN over the mount namespace and to write in /run; nsh runs rootless: run nsh as root, or use an unnamed one: unshare(\"net\")", r.Name), true
	case *UTSName:
		what, kind, open = "setting the hostname", "uts", r.UTS
		if r.Domain {
			what = "setting the domain name"
		}
		if open == "" {
			open = "/proc/self/ns/uts"
		}
	case *Mount, *Umount:
		ns := MountNS{}
		if m, ok := r.(*Mount); ok {
			ns, what = m.NS, "mounting"
		} else {
			ns, what = r.(*Umount).NS, "unmounting"
		}
		kind, open = "mnt", ns.Path
		if open == "" {
			open = "/proc/self/ns/mnt"
		}
		if !generic(err) {
			return "", false // mount's own hint (a pseudo filesystem) says more
		}
	default:
		ns, ok := netnsOf(r)
		if !ok {
			return "", false
		}
		// The change needs privilege over each namespace it touches:
		// a veth's peer's, a moved link's destination.
		nss := []Netns{ns}
		switch r := r.(type) {
		case *LinkAdd:
			what = "creating a link"
			nss = append(nss, r.PeerNS)
			if r.VXLAN != nil {
				nss = append(nss, r.VXLAN.Under)
			}
		case *LinkDel:
			what = "deleting a link"
		case *LinkSet:
			what = "changing a link"
			if r.MoveTo != nil {
				what = "moving a link"
				nss = append(nss, *r.MoveTo)
			}
		case *Addr:
			what = "adding an address"
			if r.Del {
				what = "removing an address"
			}
		case *Route:
			what = "adding a route"
			if r.Del {
				what = "removing a route"
			}
		case *Qdisc:
			what = "changing a link's qdisc"
		case *Sysctl:
			if !strings.HasPrefix(strings.ReplaceAll(r.Key, "/", "."), "net.") {
				return "", false
			}
			what = "writing " + r.Key
		}
		cap := "CAP_NET_ADMIN"
		if _, ok := r.(*Sysctl); ok {
			cap = "root"
		}
		for _, ns := range nss {
			if netnsForeign(ns) {
				return fmt.Sprintf("%s needs %s over %s, %smake the network namespace in the run first: unshare(\"net\")",
					what, cap, ns.label(), owned), true
			}
		}
		return "", false
	}
	fd, err := unix.Open(open, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	if f, ok := foreign(fd); !ok || !f {
		return "", false
	}
	var st unix.Stat_t
	label := kind + " namespace"
	if unix.Fstat(fd, &st) == nil {
		label = fmt.Sprintf("%s:[%d]", kind, st.Ino)
	}
	return fmt.Sprintf("%s needs CAP_SYS_ADMIN over %s, %smake the %s namespace in the run first: unshare(%q)",
		what, label, owned, kind, kind), true
}

// netnsForeign reports whether n is known to belong to a user namespace
// outside nsh's.
func netnsForeign(n Netns) bool {
	fd, err := n.open()
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	f, ok := foreign(fd)
	return ok && f
}

// generic reports whether err carries no hint, or nserr's general one
// for a refusal in a user namespace.
func generic(err error) bool {
	var ne *nserr.Error
	return !errors.As(err, &ne) || ne.Hint == "" || ne.Hint == nserr.RootlessHint
}

// foreign reports whether the namespace open at fd belongs to a user
// namespace that is neither nsh's nor below it; ok is false when that
// cannot be told.
func foreign(fd int) (f, ok bool) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &self); err != nil {
		return false, false
	}
	u, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	for {
		if errors.Is(err, unix.EPERM) {
			return true, true // its owner is outside nsh's user namespace
		}
		if err != nil {
			return false, false
		}
		var st unix.Stat_t
		serr := unix.Fstat(u, &st)
		if serr == nil && st.Dev == self.Dev && st.Ino == self.Ino {
			unix.Close(u)
			return false, true
		}
		p, perr := unix.IoctlRetInt(u, unix.NS_GET_PARENT)
		unix.Close(u)
		if serr != nil {
			return false, false
		}
		u, err = p, perr
	}
}

// Refused is the error of a change r that a builtin does not attempt
// because what it found makes it fail (a link of the new name is there
// already): err, led by r's command, as Do's error would be.
func Refused(r Record, err error) error { return failed(r, err) }
