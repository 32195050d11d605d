package builtins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/capture"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/lifecycle"
)

// Following a running process's captured output: readline() and expect()
// read the stream line by line from where the last of them stopped, while
// .stdout and .stderr keep showing all of it.

var matchType = recordType("nsh.match", `What p.expect() found: the line and the match in it.
str() is the line.`, []doc.Attr{
	{Name: "line", Doc: "the whole line that matched, without its newline"},
	{Name: "match", Doc: "the part of the line the pattern matched"},
	{Name: "groups", Doc: "the pattern's groups, a tuple of strings (None for a group that matched nothing)"},
})

const readlineDoc = `Returns the next line the process writes on stream ("stdout" or
"stderr", which must be captured: stdout=True), without its newline, as it
comes: it waits up to timeout seconds (None: until the line comes or the
stream ends; Ctrl-C interrupts), and fails if none comes in time. At the
end of the stream (the process exited and what it wrote was read) it
returns None. readline() and expect() go on from where the last of them
stopped; .stdout still holds everything. Lines past max_output are not seen.
  p = spawn(["sh", "-c", "echo a; sleep 0.2; echo b"], stdout=True)
  p.readline(timeout=5)      # "a"
  while True:
      line = p.readline()
      if line == None:
          break
      print(line)`

const expectDoc = `Waits until the process writes a line on stream that matches the regular
expression pattern (Go syntax, searched in the line, as re.search) and
returns an nsh.match: .line, .match and .groups. Lines before it are
passed over; the next readline() or expect() starts after it. It fails
when timeout seconds pass first (None: no limit), naming the pattern, the
process and the last lines it wrote, and when the stream ends first (the
process exited: with its exit code). Ctrl-C interrupts it. The stream must
be captured (stdout=True or stderr=True).
  p = spawn(["python3", "-u", "-m", "http.server", "8000"], ns=h1, stdout=True)
  m = p.expect("port (\\d+)", timeout=10)
  print(m.groups[0])          # "8000"
A program writing to a pipe may hold its output back in a buffer until it
exits: ask it for unbuffered or line-buffered output (python3 -u,
stdbuf -oL CMD, grep --line-buffered), or wait_port() for a server.`

// streamOf returns the index and buffer of the captured stream named s.
func (p *Process) streamOf(s string) (int, *capture.Buffer, error) {
	fd := 0
	switch s {
	case "stdout":
		fd = 1
	case "stderr":
		fd = 2
	default:
		return 0, nil, fmt.Errorf("stream must be \"stdout\" or \"stderr\", not %q", s)
	}
	if p.bufs[fd] == nil {
		return 0, nil, fmt.Errorf("%s of %s is not captured: start it with %s=True", s, p.describe(), s)
	}
	return fd, p.bufs[fd], nil
}

// describe names the process in errors: process 42 [sh -c "echo a"].
func (p *Process) describe() string {
	return fmt.Sprintf("process %d %s", p.pid, quoteArgv(p.argv))
}

// parseTimeout reads a timeout= of seconds: None is no limit (ok false), a
// negative number or a non-number is refused, naming the value.
func parseTimeout(v starlark.Value) (d time.Duration, ok bool, err error) {
	if v == starlark.None {
		return 0, false, nil
	}
	f, isNum := starlark.AsFloat(v)
	if !isNum {
		return 0, false, fmt.Errorf("timeout must be a number of seconds or None, not %s %s", v.Type(), v)
	}
	if !(f >= 0) || f > maxSeconds {
		return 0, false, fmt.Errorf("timeout %s is out of range (0..%d seconds, or None)", v, int(maxSeconds))
	}
	return time.Duration(f * float64(time.Second)), true, nil
}

// maxSeconds bounds timeouts and sleeps: a year, far below what a
// time.Duration holds.
const maxSeconds = 365 * 24 * 3600

// nextLine reads the next line of stream fd for readline() and expect().
// p.follow is held.
func (p *Process) nextLine(ctx context.Context, fd int, deadline <-chan time.Time) (string, error) {
	line, next, err := p.bufs[fd].Line(ctx, p.next[fd], deadline)
	p.next[fd] = next
	return line, err
}

func (p *Process) readlineMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var timeout starlark.Value = starlark.None
	stream := "stdout"
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "timeout?", &timeout, "stream?", &stream); err != nil {
		return nil, err
	}
	fd, _, err := p.streamOf(stream)
	if err != nil {
		return nil, err
	}
	d, limited, err := parseTimeout(timeout)
	if err != nil {
		return nil, err
	}
	deadline, stop := deadlineAfter(d, limited)
	defer stop()
	p.follow.Lock()
	defer p.follow.Unlock()
	line, err := p.nextLine(lifecycle.From(th).Context(), fd, deadline)
	switch {
	case err == nil:
		return starlark.String(line), nil
	case errors.Is(err, io.EOF):
		return starlark.None, nil
	case errors.Is(err, capture.ErrTimeout):
		return nil, fmt.Errorf("readline: no line on %s of %s within %s", stream, p.describe(), d)
	}
	return nil, fmt.Errorf("readline on %s of %s: interrupted", stream, p.describe())
}

func (p *Process) expectMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pattern string
	var timeout starlark.Value = starlark.Float(5)
	stream := "stdout"
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "pattern", &pattern, "timeout?", &timeout, "stream?", &stream); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("expect: bad pattern %q: %v", pattern, err)
	}
	fd, b, err := p.streamOf(stream)
	if err != nil {
		return nil, err
	}
	d, limited, err := parseTimeout(timeout)
	if err != nil {
		return nil, err
	}
	deadline, stop := deadlineAfter(d, limited)
	defer stop()
	ctx := lifecycle.From(th).Context()
	p.follow.Lock()
	defer p.follow.Unlock()
	for {
		line, err := p.nextLine(ctx, fd, deadline)
		if err == nil {
			if m := re.FindStringSubmatchIndex(line); m != nil {
				return newMatch(line, m), nil
			}
			continue
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil, p.endedBefore(ctx, stream, b, pattern)
		case errors.Is(err, capture.ErrTimeout):
			return nil, fmt.Errorf("expect: no line on %s of %s matched %q within %s%s", stream, p.describe(), pattern, d, lastOutput(stream, b))
		}
		return nil, fmt.Errorf("expect %q on %s of %s: interrupted", pattern, stream, p.describe())
	}
}

// endedBefore is expect()'s error when the stream ended before a line
// matched: cut at max_output, the process exited (with its status), or it
// closed the stream and runs on.
func (p *Process) endedBefore(ctx context.Context, stream string, b *capture.Buffer, pattern string) error {
	if b.Cut() {
		return fmt.Errorf("expect: %s of %s was cut at max_output (%d bytes) before a line matched %q; pass a larger max_output= (None: no limit)", stream, p.describe(), b.Max(), pattern)
	}
	// The stream ends when the process exits; its reaping may come a
	// moment later.
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
	case <-t.C:
	}
	if !p.isDone() {
		return fmt.Errorf("expect: %s closed its %s before a line matched %q (it still runs)%s", p.describe(), stream, pattern, lastOutput(stream, b))
	}
	status := fmt.Sprintf("code %d", exitCode(p.ws))
	if p.ws.Signaled() {
		status += " (" + unix.SignalName(p.ws.Signal()) + ")"
	}
	return fmt.Errorf("expect: %s exited with %s before a line on %s matched %q%s", p.describe(), status, stream, pattern, lastOutput(stream, b))
}

// lastOutput is the end of an expect() error: the last lines seen.
func lastOutput(stream string, b *capture.Buffer) string {
	if t := b.Tail(); t != "" {
		return fmt.Sprintf("; last output on %s:\n%s", stream, t)
	}
	return fmt.Sprintf("; nothing was written on %s", stream)
}

// newMatch makes the nsh.match of line from FindStringSubmatchIndex's m.
func newMatch(line string, m []int) *record {
	groups := make(starlark.Tuple, 0, len(m)/2-1)
	for i := 2; i+1 < len(m); i += 2 {
		if m[i] < 0 {
			groups = append(groups, starlark.None)
		} else {
			groups = append(groups, starlark.String(line[m[i]:m[i+1]]))
		}
	}
	return &record{t: &matchType, str: line, fields: map[string]starlark.Value{
		"line":   starlark.String(line),
		"match":  starlark.String(line[m[0]:m[1]]),
		"groups": groups,
	}}
}

// deadlineAfter is a channel that fires d from now when limited, else
// never; stop releases its timer.
func deadlineAfter(d time.Duration, limited bool) (<-chan time.Time, func()) {
	if !limited {
		return nil, func() {}
	}
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}
