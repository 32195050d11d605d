package labs

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// fast decodes line with the hand-written reader only.
func fast(line []byte) (Record, bool) {
	var r Record
	p := lineParser{b: line}
	ok := p.record(&r) && p.i == len(line)
	return r, ok
}

// randString is a string of ASCII (every byte, the escaped ones too), or
// now and then one with a rune outside it.
func randString(rng *rand.Rand) string {
	b := make([]byte, rng.IntN(12))
	for i := range b {
		b[i] = byte(rng.IntN(0x80))
	}
	s := string(b)
	if rng.IntN(8) == 0 {
		s += "é\u2028"
	}
	return s
}

func randRecord(rng *rand.Rand) Record {
	r := Record{ID: rng.Uint64() >> uint(rng.IntN(64))}
	if rng.IntN(4) == 0 {
		r.ID = math.MaxUint64
	}
	if rng.IntN(3) > 0 {
		r.What = randString(rng)
	}
	if rng.IntN(5) == 0 {
		r.Del = true
		return r
	}
	for range rng.IntN(4) {
		s := Step{Kind: randString(rng), Arg: rng.Uint64(), NetIno: rng.Uint64N(1 << 33)}
		for _, f := range []*string{&s.Path, &s.Value, &s.Expect, &s.Mnt, &s.Net, &s.UTS} {
			if rng.IntN(2) == 0 {
				*f = randString(rng)
			}
		}
		if rng.IntN(3) == 0 {
			s.Arg = 0
		}
		r.Steps = append(r.Steps, s)
	}
	return r
}

// TestDecodeRecordReadsMarshal: every line json.Marshal writes for a
// record of ASCII strings is read by hand, to the record written.
func TestDecodeRecordReadsMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	byHand := 0
	for range 20000 {
		want := randRecord(rng)
		line, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var got Record
		if err := decodeRecord(line, &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: read %+v, want %+v", line, got, want)
		}
		r, ok := fast(line)
		ascii := true
		for _, c := range line {
			ascii = ascii && c < 0x80
		}
		if ascii && !ok {
			t.Fatalf("%s: left to encoding/json", line)
		}
		if ok {
			byHand++
			if !reflect.DeepEqual(r, want) {
				t.Fatalf("%s: read by hand as %+v, want %+v", line, r, want)
			}
		}
	}
	if byHand < 10000 {
		t.Fatalf("only %d of 20000 lines read by hand", byHand)
	}
}

// TestDecodeRecordJournalLine: the lines of a lab's journal, as Journal
// writes them, are read by hand.
func TestDecodeRecordJournalLine(t *testing.T) {
	for _, line := range []string{
		`{"id":1,"what":"netns \"bn-c0\"","steps":[{"kind":"umount","arg":70,"path":"/run/netns/bn-c0"},{"kind":"unlink","arg":9,"path":"/run/netns/bn-c0"}]}`,
		`{"id":201,"what":"veth \"a\"/\"b\"","steps":[{"kind":"dellink","arg":2,"path":"a","net":"/run/netns/x","net_ino":4026532290}]}`,
		`{"id":7,"del":true}`,
		`{"id":3,"steps":[]}`,
	} {
		want := Record{}
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatal(err)
		}
		got, ok := fast([]byte(line))
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: read by hand: %v %+v, want %+v", line, ok, got, want)
		}
	}
}

// FuzzDecodeRecord: a line the hand-written reader takes is one
// encoding/json reads the same.
func FuzzDecodeRecord(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		line, _ := json.Marshal(randRecord(rng))
		f.Add(line)
	}
	for _, s := range []string{
		`{"id":1,"steps":[{"kind":"a","path":"p"}],"steps":[{"kind":"b"}]}`,
		`{"id":1,"id":2}`, `{"ID":1}`, `{"id":01}`, `{"id":1.5}`, `{"id":1e3}`, `{"id":-1}`,
		`{"id":18446744073709551616}`, `{"id":1,"what":"\u00e9"}`, `{"id":1,"what":"\u0041\ud83d\ude00"}`,
		`{"id":1,"what":"a\x"}`, `{"id":1,"what":null}`, `{"id":1,"steps":null}`, `{"id":1} `,
		`{"id":1,"del":tru}`, `{"id":1,"steps":[{"kind":"a","kind":"b"}]}`, `{"id":1,"x":2}`, `{}`,
		`{"id":1,"what":"\/\b\f\n\r\t\u001f"}`, `{"id":1,"steps":[{}]}`, `{"id":1,"steps":[,]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := fast(line)
		if !ok {
			return
		}
		var want Record
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatalf("%q read by hand as %+v, but encoding/json refuses it: %v", line, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q read by hand as %+v, by encoding/json as %+v", line, got, want)
		}
	})
}
