package builtins_test

import (
	"regexp"
	"syscall"
	"testing"
	"time"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/interp"
)

// Issue 21 item 2: Ctrl-C (the run's interruption, as the signal handler
// makes it) wakes every wait without a limit at once, with an error that
// says so, and the teardown leaves nothing.
func TestInterruptEndsWaits(t *testing.T) {
	leakcheck.Check(t)
	for _, c := range []struct{ name, src, msg string }{
		{"sleep", "sleep(60)", "sleep: interrupted after [0-9.]+m?s of 60 seconds"},
		{"readline", `p = spawn(["sleep", "60"], stdout = True)
p.readline()`, "readline on stdout of process [0-9]+ \\[sleep 60\\]: interrupted"},
		{"expect", `p = spawn(["sh", "-c", "echo x >&2; sleep 60"], stderr = True)
p.expect("never", timeout = None, stream = "stderr")`, `expect "never" on stderr of process [0-9]+ \[sh -c "echo x >&2; sleep 60"\]: interrupted`},
		{"wait_port", "wait_port(1, timeout = None)", "wait_port: interrupted while waiting for tcp port 1 in "},
		{"eventually", "eventually(lambda: False, timeout = None)", "eventually: interrupted after [0-9.]+m?s waiting for lambda"},
		{"wait_link", `wait_link("nosuch", timeout = None)`, `wait_link: interrupted while waiting for link "nosuch" in .* to be up; last seen: absent`},
		{"wait_route", `wait_route("10.200.0.0/16", timeout = None)`, "wait_route: interrupted while waiting for a route to 10.200.0.0/16 in "},
		{"wait_file", `wait_file("/nonexistent/nsh-wait", timeout = None)`, `wait_file: interrupted while waiting for "/nonexistent/nsh-wait"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := interp.New(interp.Config{Builtins: builtins.Table()})
			r := in.NewRun(".", []string{c.name + ".star"})
			go func() {
				time.Sleep(200 * time.Millisecond)
				r.Interrupt(syscall.SIGINT)
			}()
			start := time.Now()
			_, err := r.ExecFile(c.name+".star", []byte(c.src))
			took := time.Since(start)
			if cerr := r.Close(); cerr != nil {
				t.Errorf("teardown: %v", cerr)
			}
			if err == nil {
				t.Fatalf("not interrupted")
			}
			if msg := interp.FormatError(err); !regexp.MustCompile(c.msg).MatchString(msg) {
				t.Errorf("error %q does not match %q", msg, c.msg)
			}
			if took > 5*time.Second {
				t.Errorf("the interruption took %s", took)
			}
		})
	}
}
