package builtins_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/startest"
	"nsh.dev/nsh/interp"
)

// packetSockets counts the AF_PACKET sockets among this process's
// descriptors.
func packetSockets(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(target, "socket:") {
			continue
		}
		if d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && d == unix.AF_PACKET {
			n++
		}
	}
	return n
}

// TestCaptureClosesSockets runs testdata/capture/fds.star, which counts
// nsh's packet sockets around captures, and checks that none is left
// once the run is over, with the pcap files (relative paths) complete.
func TestCaptureClosesSockets(t *testing.T) {
	script, err := filepath.Abs("testdata/capture/fds.star")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	// Files are created 0644 whatever the umask.
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	tab := doc.Join(builtins.Table(), doc.Table{Funcs: []doc.Func{{Name: "packet_sockets", Sig: "packet_sockets()",
		Doc: "The number of AF_PACKET sockets this process holds (a test helper).",
		Impl: func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return starlark.MakeInt(packetSockets(t)), nil
		}}}})
	before := packetSockets(t)
	startest.RunFile(t, script, tab)
	if n := packetSockets(t); n != before {
		t.Errorf("%d packet sockets after the run, %d before", n, before)
	}
	for _, name := range []string{"rel.pcap", "left.pcap"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("the capture's file: %v", err)
			continue
		}
		// The header, and a record of at least an ICMP echo request.
		if fi.Mode().Perm() != 0o644 || fi.Size() < 24+16+98 {
			t.Errorf("%s: mode %v, %d bytes", name, fi.Mode(), fi.Size())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "never.pcap")); err == nil {
		t.Errorf("a refused capture left its file")
	}
}

// TestCaptureWaitInterrupted: Ctrl-C ends cap.wait() at once, saying so,
// and the run's teardown closes the capture.
func TestCaptureWaitInterrupted(t *testing.T) {
	leakcheck.Check(t)
	before := packetSockets(t)
	in := interp.New(interp.Config{Builtins: builtins.Table()})
	r := in.NewRun(".", []string{"wait.star"})
	go func() {
		time.Sleep(200 * time.Millisecond)
		r.Interrupt(syscall.SIGINT)
	}()
	start := time.Now()
	_, err := r.ExecFile("wait.star", []byte(`ns = unshare("net")
cap = capture(link("lo"), filter = "udp port 9")
cap.wait(1, timeout = None)`))
	took := time.Since(start)
	if cerr := r.Close(); cerr != nil {
		t.Errorf("teardown: %v", cerr)
	}
	const want = `wait: interrupted with 0 of 1 packets on "lo" in net:\[[0-9]+\], filter "udp port 9"`
	if err == nil {
		t.Fatalf("not interrupted")
	} else if msg := interp.FormatError(err); !regexp.MustCompile(want).MatchString(msg) {
		t.Errorf("error %q does not match %q", msg, want)
	}
	if took > 5*time.Second {
		t.Errorf("the interruption took %s", took)
	}
	if n := packetSockets(t); n != before {
		t.Errorf("%d packet sockets after the run, %d before", n, before)
	}
}
