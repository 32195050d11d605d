package reaper_test

import (
	"testing"

	"nsh.dev/nsh/internal/reaper"
)

// BenchmarkStartStop is the price of the first object a run gives the
// reaper: re-executing nsh, and killing and reaping it at the end.
func BenchmarkStartStop(b *testing.B) {
	for range b.N {
		r, err := reaper.Start()
		if err != nil {
			b.Fatal(err)
		}
		r.Stop()
	}
}

// BenchmarkAddDel is the price per object: its record, and withdrawing it.
func BenchmarkAddDel(b *testing.B) {
	r, err := reaper.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Stop()
	op := reaper.Unlink(nil, "/nonexistent/nsh-bench", 0)
	for range b.N {
		id, err := r.Add("bench", op)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Del(id); err != nil {
			b.Fatal(err)
		}
	}
}
