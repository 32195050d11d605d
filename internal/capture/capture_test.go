package capture

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestKeepsUpToTheLimit(t *testing.T) {
	c := New(10)
	for _, s := range []string{"0123", "45678", "9abc", "def"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if c.String() != "0123456789" || !c.Cut() || c.Max() != 10 {
		t.Errorf("kept %q, cut %v", c.String(), c.Cut())
	}
	c = New(0)
	c.Write([]byte(strings.Repeat("x", 100000)))
	if len(c.String()) != 100000 || c.Cut() {
		t.Errorf("no limit: kept %d, cut %v", len(c.String()), c.Cut())
	}
}

// Line hands out lines as they come, the last one without a newline at
// the end of the stream, then io.EOF; String still has everything.
func TestLineFollows(t *testing.T) {
	c := New(0)
	ctx := context.Background()
	go func() {
		for _, s := range []string{"a\nb", "c\n", "last"} {
			time.Sleep(10 * time.Millisecond)
			c.Write([]byte(s))
		}
		c.Close()
	}()
	var got []string
	off := 0
	for {
		line, next, err := c.Line(ctx, off, nil)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, line)
		off = next
	}
	if strings.Join(got, "|") != "a|bc|last" {
		t.Errorf("lines %q", got)
	}
	if c.String() != "a\nbc\nlast" || !c.Closed() {
		t.Errorf("String %q", c.String())
	}
}

func TestLineStops(t *testing.T) {
	c := New(0)
	c.Write([]byte("partial"))
	timer := time.NewTimer(20 * time.Millisecond)
	defer timer.Stop()
	if _, off, err := c.Line(context.Background(), 0, timer.C); !errors.Is(err, ErrTimeout) || off != 0 {
		t.Errorf("deadline: %d, %v", off, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, _, err := c.Line(ctx, 0, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
	// Cut at the limit, the stream has ended for its followers.
	c = New(4)
	c.Write([]byte("ab\ncdef\n"))
	line, off, err := c.Line(context.Background(), 3, nil)
	if line != "c" || off != 4 || err != nil {
		t.Errorf("after the cut: %q, %d, %v", line, off, err)
	}
	if _, _, err := c.Line(context.Background(), off, nil); !errors.Is(err, io.EOF) {
		t.Errorf("at the cut: %v", err)
	}
}

func TestTail(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"\n\n":                    "",
		"a\nb\n":                  "a\nb",
		"1\n2\n3\n4\n5\n6\n":      "2\n3\n4\n5\n6",
		strings.Repeat("y", 1500): strings.Repeat("y", 1000),
	} {
		if got := Tail(in); got != want {
			t.Errorf("Tail(%.20q) = %.20q, want %.20q", in, got, want)
		}
	}
}
