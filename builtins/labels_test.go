package builtins_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/startest"
	"nsh.dev/nsh/interp"
)

// execIn runs src as a script of the run r and fails t on an error.
func execIn(t *testing.T, r *interp.Run, src string) {
	t.Helper()
	if _, err := r.ExecFile("t.star", src); err != nil {
		t.Errorf("%s: %s", src, interp.FormatError(err))
	}
}

// The REPL prompt names the namespaces of the context by their labels,
// and the unlabelled ones by inode.
func TestPromptShowsLabels(t *testing.T) {
	leakcheck.Check(t)
	in := interp.New(interp.Config{Builtins: builtins.Table()})
	r := in.NewRun(".", nil)
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}()
	th := r.NewThread("prompt")
	if p := builtins.Prompt(th); p != "" {
		t.Errorf("prompt at the start: %q, want none", p)
	}
	execIn(t, r, `h = host("p1", kinds = ["net", "uts"])`)
	if p := builtins.Prompt(th); p != "" {
		t.Errorf("prompt after host(): %q, want none (the context does not move)", p)
	}
	execIn(t, r, `setns(host("p1", kinds = ["net", "uts"]))`)
	if p := builtins.Prompt(th); p != "net:p1 uts:p1" {
		t.Errorf("prompt in host p1: %q, want %q", p, "net:p1 uts:p1")
	}
	execIn(t, r, `setns(netns_new("p2"))
unshare("ipc")`)
	if p, want := builtins.Prompt(th), regexp.MustCompile(`^ipc:\d+ net:p2 uts:p1$`); !want.MatchString(p) {
		t.Errorf("prompt: %q, want %s", p, want)
	}
}

// A script that makes a link in nsh's own network namespace without ns=
// is told so once; not when it passes ns= or is in another context, nor
// when the note is off.
func TestHostNoteOnce(t *testing.T) {
	startest.NeedsRealRoot(t) // links in nsh's own network namespace
	leakcheck.Check(t)
	const note = "nsh: veth: creating in the host's network namespace; pass ns= to build elsewhere (nsh --no-host-note hides this note)\n"
	for _, tc := range []struct {
		name, src, want string
		on              bool
	}{
		{"once", `veth("hn-a0", "hn-a1")
veth("hn-b0", "hn-b1")
bridge("hn-br")`, note, true},
		{"bridge first", `bridge("hn-br")
veth("hn-b0", "hn-b1")`, strings.Replace(note, "veth", "bridge", 1), true},
		{"peer in the host", `veth("hn-a0", "hn-a1", ns = netns_new("n"))`, note, true},
		{"ns given", `n = netns_new("n")
veth("hn-a0", "hn-a1", ns = n, peer_ns = n)
bridge("hn-br", ns = n)`, "", true},
		{"explicit host", `veth("hn-a0", "hn-a1", ns = namespaces(), peer_ns = namespaces().net)`, "", true},
		{"elsewhere", `setns(netns_new("n"))
veth("hn-a0", "hn-a1")
bridge("hn-br")`, "", true},
		{"off", `veth("hn-a0", "hn-a1")`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			in := interp.New(interp.Config{Builtins: builtins.Table(), Stderr: &stderr})
			r := in.NewRun(".", nil)
			if tc.on {
				builtins.SetHostNote(r.Registry, &stderr)
			}
			execIn(t, r, tc.src)
			if err := r.Close(); err != nil {
				t.Errorf("teardown: %v", err)
			}
			if stderr.String() != tc.want {
				t.Errorf("%s\nprinted %q, want %q", tc.src, stderr.String(), tc.want)
			}
		})
	}
}
