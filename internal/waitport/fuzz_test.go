package waitport

// Fuzz target for wait_port()'s port and proto (issue 18, item 3); see
// builtins/fuzz_test.go for the others. `go test` runs it on its seed
// corpus (testdata/fuzz), `make fuzz` for FUZZTIME.

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
)

// FuzzWant covers wait_port(port, addr=, proto=) (Want.Check, with addr=
// read as wait_port reads it) and the socket tables' address column
// (parseAddr) it is compared with: a refusal names the proto or the port
// given; an accepted Want is tcp or udp on a port in 1..65535, which its
// String() names; and that address and port, written as the kernel writes
// them in /proc/net/tcp{,6}, read back the same, so the wanted socket is
// found. None of issue 15's defects was in this parser.
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
		// As the kernel prints it: each 32-bit word of the address in hex
		// from the host's byte order, then the port.
		ip := w.Addr.To4()
		if ip == nil {
			ip = w.Addr.To16()
		}
		raw := make([]byte, len(ip))
		for i := 0; i < len(ip); i += 4 {
			binary.BigEndian.PutUint32(raw[i:], binary.NativeEndian.Uint32(ip[i:]))
		}
		col := fmt.Sprintf("%s:%04X", strings.ToUpper(hex.EncodeToString(raw)), port)
		got, gotPort, err := parseAddr(col)
		if err != nil || !got.Equal(w.Addr) || gotPort != port {
			t.Fatalf("%s:%d written %q reads back as %v:%d, %v", w.Addr, port, col, got, gotPort, err)
		}
		if _, _, err := parseAddr(col[:len(col)-1] + "x"); err == nil {
			t.Fatalf("parseAddr(%q) accepted", col[:len(col)-1]+"x")
		}
	})
}
