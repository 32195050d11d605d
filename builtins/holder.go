package builtins

import (
	"fmt"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/mountopt"
	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/nsthread"
	"nsh.dev/nsh/internal/spawn"
)

// unshareOpts are unshare()'s keyword options.
type unshareOpts struct {
	propagation         string
	lo                  bool // bring up the loopback of a new network namespace
	uidmap, gidmap      idmap.Map
	monotonic, boottime time.Duration
	timeOffsets         bool
}

func (o *unshareOpts) unpack(st *state, fname string, kwargs []starlark.Tuple) error {
	var uidmap, gidmap, mono, boot starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(fname, nil, kwargs, "propagation?", &o.propagation, "lo?", &o.lo,
		"uidmap?", &uidmap, "gidmap?", &gidmap, "monotonic?", &mono, "boottime?", &boot); err != nil {
		return err
	}
	var err error
	if o.uidmap, err = st.parseIDMap("uidmap", uidmap); err != nil {
		return err
	}
	if o.gidmap, err = st.parseIDMap("gidmap", gidmap); err != nil {
		return err
	}
	if o.monotonic, err = parseSeconds("monotonic", mono); err != nil {
		return err
	}
	if o.boottime, err = parseSeconds("boottime", boot); err != nil {
		return err
	}
	o.timeOffsets = mono != starlark.None || boot != starlark.None
	return nil
}

// check refuses options that do not go with the kinds asked for.
func (o *unshareOpts) check(flags int) error {
	if (o.uidmap != nil || o.gidmap != nil) && flags&unix.CLONE_NEWUSER == 0 {
		return fmt.Errorf("uidmap/gidmap need a new user namespace: add \"user\" to the kinds")
	}
	if o.timeOffsets && flags&unix.CLONE_NEWTIME == 0 {
		return fmt.Errorf("monotonic/boottime need a new time namespace: add \"time\" to the kinds")
	}
	return nil
}

// processOnly reports whether the options need nothing a helper process
// must do (maps, time offsets).
func (o *unshareOpts) processOnly() bool {
	return o.uidmap == nil && o.gidmap == nil && !o.timeOffsets
}

// unshareViaProcess creates the kinds a multi-threaded process cannot
// unshare on a thread (user, pid, time), and any kind that must be owned by
// a user namespace the context joined, in a helper child cloned from the
// current context. The run then holds the new namespaces by descriptor:
//   - without pid, the child (mode Hold) exits as soon as they are open;
//   - with pid, the child is nsh-init, PID 1 of the new PID namespace,
//     which reaps orphans there and lives until the end of the run (or
//     nsh's death). Processes started later in that namespace get pids 2, 3...
//     It is returned, for the caller to end at the end of the run.
func (st *state) unshareViaProcess(cur nsctx.Context, flags int, o *unshareOpts) ([]*nsctx.NS, *spawn.Child, error) {
	cfg := &spawn.Config{Mode: spawn.Hold, New: flags, UIDMap: o.uidmap, GIDMap: o.gidmap, Pdeathsig: unix.SIGKILL}
	if flags&unix.CLONE_NEWPID != 0 {
		cfg.Mode = spawn.Init
	}
	cfg.Joins, cfg.Setns = st.spawnJoins(cur)
	sp := st.spawner()
	if o.timeOffsets {
		cfg.TimeOffsets, cfg.Monotonic, cfg.Boottime = true, o.monotonic, o.boottime
	}
	if flags&unix.CLONE_NEWNS != 0 {
		var err error
		if cfg.Propagation, err = mountopt.Propagation(o.propagation, true); err != nil {
			return nil, nil, err
		}
	}
	ch, err := sp.Start(cfg)
	if err != nil {
		return nil, nil, err
	}
	var created []*nsctx.NS
	for _, k := range nsthread.Kinds {
		if flags&k.Flag == 0 {
			continue
		}
		name := k.Name
		if k.Name == "time" {
			name = k.ForChildren // the holder itself has not entered it
		}
		n, err := st.tab.Open(fmt.Sprintf("/proc/%d/ns/%s", ch.Pid, name), k.Name)
		if err != nil {
			ch.Kill(unix.SIGKILL)
			ch.Release()
			ch.Wait()
			ch.Close()
			return nil, nil, err
		}
		created = append(created, n)
	}
	if cfg.Mode == spawn.Hold {
		ch.Release()
		_, err := ch.Wait()
		ch.Close()
		return created, nil, err
	}
	return created, ch, nil
}

// endInit ends the init of a PID namespace unshare() made (its undo at
// the end of the run): SIGKILL, which the kernel turns into the end of
// every process in the namespace, and wait.
func endInit(ch *spawn.Child) error {
	ch.Release()
	ch.Kill(unix.SIGKILL)
	_, err := ch.Wait()
	ch.Close()
	return err
}
