package builtins

import (
	"testing"
	"time"
)

// Short runs are not "0.00 s": durations and rates keep three significant
// digits in the unit that fits.
func TestTransferFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		183 * time.Microsecond:   "183 µs",
		3120 * time.Microsecond:  "3.12 ms",
		42700 * time.Microsecond: "42.7 ms",
		300 * time.Millisecond:   "300 ms",
		2050 * time.Millisecond:  "2.05 s",
		30 * time.Second:         "30.0 s",
		125 * time.Second:        "125 s",
	} {
		if got := fmtSeconds(d); got != want {
			t.Errorf("fmtSeconds(%s) = %q, want %q", d, got, want)
		}
	}
	for bps, want := range map[float64]string{
		10.8e9: "10.8 Gbit/s",
		19.9e6: "19.9 Mbit/s",
		512e3:  "512 kbit/s",
		1e6:    "1.00 Mbit/s",
		950:    "950 bit/s",
		0:      "0.00 bit/s",
	} {
		if got := fmtRate(bps); got != want {
			t.Errorf("fmtRate(%g) = %q, want %q", bps, got, want)
		}
	}
	if got := rate(1000, 0); got <= 0 {
		t.Errorf("rate over no time = %g", got)
	}
}
