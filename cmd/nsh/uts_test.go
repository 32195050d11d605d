package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/leakcheck"
)

// hostname() in a UTS namespace that outlives the run (here nsh's own,
// made by unshare(1) for the test) is restored at the end of the run,
// and by the reaper when nsh is killed with SIGKILL; only while the name
// is still the one nsh set.
func TestHostnameRestored(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	leakcheck.Check(t)
	for _, c := range []struct {
		name, script, out string
		trace             []string
	}{
		{"teardown", `NSH -x -c 'hostname("during"); print(hostname())'; hostname`, "during\nbefore\n",
			[]string{"+ -c:1: hostname during", "- hostname before"}},
		// The reaper restores what nsh set when nsh cannot.
		{"SIGKILL", `NSH -c 'hostname("during"); run(["sh", "-c", "kill -KILL $PPID"])'
			for i in $(seq 100); do [ "$(hostname)" = before ] && break; sleep 0.05; done; hostname`, "before\n", nil},
		// A name set since is not nsh's to restore.
		{"changed since", `NSH -c 'hostname("during"); run("hostname other")'; hostname`, "other\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			script := "hostname before\n" + strings.ReplaceAll(c.script, "NSH", nshBin)
			out, stderr, _ := runCmd(t, exec.Command("unshare", "--uts", "sh", "-c", script))
			if out != c.out {
				t.Errorf("stdout %q, want %q (stderr %q)", out, c.out, stderr)
			}
			for _, l := range c.trace {
				if !strings.Contains(stderr, l+"\n") {
					t.Errorf("trace lacks %q:\n%s", l, stderr)
				}
			}
		})
	}
}
