package builtins_test

import (
	"fmt"
	"io"
	"os"
	"testing"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/interp"
)

// benchScript runs src as a whole nsh run per iteration: a new Run, the
// script, and the run's teardown of what it made.
func benchScript(b *testing.B, src string) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root (the host's namespaces)")
	}
	in := interp.New(interp.Config{Builtins: builtins.Table(), Stdout: io.Discard, Stderr: io.Discard})
	dir := b.TempDir()
	for b.Loop() {
		r := in.NewRun(dir, []string{"bench.star"})
		_, err := r.ExecFile("bench.star", src)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(interp.FormatError(err))
		}
	}
}

// BenchmarkRunPass is the floor under the others: a run of "pass".
func BenchmarkRunPass(b *testing.B) { benchScript(b, "pass") }

// BenchmarkUnshareNet is unshare("net") through the builtin, with the
// run's teardown of the namespace.
func BenchmarkUnshareNet(b *testing.B) { benchScript(b, `unshare("net")`) }

// BenchmarkSetnsRoundTrip enters a new netns and comes back ten times.
func BenchmarkSetnsRoundTrip(b *testing.B) {
	benchScript(b, `
start = namespaces()
n = unshare("net")
for _ in range(10):
    setns(start)
    setns(n)
`)
}

// BenchmarkNetnsNamed is netns(name, persist=False): "ip netns add" and,
// at the run's end, "ip netns del".
func BenchmarkNetnsNamed(b *testing.B) {
	benchScript(b, fmt.Sprintf(`netns("bn-bench-%d", persist = False)`, os.Getpid()))
}

// BenchmarkClone is one sandbox spawn as bench/spawn.star times it:
// /bin/true in new pid+mnt+uts+ipc+net namespaces with a fresh /proc,
// waited for (the spawner thread is started once, by the first iteration's
// run).
func BenchmarkClone(b *testing.B) {
	benchScript(b, `clone(["/bin/true"], "pid", "mnt", "uts", "ipc", "net", mount_proc = True)`)
}

// BenchmarkCloneUser is BenchmarkClone with a new user namespace too (the
// child waits for nsh to write its id maps).
func BenchmarkCloneUser(b *testing.B) {
	benchScript(b, `clone(["/bin/true"], "user", "pid", "mnt", "uts", "ipc", "net", mount_proc = True)`)
}

// BenchmarkRun is run() of /bin/true in a run of its own: output
// captured, and as root the run's cgroup and reaper (issue 15 item 8).
func BenchmarkRun(b *testing.B) { benchScript(b, `run("/bin/true")`) }

// BenchmarkRun10 is ten run()s in one run: the cgroup and reaper are
// paid once.
func BenchmarkRun10(b *testing.B) {
	benchScript(b, `
for _ in range(10):
    run("/bin/true")
`)
}

// BenchmarkSpawnWait is spawn() of /bin/true in the current context and
// its wait(): the plain process path, no new namespaces.
func BenchmarkSpawnWait(b *testing.B) { benchScript(b, `spawn("/bin/true").wait()`) }
