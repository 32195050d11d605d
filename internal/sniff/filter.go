package sniff

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// FilterGrammar is the filter language, as help() shows it.
const FilterGrammar = `A filter is primitives joined by "and" (all must hold), in tcpdump's words:
  tcp, udp, sctp, icmp, icmp6 (or icmpv6), arp, ip, ip6
  [src|dst] host ADDR       IPv4 (also ARP's addresses) or IPv6
  [src|dst] port N          TCP, UDP or SCTP, over IPv4 or IPv6
  tcp [src|dst] port N      udp ... and sctp ... likewise
e.g. "icmp", "udp port 53", "host 10.0.0.2 and tcp port 8080",
"src host fd00::1 and icmp6". There is no "or", "not" or parentheses.
Ports of IPv4 fragments after the first, and of IPv6 packets with
extension headers, are not seen (as in tcpdump).`

// Family bits: the network layers a filter can accept.
const (
	famIPv4 = 1 << iota
	famIPv6
	famARP
	famAll = famIPv4 | famIPv6 | famARP
)

// IP protocol numbers the filter names.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// Direction of a host or port primitive.
type dir int

const (
	dirAny dir = iota
	dirSrc
	dirDst
)

type hostCond struct {
	dir  dir
	addr netip.Addr
}

type portCond struct {
	dir  dir
	port uint16
}

// Filter is a parsed filter: the conjunction of its primitives.
type Filter struct {
	text   string
	fams   int
	protos []uint8 // nil: any
	hosts  []hostCond
	ports  []portCond
}

// String returns the filter as it was written.
func (f *Filter) String() string { return f.text }

// FilterError is a filter that does not parse: it names the token.
type FilterError struct {
	Filter string
	Token  string // the offending word, "" at the end of the filter
	Pos    int    // its 1-based word position
	Msg    string
}

func (e *FilterError) Error() string {
	if e.Token == "" {
		return fmt.Sprintf("filter %q: %s", e.Filter, e.Msg)
	}
	return fmt.Sprintf("filter %q: word %d %q: %s", e.Filter, e.Pos, e.Token, e.Msg)
}

// protoWords maps protocol primitives to the families and IP protocols they allow.
var protoWords = map[string]struct {
	fams   int
	protos []uint8
}{
	"tcp":    {famIPv4 | famIPv6, []uint8{protoTCP}},
	"udp":    {famIPv4 | famIPv6, []uint8{protoUDP}},
	"sctp":   {famIPv4 | famIPv6, []uint8{protoSCTP}},
	"icmp":   {famIPv4, []uint8{protoICMP}},
	"icmp6":  {famIPv6, []uint8{protoICMPv6}},
	"icmpv6": {famIPv6, []uint8{protoICMPv6}},
	"arp":    {famARP, nil},
	"ip":     {famIPv4, nil},
	"ip6":    {famIPv6, nil},
}

const expected = "want tcp, udp, sctp, icmp, icmp6, arp, ip, ip6, host ADDR, port N, src or dst"

// ParseFilter parses a filter (see FilterGrammar). An empty or blank
// filter accepts every packet.
func ParseFilter(text string) (*Filter, error) {
	f := &Filter{text: text, fams: famAll}
	words := strings.Fields(text)
	fail := func(i int, msg string, args ...any) error {
		e := &FilterError{Filter: text, Msg: fmt.Sprintf(msg, args...)}
		if i < len(words) {
			e.Token, e.Pos = words[i], i+1
		}
		return e
	}
	i := 0
	for i < len(words) {
		if i > 0 {
			switch strings.ToLower(words[i]) {
			case "and", "&&":
				i++
				if i == len(words) {
					return nil, fail(i, `ends with "and": %s after it`, expected)
				}
			case "or", "||", "not", "!":
				return nil, fail(i, `only "and" joins primitives here (no or, not or parentheses)`)
			default:
				return nil, fail(i, `want "and" between primitives`)
			}
		}
		w := strings.ToLower(words[i])
		switch {
		case protoWords[w].fams != 0:
			p := protoWords[w]
			f.allow(p.fams, p.protos)
			i++
			// "tcp port 80", "udp src port 53"
			if i < len(words) && (w == "tcp" || w == "udp" || w == "sctp") && isPortWord(words, i) {
				n, err := f.port(words, i, fail)
				if err != nil {
					return nil, err
				}
				i = n
			}
		case w == "host" || w == "port" || w == "src" || w == "dst":
			d := dirAny
			j := i
			if w == "src" || w == "dst" {
				d = map[string]dir{"src": dirSrc, "dst": dirDst}[w]
				j++
				if j == len(words) {
					return nil, fail(j, `%q wants "host ADDR" or "port N" after it`, w)
				}
			}
			switch strings.ToLower(words[j]) {
			case "host":
				if j+1 == len(words) {
					return nil, fail(j+1, `"host" wants an address after it`)
				}
				a, err := netip.ParseAddr(words[j+1])
				if err != nil || a.Zone() != "" {
					return nil, fail(j+1, "not an IPv4 or IPv6 address (no name lookup)")
				}
				a = a.Unmap()
				if a.Is4() {
					f.allow(famIPv4|famARP, nil)
				} else {
					f.allow(famIPv6, nil)
				}
				f.hosts = append(f.hosts, hostCond{d, a})
				i = j + 2
			case "port":
				n, err := f.port(words, i, fail)
				if err != nil {
					return nil, err
				}
				f.allow(famIPv4|famIPv6, []uint8{protoTCP, protoUDP, protoSCTP})
				i = n
			default:
				return nil, fail(j, `want "host" or "port" after %q`, w)
			}
		default:
			return nil, fail(i, "unknown word: %s", expected)
		}
	}
	if len(words) > 0 && len(f.families()) == 0 {
		return nil, &FilterError{Filter: text, Msg: "matches no packet (its primitives exclude each other)"}
	}
	return f, nil
}

// isPortWord reports whether words[i:] starts a port primitive.
func isPortWord(words []string, i int) bool {
	w := strings.ToLower(words[i])
	if w == "src" || w == "dst" {
		return i+1 < len(words) && strings.ToLower(words[i+1]) == "port"
	}
	return w == "port"
}

// port parses "[src|dst] port N" at words[i:] and returns the index after it.
func (f *Filter) port(words []string, i int, fail func(int, string, ...any) error) (int, error) {
	d := dirAny
	switch strings.ToLower(words[i]) {
	case "src":
		d, i = dirSrc, i+1
	case "dst":
		d, i = dirDst, i+1
	}
	if i+1 >= len(words) {
		return 0, fail(i+1, `"port" wants a number after it`)
	}
	n, err := strconv.Atoi(words[i+1])
	if err != nil {
		return 0, fail(i+1, "not a port number")
	}
	if n < 1 || n > 65535 {
		return 0, fail(i+1, "port %d is out of range (1..65535)", n)
	}
	f.ports = append(f.ports, portCond{d, uint16(n)})
	return i + 2, nil
}

// allow narrows the filter to fams and, when protos is not nil, to those
// IP protocols.
func (f *Filter) allow(fams int, protos []uint8) {
	f.fams &= fams
	if protos == nil {
		return
	}
	if f.protos == nil {
		f.protos = slices.Clone(protos)
		return
	}
	f.protos = slices.DeleteFunc(f.protos, func(p uint8) bool { return !slices.Contains(protos, p) })
}

// families lists the families a packet of which can pass the filter.
func (f *Filter) families() []int {
	var out []int
	for _, fam := range []int{famIPv4, famIPv6, famARP} {
		if f.fams&fam == 0 {
			continue
		}
		if fam == famARP && (f.protos != nil || len(f.ports) > 0) {
			continue
		}
		if f.protos != nil && len(f.protos) == 0 {
			continue
		}
		ok := true
		for _, h := range f.hosts {
			if h.addr.Is4() != (fam != famIPv6) {
				ok = false
			}
		}
		if ok {
			out = append(out, fam)
		}
	}
	return out
}

// Framing of the packets a filter runs on.
type Framing int

const (
	// Ethernet frames: the network header at offset 14, its type at 12.
	Ethernet Framing = iota
	// Raw IP packets (a cooked socket on a link without Ethernet
	// headers): the network header at offset 0, IPv4 or IPv6 told by its
	// version; no ARP.
	RawIP
)

// Compile returns the classic BPF program of the filter for packets with
// the given framing: it accepts a packet by returning snaplen (the kernel
// keeps that many bytes of it) and drops the others. A nil filter accepts
// every packet.
func (f *Filter) Compile(fr Framing, snaplen uint32) ([]bpf.RawInstruction, error) {
	var a asm
	if f == nil || f.empty() {
		a.emit(bpf.RetConstant{Val: snaplen})
		return a.assemble()
	}
	l3 := uint32(14)
	if fr == RawIP {
		l3 = 0
	}
	for _, fam := range f.families() {
		if fr == RawIP && fam == famARP {
			continue
		}
		fail := a.label()
		// The family.
		if fr == Ethernet {
			a.emit(bpf.LoadAbsolute{Off: 12, Size: 2})
			a.jeq(map[int]uint32{famIPv4: 0x0800, famIPv6: 0x86dd, famARP: 0x0806}[fam], next, fail)
		} else {
			a.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
			a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
			a.jeq(map[int]uint32{famIPv4: 0x40, famIPv6: 0x60}[fam], next, fail)
		}
		// The IP protocol (for IPv6, the next header after the fixed one).
		if f.protos != nil {
			a.emit(bpf.LoadAbsolute{Off: l3 + map[int]uint32{famIPv4: 9, famIPv6: 6}[fam], Size: 1})
			ok := a.label()
			for i, p := range f.protos {
				other := next
				if i == len(f.protos)-1 {
					other = fail
				}
				a.jeq(uint32(p), ok, other)
			}
			a.place(ok)
		}
		for _, h := range f.hosts {
			f.compileHost(&a, fam, l3, h, fail)
		}
		if len(f.ports) > 0 {
			if fam == famIPv4 {
				// Not a later fragment; X = the IPv4 header's length.
				a.emit(bpf.LoadAbsolute{Off: l3 + 6, Size: 2})
				a.jump(bpf.JumpBitsSet, 0x1fff, fail, next)
				a.emit(bpf.LoadMemShift{Off: l3})
			} else {
				a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: 40})
			}
			for _, p := range f.ports {
				ok := a.label()
				offs := portOffsets(p.dir)
				for i, off := range offs {
					other := next
					if i == len(offs)-1 {
						other = fail
					}
					a.emit(bpf.LoadIndirect{Off: l3 + off, Size: 2})
					a.jeq(uint32(p.port), ok, other)
				}
				a.place(ok)
			}
		}
		a.emit(bpf.RetConstant{Val: snaplen})
		a.place(fail)
	}
	a.emit(bpf.RetConstant{Val: 0})
	return a.assemble()
}

func (f *Filter) empty() bool {
	return f.fams == famAll && f.protos == nil && len(f.hosts) == 0 && len(f.ports) == 0
}

func portOffsets(d dir) []uint32 {
	switch d {
	case dirSrc:
		return []uint32{0}
	case dirDst:
		return []uint32{2}
	}
	return []uint32{0, 2}
}

// compileHost emits the test of one host primitive for family fam,
// jumping to fail when it does not hold.
func (f *Filter) compileHost(a *asm, fam int, l3 uint32, h hostCond, fail int) {
	// Offsets of the source and destination addresses.
	var src, dst uint32
	switch fam {
	case famIPv4:
		src, dst = l3+12, l3+16
	case famIPv6:
		src, dst = l3+8, l3+24
	case famARP: // sender and target protocol addresses (Ethernet/IPv4)
		src, dst = l3+14, l3+24
	}
	var offs []uint32
	switch h.dir {
	case dirSrc:
		offs = []uint32{src}
	case dirDst:
		offs = []uint32{dst}
	default:
		offs = []uint32{src, dst}
	}
	b := h.addr.AsSlice()
	ok := a.label()
	for i, off := range offs {
		other := fail
		if i < len(offs)-1 {
			other = a.label()
		}
		// Compare 4 bytes at a time: all equal goes to ok.
		for w := 0; w < len(b); w += 4 {
			v := uint32(b[w])<<24 | uint32(b[w+1])<<16 | uint32(b[w+2])<<8 | uint32(b[w+3])
			a.emit(bpf.LoadAbsolute{Off: off + uint32(w), Size: 4})
			if w+4 == len(b) {
				a.jeq(v, ok, other)
			} else {
				a.jeq(v, next, other)
			}
		}
		if other != fail {
			a.place(other)
		}
	}
	a.place(ok)
}

// maxInstructions is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const maxInstructions = 4096

// next is the label of the instruction after a jump.
const next = -1

// asm assembles BPF with symbolic jump targets: conditional jumps name
// labels, placed later, and are resolved to skips by assemble.
type asm struct {
	ins    []item
	labels []int // label -> instruction index, -1 until placed
}

type item struct {
	in     bpf.Instruction // nil for a conditional jump
	cond   bpf.JumpTest
	val    uint32
	jt, jf int // labels, or next
}

func (a *asm) emit(in bpf.Instruction) { a.ins = append(a.ins, item{in: in}) }

func (a *asm) label() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *asm) place(l int) { a.labels[l] = len(a.ins) }

func (a *asm) jump(cond bpf.JumpTest, val uint32, jt, jf int) {
	a.ins = append(a.ins, item{cond: cond, val: val, jt: jt, jf: jf})
}

func (a *asm) jeq(val uint32, jt, jf int) { a.jump(bpf.JumpEqual, val, jt, jf) }

func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	prog := make([]bpf.Instruction, len(a.ins))
	for i, it := range a.ins {
		if it.in != nil {
			prog[i] = it.in
			continue
		}
		skip := func(l int) (uint8, error) {
			if l == next {
				return 0, nil
			}
			d := a.labels[l] - (i + 1)
			if d < 0 || d > 255 {
				return 0, fmt.Errorf("filter too long: a jump of %d instructions", d)
			}
			return uint8(d), nil
		}
		jt, err := skip(it.jt)
		if err != nil {
			return nil, err
		}
		jf, err := skip(it.jf)
		if err != nil {
			return nil, err
		}
		prog[i] = bpf.JumpIf{Cond: it.cond, Val: it.val, SkipTrue: jt, SkipFalse: jf}
	}
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("filter too long: %d instructions (at most %d)", len(prog), maxInstructions)
	}
	return bpf.Assemble(prog)
}
