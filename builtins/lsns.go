package builtins

import (
	"os"
	"sort"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nsthread"
)

// lsnsBuiltin lists the namespaces processes are in, as lsns(8) does: one
// entry per namespace with the lowest pid in it and that pid's command.
func lsnsBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var kind starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "kind?", &kind); err != nil {
		return nil, err
	}
	want := nsthread.AllFlags
	if kind != starlark.None {
		f, err := parseKinds(starlark.Tuple{kind})
		if err != nil {
			return nil, err
		}
		want = f
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	type entry struct {
		kind   string
		ino    uint64
		nprocs int
		pid    int
		uid    uint32
	}
	seen := map[[2]uint64]*entry{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var pst unix.Stat_t
		if unix.Stat("/proc/"+e.Name(), &pst) != nil {
			continue // exited meanwhile
		}
		for ki, k := range nsthread.Kinds {
			if want&k.Flag == 0 {
				continue
			}
			var st unix.Stat_t
			if unix.Stat("/proc/"+e.Name()+"/ns/"+k.Name, &st) != nil {
				continue // exited, or not ours to see
			}
			key := [2]uint64{uint64(ki), st.Ino}
			if x, ok := seen[key]; ok {
				x.nprocs++
				if pid < x.pid {
					x.pid, x.uid = pid, pst.Uid
				}
				continue
			}
			seen[key] = &entry{kind: k.Name, ino: st.Ino, nprocs: 1, pid: pid, uid: pst.Uid}
		}
	}
	list := make([]*entry, 0, len(seen))
	for _, x := range seen {
		list = append(list, x)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].ino != list[j].ino {
			return list[i].ino < list[j].ino
		}
		return list[i].kind < list[j].kind
	})
	out := make([]starlark.Value, 0, len(list))
	for _, x := range list {
		out = append(out, starlarkstruct.FromStringDict(starlark.String("ns"), starlark.StringDict{
			"ns":      starlark.MakeUint64(x.ino),
			"type":    starlark.String(x.kind),
			"nprocs":  starlark.MakeInt(x.nprocs),
			"pid":     starlark.MakeInt(x.pid),
			"uid":     starlark.MakeInt(int(x.uid)),
			"command": starlark.String(command(x.pid)),
		}))
	}
	return starlark.NewList(out), nil
}

// command returns a process's command line, or its comm when the cmdline is
// empty (kernel threads) or gone.
func command(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err == nil && len(b) > 0 {
		return strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	}
	b, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}
