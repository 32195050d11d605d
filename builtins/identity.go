package builtins

import (
	"fmt"
	"os"
	"strings"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/spawn"
)

// identityDoc is the part of clone()'s, run()'s and spawn()'s help on the
// ids a process runs as.
const identityDoc = `Identity. In a user namespace other than nsh's own (a new one, or one
the context or ns moved into) the process becomes, once the maps are
written and just before its exec, uid 0 and gid 0 there when 0 is mapped,
with no supplementary groups where the namespace allows setgroups (as
nsenter --user does; runc, crun and bwrap --uid switch ids there too).
Where 0 is not mapped it keeps nsh's own ids, which show inside as
themselves when the map covers them and otherwise as the overflow id
65534 (nobody): the kernel lets a process take only ids its namespace
maps, and nsh has no other to pick. In nsh's own user namespace the ids
are nsh's.
  uid, gid     ids inside the process's user namespace to switch to
  groups       list of supplementary gids (default: none, where setgroups
               is allowed; a namespace with "deny" in setgroups keeps
               nsh's and refuses groups=)
They are checked against that namespace's maps before anything is created
(a paused clone's, at resume()); in nsh's own user namespace other ids
need CAP_SETUID/CAP_SETGID. Switching is setgroups, setresgid, setresuid,
in that order, after every privileged step (mounts, hostname, root).
Capabilities follow the exec rules: uid 0 inside keeps all of them in that
user namespace; any other uid has none after the exec (CapEff 0 in
/proc/self/status).`

// identity is what uid=, gid= and groups= ask for; -1: not given.
type identity struct {
	uid, gid    int64
	groups      []int64
	groupsGiven bool
}

func (id *identity) spawn() *spawn.Identity {
	s := &spawn.Identity{UID: int(id.uid), GID: int(id.gid), GroupsGiven: id.groupsGiven}
	for _, g := range id.groups {
		s.Groups = append(s.Groups, int(g))
	}
	return s
}

// parseIdentity reads uid=, gid= and groups=; nil when none is given.
func parseIdentity(uid, gid, groups starlark.Value) (*identity, error) {
	id := &identity{uid: -1, gid: -1}
	oneID := func(name string, v starlark.Value) (int64, error) {
		var n int64
		if err := starlark.AsInt(v, &n); err != nil {
			return 0, fmt.Errorf("%s must be an id (an int), not %s", name, v.Type())
		}
		if n < 0 || n >= idmap.MaxID {
			return 0, fmt.Errorf("%s=%d is not an id: ids go from 0 to %d", name, n, idmap.MaxID-1)
		}
		return n, nil
	}
	var err error
	if uid != starlark.None {
		if id.uid, err = oneID("uid", uid); err != nil {
			return nil, err
		}
	}
	if gid != starlark.None {
		if id.gid, err = oneID("gid", gid); err != nil {
			return nil, err
		}
	}
	if groups != starlark.None {
		it, ok := groups.(starlark.Iterable)
		if !ok || groups.Type() == "string" {
			return nil, fmt.Errorf("groups must be a list of gids, not %s", groups.Type())
		}
		iter := it.Iterate()
		defer iter.Done()
		var x starlark.Value
		for iter.Next(&x) {
			g, err := oneID("groups element", x)
			if err != nil {
				return nil, err
			}
			id.groups = append(id.groups, g)
		}
		if len(id.groups) > 65536 {
			return nil, fmt.Errorf("groups has %d gids; the kernel allows at most 65536 (NGROUPS_MAX)", len(id.groups))
		}
		id.groupsGiven = true
	}
	if id.uid < 0 && id.gid < 0 && !id.groupsGiven {
		return nil, nil
	}
	return id, nil
}

// check refuses ids not mapped in a user namespace whose maps are uids
// and gids, and groups= where its setgroups file says "deny" (as far as
// known: "" when not); where names it ("the new user namespace").
func (id *identity) check(where string, uids, gids idmap.Map, setgroups string) error {
	if id.groupsGiven && setgroups == "deny" {
		return fmt.Errorf(`groups= cannot be set in %s: its setgroups is "deny" (as a gid_map written without CAP_SETGID requires, and inherited by the user namespaces inside it); leave out groups=`, where)
	}
	mapped := func(label, kind string, v int64, m idmap.Map) error {
		if m.Maps(v) {
			return nil
		}
		if len(m) == 0 {
			return fmt.Errorf("%s is not mapped in %s, which has no %s_map", label, where, kind)
		}
		return fmt.Errorf("%s is not mapped in %s, whose %s_map is %s; pick an id of its inside column",
			label, where, kind, m.Short(kind))
	}
	if id.uid >= 0 {
		if err := mapped(fmt.Sprintf("uid=%d", id.uid), "uid", id.uid, uids); err != nil {
			return err
		}
	}
	if id.gid >= 0 {
		if err := mapped(fmt.Sprintf("gid=%d", id.gid), "gid", id.gid, gids); err != nil {
			return err
		}
	}
	for _, g := range id.groups {
		if err := mapped(fmt.Sprintf("group %d of groups=", g), "gid", g, gids); err != nil {
			return err
		}
	}
	return nil
}

// identityArgs reads uid=, gid= and groups= into p.cfg.Identity and checks
// them, before anything is created, against the maps of the user namespace
// the process will run in: for a new one (newUser), the maps clone() writes
// (uids/gids, or the caller's own ids as root); for a paused clone(), the
// maps written by the time of resume(); otherwise the namespace in p.ctx.
func (st *state) identityArgs(p *procSpec, uid, gid, groups starlark.Value, newUser, paused bool, uids, gids idmap.Map) error {
	id, err := parseIdentity(uid, gid, groups)
	if err != nil || id == nil {
		return err
	}
	p.cfg.Identity = id.spawn()
	switch {
	case paused:
		p.cfg.BeforeResume = func(pid int) error {
			um, err := spawn.ReadIDMap(fmt.Sprintf("/proc/%d/uid_map", pid))
			if err != nil {
				return err
			}
			gm, err := spawn.ReadIDMap(fmt.Sprintf("/proc/%d/gid_map", pid))
			if err != nil {
				return err
			}
			sg, err := readSetgroups(fmt.Sprintf("/proc/%d/", pid))
			if err != nil {
				return err
			}
			return id.check(fmt.Sprintf("the user namespace of process %d", pid), um, gm, sg)
		}
		return nil
	case newUser:
		if uids == nil {
			uids = idmap.Root(os.Geteuid())
		}
		if gids == nil {
			gids = idmap.Root(os.Getegid())
		}
		// The new namespace denies setgroups when its parent does, or
		// when nsh writes its one-line gid_map without CAP_SETGID.
		parent := p.ctx.Get("user")
		own := nsctx.Same(parent, st.tab.Initial.Get("user"))
		sg := ""
		if own || id.groupsGiven {
			if _, _, sg, err = st.userNSMaps(parent, own); err != nil {
				return err
			}
		}
		if own && !spawn.Capable(unix.CAP_SETGID) && gids.OwnIDOnly(os.Getegid()) {
			sg = "deny"
		}
		return id.check("the new user namespace", uids, gids, sg)
	}
	user := p.ctx.Get("user")
	own := nsctx.Same(user, st.tab.Initial.Get("user"))
	um, gm, sg, err := st.userNSMaps(user, own)
	if err != nil {
		return err
	}
	where := "user namespace " + user.String()
	if own {
		where = "nsh's user namespace"
	}
	if err := id.check(where, um, gm, sg); err != nil {
		return err
	}
	if !own {
		return nil // the process has every capability there
	}
	// In nsh's own user namespace, changing ids takes the capability.
	if id.uid >= 0 && int(id.uid) != os.Geteuid() && !spawn.Capable(unix.CAP_SETUID) {
		return fmt.Errorf("uid=%d needs CAP_SETUID, which nsh (uid %d) lacks in its user namespace", id.uid, os.Geteuid())
	}
	if (id.groupsGiven || (id.gid >= 0 && int(id.gid) != os.Getegid())) && !spawn.Capable(unix.CAP_SETGID) {
		return fmt.Errorf("gid=/groups= need CAP_SETGID, which nsh (gid %d) lacks in its user namespace", os.Getegid())
	}
	return nil
}

// userNSMaps returns the maps of user namespace ns (only their inside
// column matters here) and its setgroups: nsh's own from /proc/self;
// another's from a helper process that joins it and stops (spawn.Hold),
// read through its /proc/PID before it is let go.
func (st *state) userNSMaps(ns *nsctx.NS, own bool) (uids, gids idmap.Map, setgroups string, err error) {
	dir := "/proc/self/"
	if !own {
		cfg := &spawn.Config{Mode: spawn.Hold, Pdeathsig: unix.SIGKILL,
			Setns: []nsthread.Join{{Fd: ns.Fd(), Type: unix.CLONE_NEWUSER, Name: ns.String()}}}
		ch, err := st.spawner().Start(cfg)
		if err != nil {
			return nil, nil, "", err
		}
		defer func() {
			ch.Release()
			ch.Wait()
			ch.Close()
		}()
		dir = fmt.Sprintf("/proc/%d/", ch.Pid)
	}
	if uids, err = spawn.ReadIDMap(dir + "uid_map"); err != nil {
		return nil, nil, "", err
	}
	if gids, err = spawn.ReadIDMap(dir + "gid_map"); err != nil {
		return nil, nil, "", err
	}
	if setgroups, err = readSetgroups(dir); err != nil {
		return nil, nil, "", err
	}
	return uids, gids, setgroups, nil
}

// readSetgroups reads "allow" or "deny" from dir's setgroups file (dir is
// "/proc/PID/").
func readSetgroups(dir string) (string, error) {
	b, err := os.ReadFile(dir + "setgroups")
	if err != nil {
		return "", nserr.New("read", dir+"setgroups", err)
	}
	return strings.TrimSpace(string(b)), nil
}
