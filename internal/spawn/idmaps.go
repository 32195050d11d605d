package spawn

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/rootless"
)

// WriteIDMaps writes the maps of process pid's user namespace after
// checking the kernel's rules; setgroups is "", "deny" or "allow"; a nil
// map is left unwritten. A writer with CAP_SETUID/CAP_SETGID (root, or
// rootless nsh in its own user namespace) writes any ids that exist in
// nsh's user namespace itself. One without may write only its own id in
// one line, gid_map only after "deny" to setgroups; other ranges go
// through newuidmap/newgidmap and the caller's /etc/subuid and /etc/subgid
// ranges.
//
// When the parent of pid's user namespace is not nsh's own (a user
// namespace the context moved into), the kernel wants the writer there: a
// helper process joins it and writes (s must then not be nil).
//
// Start writes the maps of a new user namespace the same way, with
// Config.UIDMap and GIDMap, a map not given then mapping the writer's own
// id to root.
//
// It reports how it wrote them, for the equivalent commands.
func (s *Spawner) WriteIDMaps(pid int, uid, gid idmap.Map, setgroups string) (Written, error) {
	var w Written
	err := s.writeIDMaps(pid, uid, gid, setgroups, false, &w)
	return w, err
}

// Written says how WriteIDMaps wrote the maps.
type Written struct {
	// Setgroups is what was written to setgroups ("" nothing): the
	// one asked for, or "deny" where the kernel wants it first.
	Setgroups string
	// Helpers: through newuidmap/newgidmap.
	Helpers bool
	// Parent: from a helper process in the parent user namespace.
	Parent bool
}

// writeIDMaps is WriteIDMaps; rootByDefault maps the writer's own id to
// root for a map not given. How is filled in when not nil.
func (s *Spawner) writeIDMaps(pid int, uids, gids idmap.Map, setgroups string, rootByDefault bool, how *Written) error {
	if how == nil {
		how = &Written{}
	}
	how.Setgroups = setgroups
	parent, err := parentUserNS(pid)
	if err != nil {
		return err
	}
	if parent != nil {
		defer parent.Close()
	}
	if err := checkIDMaps(pid, parent == nil, uids, gids); err != nil {
		return err
	}
	if parent != nil {
		if s == nil {
			return fmt.Errorf("process %d's user namespace is not a child of nsh's", pid)
		}
		u, g := uids, gids
		if rootByDefault && u == nil {
			u = idmap.Map{}
		}
		if rootByDefault && g == nil {
			g = idmap.Map{}
		}
		join := nsthread.Join{Fd: int(parent.Fd()), Type: unix.CLONE_NEWUSER, Name: fmt.Sprintf("the parent user namespace of process %d", pid)}
		how.Parent = true
		return s.writeIDMapsAs(join, pid, u, g, setgroups)
	}
	if rootByDefault && uids == nil {
		uids = idmap.Root(os.Geteuid())
	}
	if rootByDefault && gids == nil {
		gids = idmap.Root(os.Getegid())
	}
	capUID, capGID := Capable(unix.CAP_SETUID), Capable(unix.CAP_SETGID)
	if (uids != nil && !capUID && !uids.OwnIDOnly(os.Geteuid())) || (gids != nil && !capGID && !gids.OwnIDOnly(os.Getegid())) {
		how.Helpers = true
		if setgroups != "deny" {
			how.Setgroups = "" // newgidmap leaves it as it is
		}
		return writeWithHelpers(pid, uids, gids, setgroups)
	}
	if gids != nil && !capGID {
		if setgroups == "allow" {
			return fmt.Errorf(`setgroups="allow" cannot go with a gid_map written without CAP_SETGID: the kernel wants "deny" in /proc/%d/setgroups first (leave setgroups unset and nsh writes it)`, pid)
		}
		setgroups = "deny"
	}
	how.Setgroups = setgroups
	return writeMapFiles(pid, uids, gids, setgroups)
}

// CheckIDMaps applies WriteIDMaps's checks (the kernel's rules, maps not
// written yet) and writes nothing: a caller refuses what WriteIDMaps
// would before it starts.
func CheckIDMaps(pid int, uids, gids idmap.Map) error {
	parent, err := parentUserNS(pid)
	if err != nil {
		return err
	}
	if parent != nil {
		parent.Close()
	}
	return checkIDMaps(pid, parent == nil, uids, gids)
}

// checkIDMaps checks the maps of pid's user namespace, whose parent is
// nsh's own user namespace when ownParent.
func checkIDMaps(pid int, ownParent bool, uids, gids idmap.Map) error {
	base := fmt.Sprintf("/proc/%d/", pid)
	for _, w := range []struct {
		kind string
		maps idmap.Map
	}{{"uid", uids}, {"gid", gids}} {
		if w.maps == nil {
			continue
		}
		var own [][2]uint64 // the ids of the parent: nsh's own, or unknown
		if ownParent {
			var err error
			if own, err = OwnIDs(w.kind); err != nil {
				return err
			}
		}
		if err := w.maps.Check(w.kind, own); err != nil {
			return err
		}
		cur, err := ReadIDMap(base + w.kind + "_map")
		if err != nil {
			return err
		}
		if len(cur) > 0 {
			return fmt.Errorf("the %s_map of process %d is already written (%s); the kernel allows one write", w.kind, pid, cur[0].Format(w.kind))
		}
	}
	return nil
}

// ReadIDMap reads a /proc/PID/uid_map or gid_map.
func ReadIDMap(path string) (idmap.Map, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nserr.New("read", path, err)
	}
	return idmap.Parse(path, b)
}

// OwnIDs returns the ids that exist in nsh's own user namespace (kind
// "uid" or "gid"): the inside column of its own map.
func OwnIDs(kind string) ([][2]uint64, error) {
	m, err := ReadIDMap("/proc/self/" + kind + "_map")
	if err != nil {
		return nil, err
	}
	return m.Ranges(), nil
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
	if errors.Is(err, unix.EPERM) {
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

// writeWithHelpers writes maps beyond the caller's own id through
// newuidmap/newgidmap, after checking that each outside range is the
// caller's own id or inside its subordinate range.
func writeWithHelpers(pid int, uids, gids idmap.Map, setgroups string) error {
	sub := rootless.Subordinate()
	if sub == nil {
		m, kind, who := uids, "uid", os.Geteuid()
		if uids == nil || uids.OwnIDOnly(os.Geteuid()) {
			m, kind, who = gids, "gid", os.Getegid()
		}
		return fmt.Errorf("%s maps ids other than nsh's own %s %d, which needs CAP_SET%sID; without it, ranges come from newuidmap/newgidmap (Debian's uidmap) and the caller's entries in /etc/subuid and /etc/subgid, which this user lacks",
			m.Short(kind), kind, who, strings.ToUpper(kind[:1]))
	}
	for _, w := range []struct {
		kind string
		maps idmap.Map
		self int
		rng  [2]int
		file string
	}{{"uid", uids, os.Geteuid(), sub.UID, "/etc/subuid"}, {"gid", gids, os.Getegid(), sub.GID, "/etc/subgid"}} {
		for _, m := range w.maps {
			inSub := int(m.Outside) >= w.rng[0] && int(m.Outside)+int(m.Count) <= w.rng[0]+w.rng[1]
			if !inSub && !(m.Count == 1 && int(m.Outside) == w.self) {
				return fmt.Errorf("%s is neither nsh's own %s %d nor inside %s's range %d..%d in %s",
					m.Format(w.kind), w.kind, w.self, sub.User, w.rng[0], w.rng[0]+w.rng[1]-1, w.file)
			}
		}
	}
	if setgroups == "deny" {
		// Anyone may deny; newgidmap leaves setgroups as it finds it.
		if err := writeMapFiles(pid, nil, nil, setgroups); err != nil {
			return err
		}
	}
	// newuidmap and newgidmap are children of nsh while they run.
	defer Starting()()
	return sub.Map(pid, uids, gids)
}

// writeMapFiles is where nsh itself writes the maps of a user namespace
// whose process is pid: "deny" or "allow" to setgroups first when
// setgroups is not "", then uid_map and gid_map when not nil. The kernel's
// rules are checked first (WriteIDMaps); each map is written with one
// write(2), as the kernel requires.
func writeMapFiles(pid int, uid, gid idmap.Map, setgroups string) error {
	if setgroups != "" {
		if err := writeProc(pid, "setgroups", setgroups); err != nil {
			return err
		}
	}
	if uid != nil {
		if err := writeProc(pid, "uid_map", uid.Text()); err != nil {
			return err
		}
	}
	if gid != nil {
		err := writeProc(pid, "gid_map", gid.Text())
		if errors.Is(err, unix.EPERM) && setgroups != "deny" && !Capable(unix.CAP_SETGID) {
			return nserr.Errorf("write", fmt.Sprintf("/proc/%d/gid_map", pid), unix.EPERM,
				`a writer without CAP_SETGID must write "deny" to setgroups first: pass setgroups="deny"`)
		}
		return err
	}
	return nil
}

// writeIDMapsAs writes the maps of pid's user namespace from a helper
// process that joins user namespace as, the parent of pid's: the kernel
// wants the writer in the parent (or the namespace itself) with
// CAP_SETUID/CAP_SETGID there, so when the parent is not nsh's own user
// namespace nsh cannot write them itself. nil uid or gid skips that map;
// an empty one maps the helper's own id (as the parent sees it) to root.
// setgroups "" leaves the file as it is.
func (s *Spawner) writeIDMapsAs(as nsthread.Join, pid int, uid, gid idmap.Map, setgroups string) error {
	dir := fmt.Sprintf("/proc/%d", pid)
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nserr.New("open", dir, err)
	}
	defer unix.Close(dfd)
	cfg := &Config{Mode: maps, Setns: []nsthread.Join{as}, Pdeathsig: unix.SIGKILL, mapsDir: dfd}
	text := func(m idmap.Map) *string {
		if m == nil {
			return nil
		}
		t := m.Text()
		return &t
	}
	cfg.uidMap, cfg.gidMap = text(uid), text(gid)
	if setgroups != "" {
		cfg.setgroups = &setgroups
	}
	ch, err := s.Start(cfg)
	if err != nil {
		return err
	}
	ws, err := ch.Wait()
	ch.Close()
	if err == nil && (!ws.Exited() || ws.ExitStatus() != 0) {
		err = fmt.Errorf("id map writer for process %d ended with status %v", pid, ws)
	}
	return err
}

// writeProc writes data to /proc/PID/file in one write(2).
func writeProc(pid int, file, data string) error {
	p := "/proc/" + strconv.Itoa(pid) + "/" + file
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nserr.New("open", p, err)
	}
	defer unix.Close(fd)
	n, err := unix.Write(fd, []byte(data))
	if err == nil && n != len(data) {
		err = unix.EIO
	}
	if err != nil {
		return nserr.New("write", fmt.Sprintf("%q to %s", idmap.Summary(data), p), err)
	}
	return nil
}
