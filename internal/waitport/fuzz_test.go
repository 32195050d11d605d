package waitport

// Fuzz target for wait_port()'s port and proto (issue 18, item 3); see
// builtins/fuzz_test.go for the others. `go test` runs it on its seed
// corpus (testdata/fuzz), `make fuzz` for FUZZTIME.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"nsh.dev/nsh/internal/sockdiag"
)

// FuzzWant covers wait_port(port, addr=, proto=) (Want.Check, with addr=
// read as wait_port reads it) and Match against the sockets sock_diag
// lists: a refusal names the proto or the port given; an accepted Want is
// tcp or udp on a port in 1..65535, which its String() names; the socket it
// waits for matches it and one on another port does not. None of issue
// 15's defects was in this parser.
func FuzzWant(f *testing.F) {
	f.Fuzz(func(t *testing.T, proto string, port int, addr string) {
		w := Want{Proto: proto, Port: port, Addr: net.ParseIP(strings.TrimSpace(addr))}
		if err := w.Check(); err != nil {
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(proto)) && !strings.Contains(msg, fmt.Sprintf("port %d ", port)) {
				t.Fatalf("Want{%q, %d}.Check(): error %q names neither", proto, port, msg)
			}
			return
		}
		if proto != "tcp" && proto != "udp" || port < 1 || port > 65535 {
			t.Fatalf("Want{%q, %d} accepted", proto, port)
		}
		if s := w.String(); !strings.HasPrefix(s, proto+" ") || !strings.HasSuffix(s, strconv.Itoa(port)) {
			t.Fatalf("Want{%q, %d, %v}.String() = %q", proto, port, w.Addr, s)
		}
		if w.Addr == nil {
			return
		}
		// The socket it asks for matches it, in the state that takes
		// connections or datagrams, and on no other port.
		state := uint8(sockdiag.Listen)
		if proto == "udp" {
			state = sockdiag.Close
		}
		sock := sockdiag.Socket{Proto: proto, State: state, Local: w.Addr, LPort: port}
		if !Match([]sockdiag.Socket{sock}, w) {
			t.Fatalf("%s: the socket %+v it waits for does not match", w, sock)
		}
		sock.LPort = port%65535 + 1
		if Match([]sockdiag.Socket{sock}, w) {
			t.Fatalf("%s: a socket on port %d matches", w, sock.LPort)
		}
	})
}
