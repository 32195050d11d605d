package builtins

// Fuzz targets for the parsers of script input that live in builtins
// (issue 18, item 3). `go test` runs each on its seed corpus
// (testdata/fuzz/FuzzXxx); `make fuzz` runs each for FUZZTIME. Every
// target checks three things: no input panics, a refusal is an error that
// names what was given, and what is accepted obeys the kernel's rule or
// reads back the same (a round trip). Each comment says which defect of
// issue 15 ("fourteen defects a hostile probe found") the target would
// have caught, had it existed then.

import (
	"fmt"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/idmap"
	"nsh.dev/nsh/internal/nsthread"
)

// namesInput fails t unless err's message names the input s: quoted as Go
// (%q) or as Starlark (repr) quotes it, or as written.
func namesInput(t *testing.T, err error, s string) {
	t.Helper()
	msg := err.Error()
	if msg == "" {
		t.Fatalf("input %q: empty error", s)
	}
	if strings.Contains(msg, strconv.Quote(s)) || strings.Contains(msg, starlark.String(s).String()) || strings.Contains(msg, s) {
		return
	}
	t.Fatalf("error %q does not name the input %q", msg, s)
}

// FuzzParsePrefix covers addresses and CIDRs (parsePrefix, parseAddr):
// what is accepted has the prefix length as written, in decimal without a
// leading zero, keeps its host bits, and reads back the same from its
// String(). It would have caught issue 15's item 13 ("10.0.0.1/024"
// taken as /24, and "::ffff:10.0.0.1/96" sent as 10.0.0.1/0).
func FuzzParsePrefix(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePrefix(s)
		a, aerr := parseAddr(s)
		if (err == nil) != (aerr == nil) {
			t.Fatalf("parsePrefix(%q) err %v, parseAddr err %v", s, err, aerr)
		}
		if err != nil {
			namesInput(t, err, s)
			return
		}
		if !a.IPNet.IP.Equal(p.IP) || a.IPNet.String() != p.String() {
			t.Fatalf("parseAddr(%q) = %s, parsePrefix %s", s, a.IPNet, p)
		}
		ones, bits := p.Mask.Size()
		if bits != 8*len(p.IP) || (bits != 32 && bits != 128) {
			t.Fatalf("parsePrefix(%q) = %s: %d-byte address with a /%d mask of %d bits", s, p, len(p.IP), ones, bits)
		}
		addr, n, hasLen := strings.Cut(s, "/")
		if hasLen && n != strconv.Itoa(ones) {
			t.Fatalf("parsePrefix(%q) = /%d, written %q", s, ones, n)
		}
		if !hasLen && ones != bits {
			t.Fatalf("parsePrefix(%q) = %s: a bare address is a host prefix", s, p)
		}
		if ip := net.ParseIP(addr); !ip.Equal(p.IP) {
			t.Fatalf("parsePrefix(%q) = %s: host bits changed", s, p)
		}
		if (bits == 32) == strings.Contains(addr, ":") {
			t.Fatalf("parsePrefix(%q) = %s: family differs from what was written", s, p)
		}
		back, err := parsePrefix(p.String())
		if err != nil || back.String() != p.String() || !back.IP.Equal(p.IP) {
			t.Fatalf("parsePrefix(%q) = %s, which reads back as %v, %v", s, p, back, err)
		}
	})
}

// FuzzParseRoute covers route destinations and gateways (parseRoute):
// the destination is the network of what was written, with its prefix
// length as written, and gateway and destination are of one family, the
// one written. It would have caught issue 15's item 13 (IPv4-mapped
// addresses, /024 read as /24) in routes.
func FuzzParseRoute(f *testing.F) {
	f.Fuzz(func(t *testing.T, dst, via string) {
		r, err := parseRoute(dst, via)
		if err != nil {
			msg := err.Error()
			if msg == "" || (!strings.Contains(msg, dst) && !strings.Contains(msg, via) &&
				!strings.Contains(msg, strconv.Quote(dst)) && !strings.Contains(msg, strconv.Quote(via))) {
				t.Fatalf("parseRoute(%q, %q): error %q names neither", dst, via, msg)
			}
			return
		}
		if r.dst == nil {
			t.Fatalf("parseRoute(%q, %q): no destination", dst, via)
		}
		if !r.dst.IP.Equal(r.dst.IP.Mask(r.dst.Mask)) {
			t.Fatalf("parseRoute(%q, %q) = %s: host bits set", dst, via, r.dst)
		}
		if r.v6 != (r.dst.IP.To4() == nil) || (r.via != nil && (r.via.To4() == nil) != r.v6) {
			t.Fatalf("parseRoute(%q, %q) = %s via %s: families differ", dst, via, r.dst, r.via)
		}
		if r.via != nil && strings.Contains(via, ":") != (r.via.To4() == nil) {
			t.Fatalf("parseRoute(%q, %q): gateway taken as %s", dst, via, r.via)
		}
		if _, n, ok := strings.Cut(dst, "/"); ok {
			if ones, _ := r.dst.Mask.Size(); n != strconv.Itoa(ones) {
				t.Fatalf("parseRoute(%q, %q) = %s: prefix length written %q", dst, via, r.dst, n)
			}
		}
	})
}

// kernelNameOK is the kernel's dev_valid_name, plus the two bytes nsh
// refuses because the kernel would not take the name literally ('%', NUL).
func kernelNameOK(name string) bool {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return false
	}
	return !strings.ContainsAny(name, "/: \t\n\v\f\r%\x00")
}

// FuzzLinkName covers link names (checkLinkName): an accepted name is one
// the kernel takes as written (1..15 bytes, no '/', ':' or whitespace, not
// "." or ".."), and no '%' (a template) or NUL (a cut). It would have
// caught issue 15's item 3 ("pa%d" became pa0; a NUL was said to be
// whitespace).
func FuzzLinkName(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		err := checkLinkName("veth", name)
		if err != nil {
			if name != "" {
				namesInput(t, err, name)
			}
			// Refused for its NUL alone, the message says so (not
			// "whitespace", as issue 15 found).
			if strings.ContainsRune(name, 0) && checkLinkName("veth", strings.ReplaceAll(name, "\x00", "x")) == nil && !strings.Contains(err.Error(), "NUL") {
				t.Fatalf("checkLinkName(%q) = %v: does not say NUL", name, err)
			}
			return
		}
		if !kernelNameOK(name) {
			t.Fatalf("checkLinkName accepts %q, which the kernel would refuse or rename", name)
		}
	})
}

// FuzzHostname covers hostnames and domainnames (checkUTSName): what is
// accepted is at most 64 bytes without a NUL, so sethostname(2) sets
// exactly it. It would have caught issue 15's item 13 (hostname("a\x00b")
// silently set "a").
func FuzzHostname(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		err := checkUTSName(name)
		if err != nil {
			namesInput(t, err, name)
			return
		}
		if len(name) > 64 || strings.IndexByte(name, 0) >= 0 {
			t.Fatalf("checkUTSName accepts %q", name)
		}
	})
}

// FuzzNamespaceTarget covers string and pid targets of setns() and every
// ns= (parseTargetString, targetPid, checkNetnsName): a name is a single
// entry directly under /run/netns, a path begins with '/' or '.', and a
// pid is positive. It would have caught issue 15's item 13 (a NUL cut a
// C string short); none of the other defects was in this parser.
func FuzzNamespaceTarget(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, pid int64) {
		isPath, err := parseTargetString(s)
		if err != nil {
			if s != "" {
				namesInput(t, err, s)
			}
		} else if strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("target %q with a NUL accepted", s)
		} else if isPath != (strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".")) {
			t.Fatalf("target %q taken as a path: %v", s, isPath)
		} else if !isPath {
			p := filepath.Join(netnsDir, s)
			if filepath.Dir(p) != netnsDir || filepath.Base(p) != s {
				t.Fatalf("netns name %q leads to %s, not an entry of %s", s, p, netnsDir)
			}
		}
		n, err := targetPid(starlark.MakeInt64(pid))
		if err != nil {
			namesInput(t, err, strconv.FormatInt(pid, 10))
		} else if int64(n) != pid || n <= 0 {
			t.Fatalf("targetPid(%d) = %d", pid, n)
		}
	})
}

// FuzzNamespaceKinds covers namespace kinds (parseKinds): names and
// CLONE_NEW* flags; what is accepted is a non-empty set of known kinds.
// None of issue 15's defects was in this parser.
func FuzzNamespaceKinds(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string, flags int64) {
		for _, arg := range []starlark.Value{starlark.String(name), starlark.MakeInt64(flags)} {
			got, err := parseKinds(starlark.Tuple{arg})
			if err != nil {
				namesInput(t, err, strings.Trim(arg.String(), `"`))
				continue
			}
			if got == 0 || got&^nsthread.AllFlags != 0 {
				t.Fatalf("parseKinds(%s) = %#x", arg, got)
			}
		}
	})
}

// shWords splits s with /bin/sh (eval "set -- $s"), the reference splitCommand
// follows; ok is false when sh refused it.
func shWords(s string) ([]string, bool) {
	out, err := exec.Command("/bin/sh", "-c", `eval "set -- $1"; for a; do printf '%s\0' "$a"; done`, "sh", s).Output()
	if err != nil {
		return nil, false
	}
	words := strings.Split(string(out), "\x00")
	return words[:len(words)-1], true
}

// shOracle reports whether sh would split s with no expansion, no second
// command and nothing else splitCommand leaves out, so that sh's words
// are the reference.
func shOracle(s string) bool {
	if len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(" \t'\"\\-_./,:+@%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// FuzzSplitCommand covers the splitting of run("...")/spawn("...")
// command strings (splitCommand): words quoted back with change.Quote (as
// nsh -x prints them) split into the same words, and where sh splits the
// string without expanding anything, the words are sh's; an empty word
// comes only from quotes. None of issue 15's defects was in this parser;
// writing it brought two of its own to light (a trailing backslash was
// dropped, and a backslash-newline between words made an empty word),
// which its seeds keep.
func FuzzSplitCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitCommand(s)
		if err != nil {
			namesInput(t, err, s)
			if !strings.ContainsAny(s, `'"`) {
				t.Fatalf("splitCommand(%q) = %v without a quote", s, err)
			}
			return
		}
		for _, w := range words {
			if w == "" && !strings.ContainsAny(s, `'"`) {
				t.Fatalf("splitCommand(%q) = %q: an empty word comes only from quotes", s, words)
			}
		}
		if !strings.ContainsAny(s, `'"\`) {
			if want := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }); !reflect.DeepEqual(words, want) && len(want)+len(words) > 0 {
				t.Fatalf("splitCommand(%q) = %q, want %q", s, words, want)
			}
		}
		q := make([]string, len(words))
		for i, w := range words {
			q[i] = change.Quote(w)
		}
		back, err := splitCommand(strings.Join(q, " "))
		if err != nil || !reflect.DeepEqual(back, words) && len(back)+len(words) > 0 {
			t.Fatalf("splitCommand(%q) = %q; quoted back as %q it splits into %q, %v", s, words, strings.Join(q, " "), back, err)
		}
		if shOracle(s) {
			if want, ok := shWords(s); ok && !reflect.DeepEqual(words, want) && len(want)+len(words) > 0 {
				t.Fatalf("splitCommand(%q) = %q; sh splits it into %q", s, words, want)
			}
		}
	})
}

// FuzzSysctlKey covers sysctl keys (sysctlPath): an accepted key is a
// clean path under /proc/sys with no "." or ".." step, and
// validSysctlKey agrees with sysctl's name pattern. None of issue 15's
// defects was in this parser.
func FuzzSysctlKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, key string) {
		p, err := sysctlPath(key)
		if err != nil {
			namesInput(t, err, key)
			return
		}
		rel, ok := strings.CutPrefix(p, "/proc/sys/")
		if !ok || filepath.Clean(p) != p || rel == "" {
			t.Fatalf("sysctlPath(%q) = %q: not a clean path under /proc/sys", key, p)
		}
		for _, part := range strings.Split(rel, "/") {
			if part == "." || part == ".." || part == "" {
				t.Fatalf("sysctlPath(%q) = %q: has a %q step", key, p, part)
			}
		}
		if strings.ContainsAny(key, " \t\n\x00*?[") {
			t.Fatalf("sysctlPath(%q) accepted", key)
		}
	})
}

// FuzzParseRate covers netem()'s rate= (parseRate), as a string and as a
// number: an accepted rate lies between minRate and maxRate and reads back
// the same written as N"bit"; a refusal names the value. None of issue
// 15's defects was in this parser; writing it brought to light that
// "nanbit" was said to be negative (a seed keeps it).
func FuzzParseRate(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, n float64) {
		for _, v := range []starlark.Value{starlark.String(s), starlark.Float(n)} {
			r, err := parseRate(v)
			if err != nil {
				namesInput(t, err, strings.Trim(v.String(), `"`))
				if strings.Contains(err.Error(), "negative") && !strings.HasPrefix(strings.TrimSpace(v.String()), "-") && !strings.HasPrefix(strings.TrimSpace(s), "-") {
					t.Fatalf("parseRate(%s) = %v, which is not negative", v, err)
				}
				continue
			}
			if r < minRate || r > maxRate {
				t.Fatalf("parseRate(%s) = %d bit/s, out of range", v, r)
			}
			if back, err := parseRate(starlark.String(fmt.Sprintf("%dbit", r))); err != nil || back != r {
				t.Fatalf("parseRate(%s) = %d, which reads back as %d, %v", v, r, back, err)
			}
		}
	})
}

// FuzzParseNetem covers netem()'s delay=, jitter= and loss= (parseNetem,
// parseDuration, parsePercent); "" stands for None. An accepted request
// has a delay of at most maxDelay that the kernel can hold (a whole
// microsecond or more when not zero), jitter only with a delay, and loss
// within 0..100; a refusal names the value. None of issue 15's defects
// was in these parsers.
func FuzzParseNetem(f *testing.F) {
	f.Fuzz(func(t *testing.T, delay, jitter, loss string, n float64) {
		val := func(s string) starlark.Value {
			if s == "" {
				return starlark.None
			}
			return starlark.String(s)
		}
		a, err := parseNetem(val(delay), val(jitter), val(loss), starlark.None)
		if err != nil {
			msg := err.Error()
			if msg == "" || !strings.Contains(msg, delay) && !strings.Contains(msg, jitter) && !strings.Contains(msg, loss) &&
				!strings.Contains(msg, strconv.Quote(delay)) && !strings.Contains(msg, strconv.Quote(jitter)) && !strings.Contains(msg, strconv.Quote(loss)) {
				t.Fatalf("parseNetem(%q, %q, %q): error %q names none", delay, jitter, loss, msg)
			}
		} else {
			for _, d := range []time.Duration{a.delay, a.jitter} {
				if d < 0 || d > maxDelay || d > 0 && d < time.Microsecond {
					t.Fatalf("parseNetem(%q, %q, %q): duration %v", delay, jitter, loss, d)
				}
			}
			if a.jitter > 0 && a.delay == 0 || a.loss < 0 || a.loss > 100 || math.IsNaN(a.loss) {
				t.Fatalf("parseNetem(%q, %q, %q) = %+v", delay, jitter, loss, a)
			}
		}
		for _, v := range []starlark.Value{starlark.Float(n), starlark.MakeInt64(int64(n))} {
			if d, err := parseDuration("delay", v); err != nil {
				namesInput(t, err, v.String())
			} else if d < 0 || d > maxDelay || d > 0 && d < time.Microsecond {
				t.Fatalf("parseDuration(%s) = %v", v, d)
			}
			if p, err := parsePercent("loss", v); err != nil {
				namesInput(t, err, v.String())
			} else if p < 0 || p > 100 {
				t.Fatalf("parsePercent(%s) = %v", v, p)
			}
		}
	})
}

// FuzzIDMap covers uidmap()/gidmap() and tuples in id-map lists
// (makeIDMap, parseIDMaps) and the kernel's rules for a whole map
// (idmap.Map.Check): an accepted line holds exactly the numbers given,
// within 0..2^32-2; n copies of it make a list that Check then refuses
// (copies overlap), with a message of at most 512 bytes. Of issue 15's
// defects, none: copies overlap, so a map too long for a page is refused
// for that too (item 2 is internal/idmap's FuzzCheck's). Writing it
// brought an int64 overflow in the range check to light (seeded).
func FuzzIDMap(f *testing.F) {
	f.Fuzz(func(t *testing.T, inside, outside, count int64, n uint16) {
		m, err := makeIDMap("uid", inside, outside, count)
		given := fmt.Sprintf("uidmap(%d, %d, %d)", inside, outside, count)
		if err != nil {
			if !strings.Contains(err.Error(), given) {
				t.Fatalf("makeIDMap: error %q does not name %s", err, given)
			}
			return
		}
		if int64(m.Inside) != inside || int64(m.Outside) != outside || int64(m.Count) != count || count < 1 ||
			inside+count > idmap.MaxID || outside+count > idmap.MaxID || inside+count < inside || outside+count < outside {
			t.Fatalf("%s accepted as %s", given, m)
		}
		tuples := make([]starlark.Value, int(n%400))
		for i := range tuples {
			tuples[i] = starlark.Tuple{starlark.MakeInt64(inside), starlark.MakeInt64(outside), starlark.MakeInt64(count)}
		}
		got, err := parseIDMaps("uid", starlark.NewList(tuples))
		if err != nil || len(got) != len(tuples) {
			t.Fatalf("parseIDMaps of %d copies of %s: %d lines, %v", len(tuples), given, len(got), err)
		}
		err = got.Check("uid", nil)
		switch {
		case len(got) == 1 && err != nil:
			t.Fatalf("one line %s refused: %v", given, err)
		case len(got) > 1 && err == nil:
			t.Fatalf("%d copies of %s (overlapping) accepted", len(got), given)
		case err != nil && len(err.Error()) > 512:
			t.Fatalf("a %d-line map gives a %d-byte message", len(got), len(err.Error()))
		}
	})
}
