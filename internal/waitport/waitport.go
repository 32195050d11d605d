// Package waitport waits until something listens on a port: it reads the
// socket tables of the calling thread's network namespace
// (/proc/thread-self/net/tcp, tcp6, udp, udp6), as the kernel selftests'
// wait_local_port_listen does, and polls them.
package waitport

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"nsh.dev/nsh/internal/nserr"
)

// Want is what is awaited: a socket of Proto ("tcp" or "udp") bound to
// Port, listening (tcp) or unconnected (udp), on Addr or on the wildcard
// address (Addr nil: any address).
type Want struct {
	Proto string
	Port  int
	Addr  net.IP
}

// String renders w as "tcp port 80" or "udp 10.0.0.1:53".
func (w Want) String() string {
	if w.Addr == nil {
		return fmt.Sprintf("%s port %d", w.Proto, w.Port)
	}
	return fmt.Sprintf("%s %s", w.Proto, net.JoinHostPort(w.Addr.String(), strconv.Itoa(w.Port)))
}

// Check validates w.
func (w Want) Check() error {
	if w.Proto != "tcp" && w.Proto != "udp" {
		return fmt.Errorf("proto must be \"tcp\" or \"udp\", not %q", w.Proto)
	}
	if w.Port < 1 || w.Port > 65535 {
		return fmt.Errorf("port %d is out of range (1..65535)", w.Port)
	}
	return nil
}

// The socket states of the tables (include/net/tcp_states.h).
const (
	stateListen = 0x0A // TCP_LISTEN
	stateClose  = 0x07 // TCP_CLOSE: an unconnected UDP socket
)

// Listening reports whether a socket w wants is in the tables of the
// calling thread's network namespace. A missing IPv6 table (IPv6 off) is
// no error.
func Listening(w Want) (bool, error) {
	if err := w.Check(); err != nil {
		return false, err
	}
	for _, name := range []string{w.Proto, w.Proto + "6"} {
		path := "/proc/thread-self/net/" + name
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && name != w.Proto {
				continue
			}
			return false, nserr.New("open", path, err)
		}
		ok, err := Match(f, w)
		f.Close()
		if err != nil {
			return false, nserr.New("read", path, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// Match reports whether the table r (the format of /proc/net/tcp) has a
// socket w wants.
func Match(r io.Reader, w Want) (bool, error) {
	want := byte(stateListen)
	if w.Proto == "udp" {
		want = stateClose
	}
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil || byte(st) != want {
			continue
		}
		ip, port, err := parseAddr(f[1])
		if err != nil {
			return false, err
		}
		if port != w.Port {
			continue
		}
		if w.Addr == nil || ip.IsUnspecified() || ip.Equal(w.Addr) {
			return true, nil
		}
	}
	return false, sc.Err()
}

// parseAddr reads a local_address column: the address as 32-bit words in
// hex, each printed from the host's byte order, a colon, the port in hex.
func parseAddr(s string) (net.IP, int, error) {
	a, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil || (len(a) != 8 && len(a) != 32) {
		return nil, 0, fmt.Errorf("malformed socket address %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return nil, 0, fmt.Errorf("malformed socket address %q", s)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	return ip, int(port), nil
}

// Poll calls check every interval until it reports true (Poll returns
// nil) or fails (its error), or until ctx is done: ctx.Err(), which is
// context.DeadlineExceeded when ctx's deadline passed (give ctx a deadline
// for a timeout). check runs once at least, even on a done ctx.
func Poll(ctx context.Context, interval time.Duration, check func() (bool, error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := check()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
