// Package capture holds one captured output stream of a process: the
// bytes a reader copies from its pipe, kept up to a limit, readable at any
// time and followable line by line while they arrive.
package capture

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"
)

// Buffer is one captured stream: its first max bytes (0: all of it). What
// comes after is dropped (the writer goes on reading the pipe, so the
// producer never blocks on a full pipe), and Cut says it happened. Close
// marks the end of the stream. Every change wakes whoever waits in Line.
// A Buffer is safe for one writer and any number of readers.
type Buffer struct {
	mu      sync.Mutex
	b       []byte
	max     int64
	cut     bool
	closed  bool
	changed chan struct{} // closed and replaced at a change, if watched
	watched bool          // someone waits on changed
}

// New returns an empty buffer that keeps at most max bytes (0: no limit).
func New(max int64) *Buffer {
	return &Buffer{max: max, changed: make(chan struct{})}
}

// Write keeps what p holds, up to the limit. It never fails: what is past
// the limit is dropped. The buffer grows by doubling but never past the
// limit, so a stream cut at the limit costs that many bytes and no more.
func (c *Buffer) Write(p []byte) (int, error) {
	n := len(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 {
		room := c.max - int64(len(c.b))
		if int64(len(p)) > room {
			if !c.cut {
				c.cut = true
				defer c.wake() // the end of the stream for its followers
			}
			p = p[:room]
		}
	}
	if len(p) == 0 {
		return n, nil
	}
	if need := len(c.b) + len(p); need > cap(c.b) {
		size := max(2*cap(c.b), need, 4096)
		if c.max > 0 && int64(size) > c.max {
			size = int(c.max)
		}
		nb := make([]byte, len(c.b), size)
		copy(nb, c.b)
		c.b = nb
	}
	c.b = append(c.b, p...)
	c.wake()
	return n, nil
}

// Close marks the end of the stream: nothing more will be kept.
func (c *Buffer) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.wake()
	}
}

// wake tells the waiters something changed; c.mu is held.
func (c *Buffer) wake() {
	if c.watched {
		close(c.changed)
		c.changed, c.watched = make(chan struct{}), false
	}
}

// String returns everything kept so far.
func (c *Buffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

// Head returns a copy of the first n bytes kept (fewer if there are not
// as many). A nil Buffer has none.
func (c *Buffer) Head(n int) []byte {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.b[:min(n, len(c.b))]...)
}

// Cut reports whether the stream was cut at the limit.
func (c *Buffer) Cut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// Max returns the limit (0: none).
func (c *Buffer) Max() int64 { return c.max }

// Closed reports whether the stream has ended.
func (c *Buffer) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// ErrTimeout is what Line returns when the deadline passes first.
var ErrTimeout = errors.New("timed out")

// Line returns the line that starts at offset off, without its newline,
// and the offset after it, waiting for it until ctx is done or deadline
// passes (nil: no deadline). At the end of the stream (closed, or cut at
// the limit: nothing more is kept) a last line without a newline is
// returned as it is, and after it io.EOF. Errors are ctx.Err() and
// ErrTimeout.
func (c *Buffer) Line(ctx context.Context, off int, deadline <-chan time.Time) (string, int, error) {
	for {
		c.mu.Lock()
		if off > len(c.b) {
			off = len(c.b)
		}
		rest := c.b[off:]
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line := string(rest[:i])
			c.mu.Unlock()
			return line, off + i + 1, nil
		}
		if c.closed || c.cut {
			line := string(rest)
			c.mu.Unlock()
			if line == "" {
				return "", off, io.EOF
			}
			return line, off + len(line), nil
		}
		changed := c.changed
		c.watched = true
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return "", off, ctx.Err()
		case <-deadline:
			return "", off, ErrTimeout
		}
	}
}

// Tail returns the last lines of what was kept, at most five and 1000
// bytes, without the final newline: what an error shows of a stream.
func (c *Buffer) Tail() string {
	return Tail(c.String())
}

// Tail returns the last lines of s, at most five and 1000 bytes, without
// the final newline.
func Tail(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	t := strings.Join(lines, "\n")
	if len(t) > 1000 {
		t = t[len(t)-1000:]
	}
	return t
}
