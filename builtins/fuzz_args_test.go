package builtins

// More fuzz targets for parsers of script input in builtins (issue 18,
// item 3): the numbers and words that builtins take besides names and
// addresses (fuzz_test.go has those, and the shared helper namesInput).
// Same shape: no input panics, a refusal names what was given, and what
// is accepted obeys the rule. Each comment says which defect of issue 15
// ("fourteen defects a hostile probe found") the target would have
// caught, had it existed then.

import (
	"fmt"
	"math"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/idmap"
)

// FuzzParseMTU covers mtu= of veth() and link.set() (parseMTU), given an
// int, a float or a string: only an int in 68..65535 is accepted, as
// given. None of issue 15's defects was in this parser.
func FuzzParseMTU(f *testing.F) {
	f.Fuzz(func(t *testing.T, n int64, s string) {
		for _, v := range []starlark.Value{starlark.MakeInt64(n), starlark.Float(n), starlark.String(s),
			starlark.MakeBigInt(new(big.Int).Lsh(big.NewInt(n), 64))} {
			m, err := parseMTU(v)
			if err != nil {
				namesInput(t, err, v.String())
				continue
			}
			i, isInt := v.(starlark.Int)
			if !isInt || m < 68 || m > 65535 {
				t.Fatalf("parseMTU(%s %s) = %d", v.Type(), v, m)
			}
			if got, _ := i.Int64(); got != int64(m) {
				t.Fatalf("parseMTU(%s) = %d", v, m)
			}
		}
	})
}

// FuzzParseSignal covers p.kill()'s signal (parseSignal), as a number and
// as a name: a number is accepted within 1..64 as given; a name is
// accepted only when it is, up to ASCII case and an optional "SIG", the
// kernel's name of the signal it gives, which reads back the same. None
// of issue 15's defects was in this parser; writing it brought to light
// that non-ASCII letters were folded into a signal name ("kıll", with a
// dotless i, was SIGKILL; seeded).
func FuzzParseSignal(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, n int64) {
		sig, err := parseSignal(starlark.MakeInt64(n))
		if err != nil {
			namesInput(t, err, fmt.Sprint(n))
		} else if int64(sig) != n || n < 1 || n > 64 {
			t.Fatalf("parseSignal(%d) = %d", n, sig)
		}
		if _, err := parseSignal(starlark.MakeBigInt(new(big.Int).Lsh(big.NewInt(n|1), 70))); err == nil {
			t.Fatalf("parseSignal(%d<<70) accepted", n|1)
		}
		sig, err = parseSignal(starlark.String(s))
		if err != nil {
			namesInput(t, err, s)
			return
		}
		name := unix.SignalName(sig)
		if name == "" || !strings.EqualFold(s, name) && !strings.EqualFold("SIG"+s, name) {
			t.Fatalf("parseSignal(%q) = %d, named %q", s, sig, name)
		}
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				t.Fatalf("parseSignal(%q) = %s: accepted a non-ASCII name", s, name)
			}
		}
		if back, err := parseSignal(starlark.String(name)); err != nil || back != sig {
			t.Fatalf("parseSignal(%q) = %s, which reads back as %d, %v", s, name, back, err)
		}
	})
}

// FuzzParseEnv covers env= of run(), spawn() and clone() (parseEnv), a
// dict of two entries (one when the keys are equal): what is accepted is
// one NAME=VALUE per entry, sorted, each splitting back at its first '='
// into the key and value given, with no NUL (execve(2) would cut it);
// a refusal names the key. None of issue 15's defects was in this parser
// (its item 13, NUL bytes, was already refused here).
func FuzzParseEnv(f *testing.F) {
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		d := starlark.NewDict(2)
		if err := d.SetKey(starlark.String(k1), starlark.String(v1)); err != nil {
			t.Fatal(err)
		}
		if err := d.SetKey(starlark.String(k2), starlark.String(v2)); err != nil {
			t.Fatal(err)
		}
		env, err := parseEnv(d)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%q", k1)) && !strings.Contains(msg, fmt.Sprintf("%q", k2)) {
				t.Fatalf("parseEnv({%q: %q, %q: %q}): error %q names neither key", k1, v1, k2, v2, msg)
			}
			return
		}
		if len(env) != d.Len() {
			t.Fatalf("parseEnv of %d entries = %q", d.Len(), env)
		}
		for i, e := range env {
			if i > 0 && env[i-1] > e {
				t.Fatalf("parseEnv: %q not sorted", env)
			}
			k, v, _ := strings.Cut(e, "=")
			got, found, err := d.Get(starlark.String(k))
			if err != nil || !found || got != starlark.String(v) || k == "" || strings.IndexByte(e, 0) >= 0 {
				t.Fatalf("parseEnv({%q: %q, %q: %q}) = %q", k1, v1, k2, v2, env)
			}
		}
		bad := starlark.NewDict(1)
		if err := bad.SetKey(starlark.String(k1), starlark.MakeInt(1)); err != nil {
			t.Fatal(err)
		}
		if _, err := parseEnv(bad); err == nil || !strings.Contains(err.Error(), "int") {
			t.Fatalf("parseEnv({%q: 1}) = %v", k1, err)
		}
	})
}

// FuzzSeconds covers numbers of seconds: timeout= of run() and p.wait(),
// monotonic=/boottime= offsets (parseSeconds), sleep() (parseSleep) and
// timeout= of readline(), expect() and wait_port() (parseTimeout), each
// given a float and an int. An accepted duration is the value given, to
// the nanosecond (and a float's precision), of the same sign; sleep and
// timeouts are within 0..a year. None of issue 15's defects was in these
// parsers; writing it brought to light that parseSeconds took NaN, ±Inf
// and more than 292 years: run(timeout=1e10) was refused as "not
// positive" and p.wait(timeout=1e10) or NaN waited without end, since
// the product overflowed time.Duration (seeded).
func FuzzSeconds(f *testing.F) {
	f.Fuzz(func(t *testing.T, x float64, n int64) {
		for _, v := range []starlark.Value{starlark.Float(x), starlark.MakeInt64(n)} {
			want, _ := starlark.AsFloat(v)
			check := func(name string, d time.Duration, err error, bounded bool) {
				t.Helper()
				if err != nil {
					namesInput(t, err, v.String())
					return
				}
				ns := want * 1e9
				if math.IsNaN(want) || math.IsInf(want, 0) || math.Abs(float64(d)-ns) > 1+math.Abs(ns)*1e-15 ||
					(d < 0) != (ns <= -1) || d > 0 && ns < 1 {
					t.Fatalf("%s(%s) = %v", name, v, d)
				}
				if bounded && (d < 0 || d > maxSeconds*time.Second) {
					t.Fatalf("%s(%s) = %v, out of range", name, v, d)
				}
			}
			d, err := parseSeconds("timeout", v)
			check("parseSeconds", d, err, false)
			d, err = parseSleep(v)
			check("parseSleep", d, err, true)
			d, limited, err := parseTimeout(v)
			if err == nil && !limited {
				t.Fatalf("parseTimeout(%s): no limit", v)
			}
			check("parseTimeout", d, err, true)
		}
		for _, v := range []starlark.Value{starlark.String(fmt.Sprint(x)), starlark.Bool(n&1 == 1)} {
			if _, err := parseSeconds("timeout", v); err == nil {
				t.Fatalf("parseSeconds(%s %s) accepted", v.Type(), v)
			}
			if _, err := parseSleep(v); err == nil {
				t.Fatalf("parseSleep(%s %s) accepted", v.Type(), v)
			}
			if _, _, err := parseTimeout(v); err == nil {
				t.Fatalf("parseTimeout(%s %s) accepted", v.Type(), v)
			}
		}
	})
}

// FuzzParseMaxOutput covers max_output= of run(), spawn() and clone()
// (parseMaxOutput): only a positive int is accepted, as given; a float,
// zero, a negative or an int beyond int64 is refused naming it. None of
// issue 15's defects was in this parser: max_output= came with the fix of
// its item 4 (unbounded output), whose cap this target guards (a value
// that wrapped to zero or below would capture without bound).
func FuzzParseMaxOutput(f *testing.F) {
	f.Fuzz(func(t *testing.T, n int64) {
		for _, v := range []starlark.Value{starlark.MakeInt64(n), starlark.Float(n),
			starlark.MakeBigInt(new(big.Int).Lsh(big.NewInt(n), 63))} {
			m, err := parseMaxOutput(v)
			if err != nil {
				if _, isInt := v.(starlark.Int); isInt {
					namesInput(t, err, v.String())
				} else {
					namesInput(t, err, v.Type())
				}
				continue
			}
			i, isInt := v.(starlark.Int)
			got, exact := i.Int64()
			if !isInt || !exact || got != m || m <= 0 {
				t.Fatalf("parseMaxOutput(%s %s) = %d", v.Type(), v, m)
			}
		}
	})
}

// FuzzCheckLabel covers netns_new()'s and host()'s labels (checkLabel):
// an accepted label is 1..64 letters, digits, '_', '-' or '.', starting
// with none of '-' or '.', so it is a name checkNetnsName takes, a single
// entry of /run/netns, and never an option to a tool ("-x") or a hidden
// or relative entry. None of issue 15's defects was in this parser; it
// holds the rule of item 13 (no NUL to cut a name short) for labels.
func FuzzCheckLabel(f *testing.F) {
	f.Fuzz(func(t *testing.T, label string) {
		err := checkLabel(label)
		if err != nil {
			namesInput(t, err, label)
			return
		}
		if len(label) < 1 || len(label) > 64 || label[0] == '-' || label[0] == '.' {
			t.Fatalf("checkLabel(%q) accepted", label)
		}
		for _, c := range []byte(label) {
			word := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
			if !word && c != '-' && c != '.' {
				t.Fatalf("checkLabel(%q) accepted byte %q", label, c)
			}
		}
		if err := checkNetnsName(label); err != nil {
			t.Fatalf("checkLabel(%q) accepted a name checkNetnsName refuses: %v", label, err)
		}
	})
}

// FuzzParseIdentity covers uid=, gid= and groups= of clone(), spawn() and
// run() (parseIdentity): what is accepted holds the ids given, each within
// 0..2^32-2 (setuid(2) takes (uid_t)-1 as "no change"), and an absent
// argument stays absent; a refusal names the argument and the value.
// None of issue 15's defects was in this parser: uid=, gid= and groups=
// came with the fix of its item 1 (identity inside a user namespace),
// whose ids this target keeps in the kernel's range.
func FuzzParseIdentity(f *testing.F) {
	f.Fuzz(func(t *testing.T, uid, gid, g1, g2 int64, which uint8) {
		opt := func(bit uint8, v starlark.Value) starlark.Value {
			if which&bit == 0 {
				return starlark.None
			}
			return v
		}
		groups := starlark.NewList([]starlark.Value{starlark.MakeInt64(g1), starlark.MakeInt64(g2)})
		id, err := parseIdentity(opt(1, starlark.MakeInt64(uid)), opt(2, starlark.MakeInt64(gid)), opt(4, groups))
		if err != nil {
			msg := err.Error()
			named := false
			for _, c := range []struct {
				name string
				n    int64
				bit  uint8
			}{{"uid", uid, 1}, {"gid", gid, 2}, {"groups element", g1, 4}, {"groups element", g2, 4}} {
				named = named || which&c.bit != 0 && strings.Contains(msg, fmt.Sprintf("%s=%d", c.name, c.n))
			}
			if !named {
				t.Fatalf("parseIdentity(uid=%d, gid=%d, groups=[%d, %d], given %03b): error %q names no value", uid, gid, g1, g2, which&7, msg)
			}
			return
		}
		if which&7 == 0 {
			if id != nil {
				t.Fatalf("parseIdentity(None, None, None) = %+v", id)
			}
			return
		}
		inRange := func(n int64) bool { return n >= 0 && n < idmap.MaxID }
		if which&1 != 0 && (id.uid != uid || !inRange(uid)) || which&1 == 0 && id.uid != -1 ||
			which&2 != 0 && (id.gid != gid || !inRange(gid)) || which&2 == 0 && id.gid != -1 ||
			id.groupsGiven != (which&4 != 0) ||
			id.groupsGiven && (len(id.groups) != 2 || id.groups[0] != g1 || id.groups[1] != g2 || !inRange(g1) || !inRange(g2)) {
			t.Fatalf("parseIdentity(uid=%d, gid=%d, groups=[%d, %d], given %03b) = %+v", uid, gid, g1, g2, which&7, id)
		}
	})
}

// FuzzParsePing covers ping()'s address, count=, timeout=, interval= and
// ttl= (parsePing): a refusal names the value; what is accepted is the
// address as written (no name lookup), count within 1..100000, timeout
// within (0, 3600] and interval within [0, 3600] seconds to the
// nanosecond, and ttl 1..255 as given (0, the kernel's default, when
// absent). None of issue 15's defects was in this parser.
func FuzzParsePing(f *testing.F) {
	f.Fuzz(func(t *testing.T, addr string, count int, timeout, interval float64, ttl int64) {
		ttlv := starlark.Value(starlark.MakeInt64(ttl))
		if ttl == 0 {
			ttlv = starlark.None
		}
		p, err := parsePing(addr, count, number(timeout), number(interval), ttlv)
		if err != nil {
			msg := err.Error()
			for _, s := range []string{strconv.Quote(addr), fmt.Sprintf("count %d ", count), fmt.Sprintf("timeout %v ", number(timeout)),
				fmt.Sprintf("interval %v ", number(interval)), fmt.Sprintf("ttl %s ", ttlv)} {
				if strings.Contains(msg, s) {
					return
				}
			}
			t.Fatalf("parsePing(%q, %d, %v, %v, %s): error %q names no value", addr, count, timeout, interval, ttlv, msg)
		}
		near := func(d time.Duration, x float64) bool { return math.Abs(float64(d)-x*1e9) <= 1+x*1e-6 }
		if !p.ip.Equal(net.ParseIP(strings.TrimSpace(addr))) || p.count != count || count < 1 || count > 100000 ||
			!(timeout > 0 && timeout <= 3600) || !near(p.timeout, timeout) ||
			!(interval >= 0 && interval <= 3600) || !near(p.interval, interval) ||
			int64(p.ttl) != ttl || ttl < 0 || ttl > 255 {
			t.Fatalf("parsePing(%q, %d, %v, %v, %s) = %+v", addr, count, timeout, interval, ttlv, p)
		}
	})
}

// FuzzParseXfer covers transfer()'s address, size=, seconds=, timeout=,
// streams=, udp= and rate= (parseXfer); bits of given say which of size=,
// seconds=, timeout= and rate= are passed. A refusal names a value or the
// clash; what is accepted sends size bytes (1..16 GiB, 4 MiB by default)
// or for seconds (0..3600], within a timeout of (0..3600] seconds (30 more
// than seconds= by default), with 1..128 streams, and paces only UDP, one
// stream, at a rate between 10 kbit/s and maxRate. None of issue 15's
// defects was in this parser; writing it brought to light that
// seconds=1e-12 became a zero duration, sent as a transfer of 0 bytes,
// and timeout=1e-12 one that gave up at once (seeded).
func FuzzParseXfer(f *testing.F) {
	f.Fuzz(func(t *testing.T, addr string, size int64, seconds, timeout float64, rate string, streams int, given uint8) {
		opt := func(bit uint8, v starlark.Value) starlark.Value {
			if given&bit == 0 {
				return starlark.None
			}
			return v
		}
		sizev, secondsv := opt(1, starlark.MakeInt64(size)), opt(2, starlark.Float(seconds))
		timeoutv, ratev := opt(4, starlark.Float(timeout)), opt(8, starlark.String(rate))
		reverse, udp := given&16 != 0, given&32 != 0
		x, err := parseXfer(addr, sizev, secondsv, ratev, timeoutv, reverse, udp, streams)
		call := fmt.Sprintf("parseXfer(%q, size=%s, seconds=%s, timeout=%s, rate=%s, streams=%d, udp=%t)", addr, sizev, secondsv, timeoutv, ratev, streams, udp)
		if err != nil {
			msg := err.Error()
			for _, s := range []string{strconv.Quote(addr), "size " + sizev.String(), "seconds " + secondsv.String(),
				"timeout " + timeoutv.String(), "rate " + ratev.String(), fmt.Sprintf("streams %d ", streams),
				fmt.Sprintf("streams=%d", streams), "size= or seconds=, not both", "rate= paces UDP", strconv.Quote(rate)} {
				if strings.Contains(msg, s) {
					return
				}
			}
			t.Fatalf("%s: error %q names no value", call, msg)
		}
		ok := x.ip.Equal(net.ParseIP(strings.TrimSpace(addr))) && x.streams == streams && streams >= 1 && streams <= 128 &&
			x.reverse == reverse && x.udp == udp && given&3 != 3
		switch {
		case given&2 != 0:
			ok = ok && x.size == 0 && seconds > 0 && seconds <= 3600 && x.dur > 0 && math.Abs(float64(x.dur)-seconds*1e9) <= 1+seconds
		case given&1 != 0:
			ok = ok && x.dur == 0 && x.size == size && size >= 1 && size <= 1<<34
		default:
			ok = ok && x.dur == 0 && x.size == 4<<20
		}
		if given&4 != 0 {
			ok = ok && timeout > 0 && timeout <= 3600 && math.Abs(float64(x.timeout)-timeout*1e9) <= 1+timeout
		} else if given&2 != 0 {
			ok = ok && (x.timeout-x.dur-30*time.Second).Abs() <= 2 // seconds+30, rounded
		} else {
			ok = ok && x.timeout == 30*time.Second
		}
		if udp {
			ok = ok && streams == 1 && x.rate >= 10e3 && x.rate <= maxRate && (given&8 != 0 || x.rate == 1e6)
		} else {
			ok = ok && given&8 == 0
		}
		if !ok || x.timeout <= 0 {
			t.Fatalf("%s = %+v", call, x)
		}
	})
}
