// Package sniff captures the packets of one network interface in-process:
// an AF_PACKET socket bound to the link's index, opened in the link's
// network namespace and read from any goroutine, with a classic BPF filter
// compiled from a small tcpdump-like language (golang.org/x/net/bpf
// assembles it) and attached in the kernel, a pcap file writer that
// tcpdump and Wireshark read, and a decoder of the common headers for a
// one-line summary of each packet.
package sniff

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nserr"
)

// MaxSnaplen is the largest snapshot length, tcpdump's default.
const MaxSnaplen = 262144

// Config says what to capture.
type Config struct {
	Ifindex int     // the link's index in its namespace
	Framing Framing // Ethernet for links with Ethernet headers (veth, bridge, lo), else RawIP
	Snaplen int     // bytes kept of each packet, 1..MaxSnaplen
	Filter  *Filter // nil: every packet
	Count   int     // stop after this many packets; 0: no limit
	// File receives the packets as a pcap file; nil: none. The capture
	// closes it when it stops.
	File *os.File
	// In runs fn on a thread inside the link's network namespace, where
	// the socket must be opened.
	In func(fn func() error) error
	// What names the link in errors, e.g. `"veth0" in net:h1`.
	What string
}

// Capture is a running (or stopped) capture.
type Capture struct {
	cfg      Config
	linktype uint32
	sock     *os.File
	pcap     *PcapWriter

	mu      sync.Mutex
	pkts    []Packet
	changed chan struct{} // closed and replaced when a packet arrives or the capture stops
	stopped bool
	err     error // what ended the capture, if not Stop or Count
	drops   uint64
	closed  bool // sock closed

	done chan struct{} // closed when the reader has finished
}

// ErrStopped is returned by Wait when the capture stopped before it saw
// the packets waited for.
var ErrStopped = errors.New("the capture stopped")

// Start opens the socket inside the link's namespace, attaches the filter
// (with no packet let through before it), and starts reading. Nothing is
// left open when it fails. cfg.File is closed by the capture, also when
// Start fails.
func Start(cfg Config) (c *Capture, err error) {
	defer func() {
		if err != nil && cfg.File != nil {
			cfg.File.Close()
		}
	}()
	if cfg.Snaplen < 1 || cfg.Snaplen > MaxSnaplen {
		return nil, fmt.Errorf("snaplen %d is out of range (1..%d)", cfg.Snaplen, MaxSnaplen)
	}
	prog, err := cfg.Filter.Compile(cfg.Framing, uint32(cfg.Snaplen))
	if err != nil {
		return nil, err
	}
	c = &Capture{cfg: cfg, linktype: LinktypeEthernet, changed: make(chan struct{}), done: make(chan struct{})}
	if cfg.Framing == RawIP {
		c.linktype = LinktypeRaw
	}
	var fd int
	if err := cfg.In(func() error {
		var err error
		fd, err = openSocket(cfg.Framing, cfg.Ifindex, prog, cfg.What)
		return err
	}); err != nil {
		return nil, err
	}
	c.sock = os.NewFile(uintptr(fd), "packet socket on "+cfg.What)
	if cfg.File != nil {
		if c.pcap, err = NewPcapWriter(cfg.File, uint32(cfg.Snaplen), c.linktype); err != nil {
			c.sock.Close()
			return nil, nserr.New("write", cfg.File.Name(), err)
		}
	}
	go c.read()
	return c, nil
}

// Linktype is the pcap link type of the packets (LinktypeEthernet or
// LinktypeRaw).
func (c *Capture) Linktype() uint32 { return c.linktype }

// openSocket opens a packet socket on link ifindex of the calling thread's
// network namespace, with the filter prog. A packet socket receives from
// its bind() on; the drop-all filter attached before it, and the drain
// after, make sure nothing that arrived before prog was attached is ever
// read (the standard way to change a socket's filter without a race).
func openSocket(fr Framing, ifindex int, prog []bpf.RawInstruction, what string) (int, error) {
	typ := unix.SOCK_RAW
	if fr == RawIP {
		typ = unix.SOCK_DGRAM
	}
	// Protocol 0: no packet is queued before bind names one.
	fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return -1, nserr.Errorf("socket", "packet socket for "+what, err, "capture needs CAP_NET_RAW in the namespace: run as root")
		}
		return -1, nserr.New("socket", "packet socket for "+what, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	dropAll, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return -1, err
	}
	if err := attach(fd, dropAll); err != nil {
		return -1, nserr.New("setsockopt SO_ATTACH_FILTER", "drop-all filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return -1, nserr.New("setsockopt PACKET_AUXDATA", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return -1, nserr.New("setsockopt SO_TIMESTAMPNS", what, err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return -1, nserr.Explain(unix.ENODEV, "link %s no longer exists", what)
		}
		return -1, nserr.New("bind", "packet socket to "+what, err)
	}
	// Drain what got through before the drop-all filter took hold (nothing,
	// with protocol 0 until bind; kept for safety), then the real filter.
	buf := make([]byte, 1)
	for {
		_, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		if err != nil {
			break
		}
	}
	if err := attach(fd, prog); err != nil {
		return -1, nserr.New("setsockopt SO_ATTACH_FILTER", "filter for "+what, err)
	}
	ok = true
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// attach attaches a classic BPF program to the socket (SO_ATTACH_FILTER),
// replacing the one it had.
func attach(fd int, prog []bpf.RawInstruction) error {
	f := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

// read is the capture's reader: it runs until the socket is closed (Stop),
// Count packets were seen, or an error.
func (c *Capture) read() {
	defer close(c.done)
	err := c.loop()
	c.closeSocket()
	if c.pcap != nil {
		if ferr := c.pcap.Flush(); ferr != nil && err == nil {
			err = nserr.New("write", c.cfg.File.Name(), ferr)
		}
		if ferr := c.cfg.File.Close(); ferr != nil && err == nil {
			err = nserr.New("close", c.cfg.File.Name(), ferr)
		}
	}
	c.mu.Lock()
	c.stopped = true
	c.err = err
	close(c.changed)
	c.mu.Unlock()
}

func (c *Capture) loop() error {
	buf := make([]byte, c.cfg.Snaplen+4) // room for a VLAN tag put back
	oob := make([]byte, 256)
	rc, err := c.sock.SyscallConn()
	if err != nil {
		return err
	}
	var flushErr error
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf[4:], oob, 0)
			if rerr == unix.EAGAIN {
				// Idle: let readers of the file see what came so far.
				if c.pcap != nil && flushErr == nil {
					flushErr = c.pcap.Flush()
				}
				return false
			}
			return true
		})
		switch {
		case err != nil: // closed by Stop
			return nil
		case flushErr != nil:
			return nserr.New("write", c.cfg.File.Name(), flushErr)
		case rerr == unix.ENETDOWN || rerr == unix.EINTR:
			continue // the link went down (it may come up again)
		case rerr != nil:
			return nserr.New("recvmsg", "packet socket on "+c.cfg.What, rerr)
		}
		data, origLen, ts := c.packet(buf, n, oob[:oobn])
		out := false
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			out = ll.Pkttype == unix.PACKET_OUTGOING
		}
		if c.pcap != nil {
			if err := c.pcap.Write(ts, data, origLen); err != nil {
				return nserr.New("write", c.cfg.File.Name(), err)
			}
		}
		p := Decode(c.linktype, data, origLen)
		p.Time, p.Outgoing = ts, out
		c.mu.Lock()
		c.pkts = append(c.pkts, p)
		close(c.changed)
		c.changed = make(chan struct{})
		full := c.cfg.Count > 0 && len(c.pkts) >= c.cfg.Count
		c.mu.Unlock()
		if full {
			return nil
		}
	}
}

// packet returns the packet received into buf[4:4+n] with its control
// messages: its bytes (with its VLAN tag put back, as libpcap does, where
// the kernel took it out), its length on the wire and its time.
func (c *Capture) packet(buf []byte, n int, oob []byte) ([]byte, int, time.Time) {
	data := buf[4 : 4+n]
	origLen := n
	var ts time.Time
	msgs, _ := unix.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
			t := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			ts = time.Unix(t.Sec, t.Nsec)
		case m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			origLen = int(aux.Len)
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && c.cfg.Framing == Ethernet && n >= 12 {
				tpid := uint16(0x8100)
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					tpid = aux.Vlan_tpid
				}
				copy(buf[0:12], buf[4:16])
				binary.BigEndian.PutUint16(buf[12:], tpid)
				binary.BigEndian.PutUint16(buf[14:], aux.Vlan_tci)
				data = buf[:4+n]
				origLen += 4
			}
		}
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	return data, origLen, ts
}

// closeSocket reads the kernel's drop count and closes the socket, once.
func (c *Capture) closeSocket() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if rc, err := c.sock.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
				c.drops += uint64(st.Drops)
			}
		})
	}
	c.sock.Close()
}

// Stop stops the capture (if it is still running), closes its socket and
// its file, and returns what ended it early, if anything did (an error
// reading the socket or writing the file). It can be called again.
func (c *Capture) Stop() error {
	c.closeSocket()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Running reports whether the capture is still reading packets.
func (c *Capture) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.stopped
}

// Len returns the number of packets captured so far.
func (c *Capture) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pkts)
}

// Packets returns the packets captured so far from index from on.
func (c *Capture) Packets(from int) []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	if from >= len(c.pkts) {
		return nil
	}
	return append([]Packet(nil), c.pkts[from:]...)
}

// Dropped returns the packets the kernel dropped because the capture did
// not read them in time (known once the capture has stopped).
func (c *Capture) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drops
}

// Err returns what ended the capture early (an error reading the socket or
// writing the file), or nil.
func (c *Capture) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Wait waits until n packets were captured. It returns ErrStopped if the
// capture stops first (Err says why, if it ended early), and ctx's error
// if ctx ends first.
func (c *Capture) Wait(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		have, stopped, ch := len(c.pkts), c.stopped, c.changed
		c.mu.Unlock()
		if have >= n {
			return nil
		}
		if stopped {
			return ErrStopped
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
