package main_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"nsh.dev/nsh/internal/leakcheck"
)

// TestDocSearch: nsh doc WORD, for a word that names nothing, lists what
// mentions it; an exact name prints its doc as before.
func TestDocSearch(t *testing.T) {
	out, stderr, code := nsh(t, "", "doc", "persist")
	if code != 0 {
		t.Fatalf("nsh doc persist: exit %d, %s", code, stderr)
	}
	for _, want := range []string{
		`Nothing is named "persist"`,
		"\n  link.persist ",
		"\n  netns ", "persist=True",
		"\n  sysctl ", "persist=False)",
		"\n  mount ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("nsh doc persist lacks %q:\n%s", want, out)
		}
	}
	// Names first, then keyword names, then text.
	if i, j := strings.Index(out, "link.persist"), strings.Index(out, "\n  netns "); i > j {
		t.Errorf("a name match comes after a keyword match:\n%s", out)
	}
	out, _, code = nsh(t, "", "doc", "netem")
	if code != 0 || !regexp.MustCompile(`\n  link\.netem +netem\(delay=None`).MatchString(out) || !strings.Contains(out, "\n  has_qdisc ") {
		t.Errorf("nsh doc netem: exit %d\n%s", code, out)
	}
	out, _, code = nsh(t, "", "doc", "netns")
	if code != 0 || !strings.HasPrefix(out, "netns(name, persist=True") {
		t.Errorf("nsh doc netns: exit %d\n%s", code, out)
	}
	_, stderr, code = nsh(t, "", "doc", "xyzzy")
	if code != 2 || !strings.Contains(stderr, `no help for "xyzzy", and no doc mentions it`) {
		t.Errorf("nsh doc xyzzy: exit %d, %s", code, stderr)
	}
}

// TestREPLEditing: Tab completes a builtin's keyword arguments, a block is
// indented as it is typed (and pasted code keeps its own indentation), a
// finished process echoes its exit and output, setns() and unshare() echo
// nothing, help("word") searches.
func TestREPLEditing(t *testing.T) {
	if os.Geteuid() == 0 {
		leakcheck.Check(t)
	}
	cmd, s := startOnPTY(t, []string{"XDG_STATE_HOME=" + t.TempDir()})
	s.waitFor(t, "nsh> ")
	// Keyword arguments of the call the cursor is in.
	s.typeIn(`ping("127.0.0.1", co` + "\t")
	s.waitFor(t, `ping("127.0.0.1", count=`)
	s.typeIn("\x15") // Ctrl-U: clear the line
	s.typeIn(`x = run("true", che` + "\t")
	s.waitFor(t, `run("true", check=`)
	s.typeIn("\x15")
	// Typed without indentation: the REPL indents the body, and four more
	// after a nested block's ":", and takes the indentation back after
	// return; a line of only the indentation ends the block.
	s.typeIn("def g(n):\r")
	s.waitFor(t, "... ")
	s.typeIn("if n:\r")
	s.waitFor(t, "...     ")
	s.typeIn("return n + 1\r")
	s.waitFor(t, "...         ")
	s.typeIn("return 0\r")
	s.waitFor(t, "... ")
	s.typeIn("\r")
	s.waitFor(t, "nsh> ")
	s.typeIn("[g(0), g(41)]\r")
	s.waitFor(t, "[0, 42]")
	// Pasted with its own indentation: it is kept, not added to.
	s.typeIn("def h(n):\r    if n:\r        return 'yes'\r    return 'no'\r\r")
	s.waitFor(t, "nsh> ")
	s.typeIn("h(1) + h(0)\r")
	s.waitFor(t, "yesno")
	// A finished process shows its exit and the start of its output.
	s.typeIn(`run(["sh", "-c", "echo one; echo two"])` + "\r")
	s.waitFor(t, `exited 0, stdout "one\ntwo\n">`)
	s.typeIn(`p = spawn("sleep 30")` + "\r")
	s.waitFor(t, "nsh> ")
	s.typeIn("p\r")
	s.waitFor(t, "[sleep 30] running>")
	s.typeIn("p.kill(); p.wait()\r")
	s.waitFor(t, "nsh> ")
	s.typeIn("p\r")
	s.waitFor(t, "[sleep 30] killed by SIGTERM>")
	// help("word") searches the docs.
	s.typeIn(`help("netem")` + "\r")
	s.waitFor(t, "link.netem")
	s.waitFor(t, "nsh> ")
	if os.Geteuid() == 0 {
		// setns() and unshare() move the context: the prompt shows it,
		// and the context they return is not echoed; namespaces() is.
		s.typeIn("start = namespaces()\r")
		s.waitFor(t, "nsh> ")
		s.typeIn(`unshare("net")` + "\r")
		s.waitFor(t, "nsh[net:")
		if strings.Contains(s.buf.String(), "namespaces(net:") {
			t.Errorf("unshare() echoed its context: %q", s.buf.String())
		}
		s.typeIn("namespaces()\r")
		s.waitFor(t, "namespaces(net:[")
		s.waitFor(t, "nsh[net:")
		s.typeIn("setns(start)\r")
		s.waitFor(t, "nsh> ")
		if strings.Contains(s.buf.String(), "namespaces(net:") {
			t.Errorf("setns() echoed the context it left: %q", s.buf.String())
		}
		s.typeIn("'after'\r")
		s.waitFor(t, "after")
		s.waitFor(t, "nsh> ")
		s.typeIn("namespaces()\r")
		s.waitFor(t, "namespaces(initial)")
	}
	time.Sleep(200 * time.Millisecond) // see TestREPL
	s.typeIn("\x04")
	done := make(chan error)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("REPL exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("REPL did not exit on Ctrl-D")
	}
}
