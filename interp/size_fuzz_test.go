package interp

// Fuzz target for sizes given on the command line (issue 18, item 3); see
// builtins/fuzz_test.go for the others. `go test` runs it on its seed
// corpus (testdata/fuzz), `make fuzz` for FUZZTIME.

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseSize covers --max-memory (ParseSize): no input panics; a
// refusal names the text given; an accepted size is 0 (no limit) only
// when the text says none, unlimited or a zero number, and otherwise lies
// between 1 MiB and 2^63-1 bytes; and what FormatSize prints of it (the
// limit's messages) reads back within its rounding (5%). It guards the
// memory limit of issue 15's item 5 (interpreter crashes: a limit that
// wrapped or read as "none" would let list(range(1<<40)) kill nsh).
// Writing it brought to light that FormatSize prints PiB and EiB, which
// ParseSize did not read (seeded).
func FuzzParseSize(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(s)) {
				t.Fatalf("ParseSize(%q): error %q does not name it", s, msg)
			}
			return
		}
		if n == 0 {
			word := strings.ToLower(strings.TrimSpace(s))
			num := strings.TrimRight(word, "kmgtpeib ")
			if f, err := strconv.ParseFloat(num, 64); word != "none" && word != "unlimited" && (err != nil || f != 0) {
				t.Fatalf("ParseSize(%q) = 0, no limit", s)
			}
			return
		}
		if n < 1<<20 || n > math.MaxInt64 {
			t.Fatalf("ParseSize(%q) = %d, out of range", s, n)
		}
		text := FormatSize(n)
		back, err := ParseSize(text)
		if err != nil {
			if text == "8 EiB" { // n rounded up to 2^63, one past the range
				return
			}
			t.Fatalf("ParseSize(%q) = %d, printed %q, which reads back as %v", s, n, text, err)
		}
		if d := math.Abs(float64(back) - float64(n)); d > float64(n)/20 {
			t.Fatalf("ParseSize(%q) = %d, printed %q, which reads back as %d", s, n, text, back)
		}
	})
}
