package sniff

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// frame builds test packets: Ethernet, then an IPv4 or IPv6 header, then
// a transport header.
type frame struct {
	v6       bool
	src, dst string
	proto    uint8
	sport    uint16
	dport    uint16
	tcpFlags uint8
	payload  int
	fragOff  uint16 // IPv4 fragment offset, in 8-byte units
	icmpType uint8
}

func (f frame) bytes() []byte {
	var l4 []byte
	switch f.proto {
	case protoTCP:
		l4 = make([]byte, 20+f.payload)
		binary.BigEndian.PutUint16(l4[0:], f.sport)
		binary.BigEndian.PutUint16(l4[2:], f.dport)
		l4[12] = 5 << 4
		l4[13] = f.tcpFlags
	case protoUDP, protoSCTP:
		l4 = make([]byte, 8+f.payload)
		binary.BigEndian.PutUint16(l4[0:], f.sport)
		binary.BigEndian.PutUint16(l4[2:], f.dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+f.payload))
	default:
		l4 = make([]byte, 8+f.payload)
		l4[0] = f.icmpType
		binary.BigEndian.PutUint16(l4[4:], 7) // id
		binary.BigEndian.PutUint16(l4[6:], 1) // seq
	}
	src, dst := netip.MustParseAddr(f.src).AsSlice(), netip.MustParseAddr(f.dst).AsSlice()
	var l3 []byte
	et := uint16(0x0800)
	if f.v6 {
		et = 0x86dd
		l3 = make([]byte, 40)
		l3[0] = 6 << 4
		binary.BigEndian.PutUint16(l3[4:], uint16(len(l4)))
		l3[6] = f.proto
		l3[7] = 64
		copy(l3[8:], src)
		copy(l3[24:], dst)
	} else {
		l3 = make([]byte, 20)
		l3[0] = 4<<4 | 5
		binary.BigEndian.PutUint16(l3[2:], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(l3[6:], f.fragOff)
		l3[8] = 64
		l3[9] = f.proto
		copy(l3[12:], src)
		copy(l3[16:], dst)
	}
	eth := make([]byte, 14)
	copy(eth, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(eth[12:], et)
	return append(append(eth, l3...), l4...)
}

func arpFrame(op uint16, spa, tpa string) []byte {
	b := make([]byte, 14+28)
	copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(b[12:], 0x0806)
	a := b[14:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:], []byte{2, 0, 0, 0, 0, 1})
	copy(a[14:], netip.MustParseAddr(spa).AsSlice())
	copy(a[24:], netip.MustParseAddr(tpa).AsSlice())
	return b
}

var (
	tcpSyn    = frame{src: "10.0.0.1", dst: "10.0.0.2", proto: protoTCP, sport: 43210, dport: 8080, tcpFlags: 0x02}
	tcpSynAck = frame{src: "10.0.0.2", dst: "10.0.0.1", proto: protoTCP, sport: 8080, dport: 43210, tcpFlags: 0x12}
	udpDNS    = frame{src: "10.0.0.1", dst: "10.0.0.53", proto: protoUDP, sport: 5353, dport: 53, payload: 29}
	icmpEcho  = frame{src: "10.0.0.1", dst: "10.0.0.2", proto: protoICMP, icmpType: 8, payload: 56}
	icmp6Echo = frame{v6: true, src: "fd00::1", dst: "fd00::2", proto: protoICMPv6, icmpType: 128, payload: 56}
	tcp6      = frame{v6: true, src: "fd00::1", dst: "fd00::2", proto: protoTCP, sport: 1000, dport: 8080, tcpFlags: 0x10}
	udpFrag   = frame{src: "10.0.0.1", dst: "10.0.0.53", proto: protoUDP, sport: 53, dport: 53, fragOff: 100}
	arpReq    = arpFrame(1, "10.0.0.1", "10.0.0.2")
)

func TestFilterMatches(t *testing.T) {
	pkts := map[string][]byte{
		"tcpSyn": tcpSyn.bytes(), "tcpSynAck": tcpSynAck.bytes(), "udpDNS": udpDNS.bytes(), "icmpEcho": icmpEcho.bytes(),
		"icmp6Echo": icmp6Echo.bytes(), "tcp6": tcp6.bytes(), "udpFrag": udpFrag.bytes(), "arpReq": arpReq,
	}
	for _, c := range []struct {
		filter string
		match  []string // the others must not match
	}{
		{"", []string{"tcpSyn", "tcpSynAck", "udpDNS", "icmpEcho", "icmp6Echo", "tcp6", "udpFrag", "arpReq"}},
		{"tcp", []string{"tcpSyn", "tcpSynAck", "tcp6"}},
		{"udp", []string{"udpDNS", "udpFrag"}},
		{"icmp", []string{"icmpEcho"}},
		{"icmp6", []string{"icmp6Echo"}},
		{"ICMPv6", []string{"icmp6Echo"}},
		{"arp", []string{"arpReq"}},
		{"ip", []string{"tcpSyn", "tcpSynAck", "udpDNS", "icmpEcho", "udpFrag"}},
		{"ip6", []string{"icmp6Echo", "tcp6"}},
		{"port 8080", []string{"tcpSyn", "tcpSynAck", "tcp6"}},
		{"tcp port 8080", []string{"tcpSyn", "tcpSynAck", "tcp6"}},
		{"tcp dst port 8080", []string{"tcpSyn", "tcp6"}},
		{"tcp src port 8080", []string{"tcpSynAck"}},
		{"udp port 53", []string{"udpDNS"}}, // not the later fragment
		{"udp port 8080", nil},
		{"host 10.0.0.2", []string{"tcpSyn", "tcpSynAck", "icmpEcho", "arpReq"}},
		{"src host 10.0.0.2", []string{"tcpSynAck"}},
		{"dst host 10.0.0.2", []string{"tcpSyn", "icmpEcho", "arpReq"}},
		{"host 10.0.0.2 and tcp port 8080", []string{"tcpSyn", "tcpSynAck"}},
		{"host 10.0.0.2 && tcp && dst port 8080", []string{"tcpSyn"}},
		{"host fd00::2", []string{"icmp6Echo", "tcp6"}},
		{"src host fd00::2", nil},
		{"dst host fd00::2 and icmp6", []string{"icmp6Echo"}},
		{"host 10.0.0.1 and host 10.0.0.2", []string{"tcpSyn", "tcpSynAck", "icmpEcho", "arpReq"}},
		{"arp and host 10.0.0.2", []string{"arpReq"}},
	} {
		f, err := ParseFilter(c.filter)
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		prog, err := f.Compile(Ethernet, 1000)
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		ins := make([]bpf.Instruction, len(prog))
		for i, r := range prog {
			ins[i] = r.Disassemble()
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		for name, p := range pkts {
			n, err := vm.Run(p)
			if err != nil {
				t.Errorf("%q on %s: %v", c.filter, name, err)
			}
			want := 0
			for _, m := range c.match {
				if m == name {
					want = 1000
				}
			}
			if n != want {
				t.Errorf("filter %q on %s: returned %d, want %d", c.filter, name, n, want)
			}
		}
	}
}

func TestFilterRawIP(t *testing.T) {
	f, err := ParseFilter("host 10.0.0.2 and tcp port 8080")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := f.Compile(RawIP, 100)
	if err != nil {
		t.Fatal(err)
	}
	ins := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		ins[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    []byte
		want int
	}{{tcpSyn.bytes()[14:], 100}, {udpDNS.bytes()[14:], 0}, {tcp6.bytes()[14:], 0}} {
		if n, err := vm.Run(c.p); err != nil || n != c.want {
			t.Errorf("got %d, %v; want %d", n, err, c.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	for _, c := range []struct{ filter, err string }{
		{"tcp prot 80", `filter "tcp prot 80": word 2 "prot": want "and" between primitives`},
		{"tpc", `filter "tpc": word 1 "tpc": unknown word: want tcp, udp`},
		{"udp port", `filter "udp port": "port" wants a number after it`},
		{"udp port x53", `word 3 "x53": not a port number`},
		{"port 70000", `word 2 "70000": port 70000 is out of range (1..65535)`},
		{"port 0", `port 0 is out of range`},
		{"host 10.0.0.300", `word 2 "10.0.0.300": not an IPv4 or IPv6 address (no name lookup)`},
		{"host", `"host" wants an address after it`},
		{"tcp or udp", `word 2 "or": only "and" joins primitives here (no or, not or parentheses)`},
		{"tcp and", `ends with "and"`},
		{"src", `"src" wants "host ADDR" or "port N" after it`},
		{"dst net 10.0.0.0/8", `word 2 "net": want "host" or "port" after "dst"`},
		{"tcp and udp", `filter "tcp and udp": matches no packet (its primitives exclude each other)`},
		{"icmp and port 80", "matches no packet"},
		{"arp and tcp", "matches no packet"},
		{"icmp6 and host 10.0.0.1", "matches no packet"},
	} {
		_, err := ParseFilter(c.filter)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("ParseFilter(%q) = %v, want an error containing %q", c.filter, err, c.err)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		p                         []byte
		proto, src, dst, flags, s string
		sport, dport              int
	}{
		{tcpSyn.bytes(), "tcp", "10.0.0.1", "10.0.0.2", "S", "10.0.0.1.43210 > 10.0.0.2.8080: Flags [S], length 0", 43210, 8080},
		{tcpSynAck.bytes(), "tcp", "10.0.0.2", "10.0.0.1", "SA", "10.0.0.2.8080 > 10.0.0.1.43210: Flags [S.], length 0", 8080, 43210},
		{tcp6.bytes(), "tcp", "fd00::1", "fd00::2", "A", "fd00::1.1000 > fd00::2.8080: Flags [.], length 0", 1000, 8080},
		{udpDNS.bytes(), "udp", "10.0.0.1", "10.0.0.53", "", "10.0.0.1.5353 > 10.0.0.53.53: UDP, length 29", 5353, 53},
		{icmpEcho.bytes(), "icmp", "10.0.0.1", "10.0.0.2", "", "10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 1, length 64", -1, -1},
		{icmp6Echo.bytes(), "icmpv6", "fd00::1", "fd00::2", "", "fd00::1 > fd00::2: ICMP6, echo request, id 7, seq 1, length 64", -1, -1},
		{arpReq, "arp", "10.0.0.1", "10.0.0.2", "", "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28", -1, -1},
		{udpFrag.bytes(), "ipv4", "10.0.0.1", "10.0.0.53", "", "10.0.0.1 > 10.0.0.53: ip-proto-17 (fragment offset 800), length 8", -1, -1},
		{tcpSyn.bytes()[:30], "ipv4", "", "", "", "IP [|ip], length 54", -1, -1},
		{tcpSyn.bytes()[:40], "tcp", "10.0.0.1", "10.0.0.2", "", "10.0.0.1 > 10.0.0.2: tcp [|tcp]", -1, -1},
	} {
		p := Decode(LinktypeEthernet, c.p, len(tcpSyn.bytes()))
		if p.Proto != c.proto || p.Src != c.src || p.Dst != c.dst || p.Flags != c.flags || p.SPort != c.sport || p.DPort != c.dport || p.Summary != c.s {
			t.Errorf("Decode: got %+v\nwant proto %q src %q dst %q flags %q ports %d %d summary %q", p, c.proto, c.src, c.dst, c.flags, c.sport, c.dport, c.s)
		}
	}
	// Raw IP packets.
	if p := Decode(LinktypeRaw, icmp6Echo.bytes()[14:], 104); p.Proto != "icmpv6" || p.Src != "fd00::1" {
		t.Errorf("raw IPv6: %+v", p)
	}
	// Another ethertype: MAC addresses.
	lldp := make([]byte, 60)
	copy(lldp, []byte{1, 0x80, 0xc2, 0, 0, 0xe, 2, 0, 0, 0, 0, 1, 0x88, 0xcc})
	if p := Decode(LinktypeEthernet, lldp, 60); p.Proto != "ethertype-0x88cc" || p.Src != "02:00:00:00:00:01" ||
		p.Summary != "02:00:00:00:00:01 > 01:80:c2:00:00:0e: ethertype 0x88cc, length 60" {
		t.Errorf("lldp: %+v", p)
	}
}

// FuzzParseFilter checks the filter language: what is refused is a
// FilterError quoting the filter (and the word, when one is at fault);
// what is accepted compiles, for both framings, to a program the kernel
// would take (at most 4096 instructions, every jump forward and inside)
// that runs on sample packets without error and returns 0 or the snaplen.
// None of issue 15's fourteen defects was here: the parser is new.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "tcp", "udp port 53", "host 10.0.0.2 and tcp port 8080", "src host fd00::1 and icmp6",
		"arp and host 10.0.0.1", "tcp dst port 80 && dst host 10.0.0.1", "tcp or udp", "port 0", "host ::ffff:10.0.0.1",
		"icmp and icmp6", "tcp port 1 and udp port 2"} {
		f.Add(s)
	}
	samples := [][]byte{tcpSyn.bytes(), tcp6.bytes(), udpDNS.bytes(), icmpEcho.bytes(), icmp6Echo.bytes(), arpReq, udpFrag.bytes(), {}}
	f.Fuzz(func(t *testing.T, text string) {
		flt, err := ParseFilter(text)
		if err != nil {
			fe, ok := err.(*FilterError)
			if !ok || fe.Filter != text || !strings.HasPrefix(err.Error(), fmt.Sprintf("filter %q: ", text)) {
				t.Fatalf("ParseFilter(%q): %v is not a FilterError quoting the filter", text, err)
			}
			if fe.Token != "" && (fe.Pos < 1 || fe.Pos > len(strings.Fields(text)) || strings.Fields(text)[fe.Pos-1] != fe.Token) {
				t.Fatalf("ParseFilter(%q): word %d %q is not the filter's", text, fe.Pos, fe.Token)
			}
			return
		}
		for _, fr := range []Framing{Ethernet, RawIP} {
			prog, err := flt.Compile(fr, 1500)
			if err != nil {
				t.Fatalf("Compile(%q): %v", text, err)
			}
			if len(prog) == 0 || len(prog) > maxInstructions {
				t.Fatalf("Compile(%q): %d instructions", text, len(prog))
			}
			ins := make([]bpf.Instruction, len(prog))
			for i, r := range prog {
				ins[i] = r.Disassemble()
			}
			vm, err := bpf.NewVM(ins) // checks jumps stay inside and the program ends in a return
			if err != nil {
				t.Fatalf("Compile(%q): %v", text, err)
			}
			for _, p := range samples {
				if fr == RawIP && len(p) >= 14 {
					p = p[14:]
				}
				n, err := vm.Run(p)
				if err != nil || (n != 0 && n != 1500) {
					t.Fatalf("filter %q on % x: %d, %v", text, p, n, err)
				}
			}
		}
	})
}

// FuzzDecode checks that no packet, however cut or garbled, makes the
// decoder panic, and that each gets a protocol and a summary. None of
// issue 15's fourteen defects was here: the decoder is new.
func FuzzDecode(f *testing.F) {
	for _, p := range [][]byte{tcpSyn.bytes(), tcp6.bytes(), udpDNS.bytes(), icmpEcho.bytes(), icmp6Echo.bytes(), arpReq, udpFrag.bytes()} {
		f.Add(p, false)
		f.Add(p[14:], true)
	}
	f.Fuzz(func(t *testing.T, p []byte, raw bool) {
		lt := uint32(LinktypeEthernet)
		if raw {
			lt = LinktypeRaw
		}
		d := Decode(lt, p, len(p))
		if d.Summary == "" || d.Proto == "" {
			t.Errorf("no summary or protocol: %+v", d)
		}
	})
}

func TestPcapWriter(t *testing.T) {
	var b bytes.Buffer
	w, err := NewPcapWriter(&b, 65535, LinktypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	p := tcpSyn.bytes()
	ts := time.Unix(1700000000, 123456789)
	if err := w.Write(ts, p[:20], len(p)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := b.Bytes()
	le := binary.LittleEndian
	if len(got) != 24+16+20 || le.Uint32(got) != 0xa1b23c4d || le.Uint16(got[4:]) != 2 || le.Uint16(got[6:]) != 4 ||
		le.Uint32(got[16:]) != 65535 || le.Uint32(got[20:]) != 1 {
		t.Fatalf("file header: % x", got[:24])
	}
	r := got[24:]
	if le.Uint32(r) != 1700000000 || le.Uint32(r[4:]) != 123456789 || le.Uint32(r[8:]) != 20 || le.Uint32(r[12:]) != uint32(len(p)) ||
		!bytes.Equal(r[16:], p[:20]) {
		t.Fatalf("record: % x", r)
	}
}
