package sniff

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Packet is what a capture keeps of one packet: its headers decoded.
type Packet struct {
	Time     time.Time
	Len      int  // length on the wire
	Outgoing bool // sent by the link's namespace (else received)
	// Proto is "tcp", "udp", "icmp", "icmpv6", "arp", "sctp", "igmp",
	// "gre", "ip-proto-N" (another IP protocol), "ipv4"/"ipv6" (a later
	// fragment, or headers cut short), or "ethertype-0xNNNN".
	Proto string
	// Src and Dst are IP addresses (for ARP, the sender's and the
	// target's), else MAC addresses; "" when not captured.
	Src, Dst string
	// SPort and DPort are the TCP, UDP or SCTP ports, -1 for other
	// protocols.
	SPort, DPort int
	// Flags are the TCP flags as letters (F S R P A U E W, in that order:
	// "S", "SA", "A", "FA", "PA"), "" for other protocols.
	Flags string
	// Summary is one line in tcpdump's words, e.g.
	// "10.0.0.1.43210 > 10.0.0.2.8080: Flags [S], length 0".
	Summary string
}

// Decode decodes the headers of a packet captured with the given link
// type (LinktypeEthernet or LinktypeRaw). Headers cut short by the
// snapshot length are decoded as far as they go.
func Decode(linktype uint32, data []byte, origLen int) Packet {
	p := Packet{Len: origLen, SPort: -1, DPort: -1}
	if linktype == LinktypeRaw {
		if len(data) > 0 && data[0]>>4 == 6 {
			p.ipv6(data)
		} else {
			p.ipv4(data)
		}
		return p
	}
	if len(data) < 14 {
		p.Proto = "ethernet"
		p.Summary = fmt.Sprintf("[|ether], length %d", origLen)
		return p
	}
	dst, src := net.HardwareAddr(data[0:6]).String(), net.HardwareAddr(data[6:12]).String()
	et := binary.BigEndian.Uint16(data[12:])
	body := data[14:]
	vlan := ""
	for (et == 0x8100 || et == 0x88a8) && len(body) >= 4 {
		vlan += fmt.Sprintf("vlan %d, ", binary.BigEndian.Uint16(body)&0xfff)
		et = binary.BigEndian.Uint16(body[2:])
		body = body[4:]
	}
	switch et {
	case 0x0800:
		p.ipv4(body)
	case 0x86dd:
		p.ipv6(body)
	case 0x0806:
		p.arp(body)
	default:
		p.Proto = fmt.Sprintf("ethertype-0x%04x", et)
		p.Src, p.Dst = src, dst
		p.Summary = fmt.Sprintf("%s > %s: ethertype 0x%04x, length %d", src, dst, et, origLen)
	}
	if vlan != "" {
		p.Summary = vlan + p.Summary
	}
	return p
}

func (p *Packet) arp(b []byte) {
	p.Proto = "arp"
	// Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4.
	if len(b) < 28 || b[4] != 6 || b[5] != 4 {
		p.Summary = fmt.Sprintf("ARP, length %d", len(b))
		return
	}
	sha := net.HardwareAddr(b[8:14]).String()
	spa := addrOf(b[14:18])
	tpa := addrOf(b[24:28])
	p.Src, p.Dst = spa, tpa
	switch binary.BigEndian.Uint16(b[6:]) {
	case 1:
		p.Summary = fmt.Sprintf("ARP, Request who-has %s tell %s, length %d", tpa, spa, len(b))
	case 2:
		p.Summary = fmt.Sprintf("ARP, Reply %s is-at %s, length %d", spa, sha, len(b))
	default:
		p.Summary = fmt.Sprintf("ARP, op %d, length %d", binary.BigEndian.Uint16(b[6:]), len(b))
	}
}

func addrOf(b []byte) string {
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

func (p *Packet) ipv4(b []byte) {
	p.Proto = "ipv4"
	if len(b) < 20 || b[0]>>4 != 4 {
		p.Summary = fmt.Sprintf("IP [|ip], length %d", p.Len)
		return
	}
	ihl := int(b[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	p.Src, p.Dst = addrOf(b[12:16]), addrOf(b[16:20])
	if ihl < 20 || total < ihl {
		p.Summary = fmt.Sprintf("%s > %s: bad IP header, length %d", p.Src, p.Dst, p.Len)
		return
	}
	frag := binary.BigEndian.Uint16(b[6:])
	if frag&0x1fff != 0 { // a later fragment: no transport header
		p.Summary = fmt.Sprintf("%s > %s: ip-proto-%d (fragment offset %d), length %d", p.Src, p.Dst, b[9], int(frag&0x1fff)*8, total-ihl)
		return
	}
	if len(b) < ihl {
		p.Summary = fmt.Sprintf("%s > %s: [|ip]", p.Src, p.Dst)
		return
	}
	end := min(len(b), total)
	p.transport(b[9], b[ihl:end], total-ihl, false)
}

// IPv6 extension headers that are skipped to reach the transport header.
var ipv6Ext = map[uint8]bool{0: true, 43: true, 60: true}

func (p *Packet) ipv6(b []byte) {
	p.Proto = "ipv6"
	if len(b) < 40 || b[0]>>4 != 6 {
		p.Summary = fmt.Sprintf("IP6 [|ip6], length %d", p.Len)
		return
	}
	p.Src, p.Dst = addrOf(b[8:24]), addrOf(b[24:40])
	plen := int(binary.BigEndian.Uint16(b[4:]))
	nh := b[6]
	rest := b[40:]
	if len(rest) > plen {
		rest = rest[:plen]
	}
	for ipv6Ext[nh] || nh == 44 {
		if len(rest) < 8 {
			p.Summary = fmt.Sprintf("%s > %s: [|ip6]", p.Src, p.Dst)
			return
		}
		n := (int(rest[1]) + 1) * 8
		if nh == 44 {
			n = 8
			if binary.BigEndian.Uint16(rest[2:])&0xfff8 != 0 { // a later fragment
				p.Summary = fmt.Sprintf("%s > %s: frag (offset %d), length %d", p.Src, p.Dst, binary.BigEndian.Uint16(rest[2:])&0xfff8, plen)
				return
			}
		}
		if len(rest) < n {
			p.Summary = fmt.Sprintf("%s > %s: [|ip6]", p.Src, p.Dst)
			return
		}
		nh, rest = rest[0], rest[n:]
		plen -= n
	}
	p.transport(nh, rest, plen, true)
}

var ipProtoNames = map[uint8]string{2: "igmp", 47: "gre", 50: "esp", 51: "ah", 89: "ospf", 112: "vrrp"}

// transport decodes the transport header b of protocol proto; n is the
// length of the transport part on the wire.
func (p *Packet) transport(proto uint8, b []byte, n int, v6 bool) {
	switch {
	case proto == protoTCP:
		p.Proto = "tcp"
		if len(b) < 14 {
			p.Summary = fmt.Sprintf("%s > %s: tcp [|tcp]", p.Src, p.Dst)
			return
		}
		p.ports(b)
		off := int(b[12]>>4) * 4
		fl := b[13]
		var letters, dots strings.Builder
		for _, f := range []struct {
			bit          uint8
			letter, tcpd byte
		}{{0x01, 'F', 'F'}, {0x02, 'S', 'S'}, {0x04, 'R', 'R'}, {0x08, 'P', 'P'}, {0x10, 'A', '.'}, {0x20, 'U', 'U'}, {0x40, 'E', 'E'}, {0x80, 'W', 'W'}} {
			if fl&f.bit != 0 {
				letters.WriteByte(f.letter)
				dots.WriteByte(f.tcpd)
			}
		}
		p.Flags = letters.String()
		if dots.Len() == 0 {
			dots.WriteString("none")
		}
		p.Summary = fmt.Sprintf("%s > %s: Flags [%s], length %d", p.endpoint(p.Src, p.SPort), p.endpoint(p.Dst, p.DPort), dots.String(), max(0, n-off))
	case proto == protoUDP:
		p.Proto = "udp"
		if len(b) < 8 {
			p.Summary = fmt.Sprintf("%s > %s: udp [|udp]", p.Src, p.Dst)
			return
		}
		p.ports(b)
		p.Summary = fmt.Sprintf("%s > %s: UDP, length %d", p.endpoint(p.Src, p.SPort), p.endpoint(p.Dst, p.DPort), max(0, int(binary.BigEndian.Uint16(b[4:]))-8))
	case proto == protoSCTP:
		p.Proto = "sctp"
		if len(b) < 4 {
			p.Summary = fmt.Sprintf("%s > %s: sctp [|sctp]", p.Src, p.Dst)
			return
		}
		p.ports(b)
		p.Summary = fmt.Sprintf("%s > %s: sctp, length %d", p.endpoint(p.Src, p.SPort), p.endpoint(p.Dst, p.DPort), n)
	case proto == protoICMP && !v6:
		p.Proto = "icmp"
		p.Summary = fmt.Sprintf("%s > %s: ICMP %s, length %d", p.Src, p.Dst, icmpText(b, false), n)
	case proto == protoICMPv6 && v6:
		p.Proto = "icmpv6"
		p.Summary = fmt.Sprintf("%s > %s: ICMP6, %s, length %d", p.Src, p.Dst, icmpText(b, true), n)
	default:
		name, ok := ipProtoNames[proto]
		if !ok {
			name = fmt.Sprintf("ip-proto-%d", proto)
		}
		p.Proto = name
		p.Summary = fmt.Sprintf("%s > %s: %s, length %d", p.Src, p.Dst, name, n)
	}
}

func (p *Packet) ports(b []byte) {
	p.SPort, p.DPort = int(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint16(b[2:]))
}

// endpoint renders an address and port as tcpdump does: 10.0.0.1.8080.
func (p *Packet) endpoint(addr string, port int) string { return fmt.Sprintf("%s.%d", addr, port) }

var unreachCodes = []string{"net", "host", "protocol", "port"}

// icmpText renders an ICMP (or ICMPv6) message as tcpdump names it.
func icmpText(b []byte, v6 bool) string {
	if len(b) < 4 {
		return "[|icmp]"
	}
	typ, code := b[0], b[1]
	echo := func(what string) string {
		if len(b) < 8 {
			return what
		}
		return fmt.Sprintf("%s, id %d, seq %d", what, binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]))
	}
	if !v6 {
		switch typ {
		case 0:
			return echo("echo reply")
		case 8:
			return echo("echo request")
		case 3:
			if int(code) < len(unreachCodes) {
				return unreachCodes[code] + " unreachable"
			}
			return fmt.Sprintf("unreachable, code %d", code)
		case 5:
			return "redirect"
		case 11:
			return "time exceeded in-transit"
		}
		return fmt.Sprintf("type %d, code %d", typ, code)
	}
	target := func(what string) string {
		if len(b) < 24 {
			return what
		}
		return what + " " + addrOf(b[8:24])
	}
	switch typ {
	case 128:
		return echo("echo request")
	case 129:
		return echo("echo reply")
	case 1:
		return fmt.Sprintf("destination unreachable, code %d", code)
	case 2:
		return "packet too big"
	case 3:
		return "time exceeded in-transit"
	case 133:
		return "router solicitation"
	case 134:
		return "router advertisement"
	case 135:
		return target("neighbor solicitation, who has")
	case 136:
		return target("neighbor advertisement, tgt is")
	case 143:
		return "multicast listener report v2"
	}
	return fmt.Sprintf("type %d, code %d", typ, code)
}
