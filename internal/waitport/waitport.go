// Package waitport waits until something listens on a port: it lists the
// sockets of a network namespace through netlink sock_diag (package
// sockdiag), as ss(8) does, and polls.
package waitport

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"nsh.dev/nsh/internal/sockdiag"
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

// waiting reports whether s is a socket that takes what w's proto takes:
// a listening TCP socket, or an unconnected UDP one.
func waiting(s sockdiag.Socket, proto string) bool {
	if s.Proto != proto {
		return false
	}
	if proto == "udp" {
		return s.State == sockdiag.Close
	}
	return s.State == sockdiag.Listen
}

// Match reports whether socks has a socket w wants.
func Match(socks []sockdiag.Socket, w Want) bool {
	for _, s := range socks {
		if !waiting(s, w.Proto) || s.LPort != w.Port {
			continue
		}
		if w.Addr == nil || s.Local.IsUnspecified() || s.Local.Equal(w.Addr) {
			return true
		}
	}
	return false
}

// Listening describes the sockets of w's proto in socks that take
// connections or datagrams, for an error message: "*:22, 127.0.0.1:53", or
// "none".
func Listening(socks []sockdiag.Socket, proto string) string {
	var have []string
	seen := map[string]bool{}
	for _, s := range socks {
		if e := sockdiag.Endpoint(s.Local, s.LPort); waiting(s, proto) && !seen[e] {
			seen[e] = true
			have = append(have, e)
		}
	}
	if len(have) == 0 {
		return "none"
	}
	if len(have) > 8 {
		have = append(have[:8], fmt.Sprintf("and %d more", len(have)-8))
	}
	return strings.Join(have, ", ")
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
