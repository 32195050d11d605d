package sniff

import (
	"bufio"
	"encoding/binary"
	"io"
	"time"
)

// Link types of a pcap file (www.tcpdump.org/linktypes.html).
const (
	LinktypeEthernet = 1   // LINKTYPE_ETHERNET
	LinktypeRaw      = 101 // LINKTYPE_RAW: raw IPv4 or IPv6, told by the version
)

// pcapMagicNanos is the magic number of a pcap file with nanosecond
// timestamps, which tcpdump (libpcap 1.5+) and Wireshark read.
const pcapMagicNanos = 0xa1b23c4d

// PcapWriter writes a pcap file (the classic format, version 2.4, little
// endian, nanosecond timestamps).
type PcapWriter struct {
	w   *bufio.Writer
	hdr [16]byte
}

// NewPcapWriter writes the file header to w: the snapshot length and the
// link type of the packets to come.
func NewPcapWriter(w io.Writer, snaplen uint32, linktype uint32) (*PcapWriter, error) {
	var h [24]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], pcapMagicNanos)
	le.PutUint16(h[4:], 2) // version 2.4
	le.PutUint16(h[6:], 4)
	// thiszone and sigfigs are 0.
	le.PutUint32(h[16:], snaplen)
	le.PutUint32(h[20:], linktype)
	// Unbuffered: a file that takes no data fails here, not later.
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &PcapWriter{w: bufio.NewWriterSize(w, 64<<10)}, nil
}

// Write appends one packet: data is what was captured of it, origLen its
// length on the wire.
func (pw *PcapWriter) Write(t time.Time, data []byte, origLen int) error {
	le := binary.LittleEndian
	le.PutUint32(pw.hdr[0:], uint32(t.Unix()))
	le.PutUint32(pw.hdr[4:], uint32(t.Nanosecond()))
	le.PutUint32(pw.hdr[8:], uint32(len(data)))
	le.PutUint32(pw.hdr[12:], uint32(max(origLen, len(data))))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return err
	}
	_, err := pw.w.Write(data)
	return err
}

// Flush writes what is buffered, so that readers of the file see every
// packet written so far.
func (pw *PcapWriter) Flush() error { return pw.w.Flush() }
