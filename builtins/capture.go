package builtins

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/sniff"
)

func captureTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "capture", Sig: "capture(link, file=None, count=None, filter=None, snaplen=262144)", Impl: captureBuiltin, Doc: `Starts capturing the packets of a link and returns nsh.capture.
The capture runs inside nsh, with no tcpdump: an AF_PACKET socket opened in
the link's network namespace and bound to the link, which sees what the
link receives and what it sends, from the moment capture() returns.
cap.stop() ends it and returns the packets as a list of nsh.packet (time,
length, protocol, src, dst, sport, dport, flags, summary); cap.wait(n)
waits for n packets; the run's end stops it too.
file writes the packets to a pcap file too, which tcpdump -r and
Wireshark read: a path opened by nsh (relative to its working directory,
in the mount namespace nsh started in), created with mode 0644 or
truncated; the file stays after the run. count stops the capture after
that many packets. snaplen bytes of each packet are kept (1..262144).
filter keeps only the packets it matches, in the kernel (classic BPF):
` + sniff.FilterGrammar + `
Links with Ethernet headers (veth, bridge, lo) give Ethernet frames
(pcap LINKTYPE_ETHERNET); others (tun, ipip, wireguard) give IP packets
(LINKTYPE_RAW). Needs CAP_NET_RAW in the link's namespace. The capture
stays on the link where it was when capture() was called.
Example:
  a, b = veth("a0", "b0", ns=h1, peer_ns=h2, addr="10.0.0.1/24", peer_addr="10.0.0.2/24")
  cap = capture(b, file="ping.pcap", filter="icmp")
  ping("10.0.0.2", ns=h1, count=2)
  cap.wait(4)                     # two requests, two replies
  for p in cap.stop():
      print(p)                    # 10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 64 ...
  run("tcpdump -n -r ping.pcap")`},
		},
		Types: []doc.Type{captureType.Type(), packetType.Type()},
	}
}

// Capture is the Starlark value of a running or stopped capture.
type Capture struct {
	c      *sniff.Capture
	link   *Link
	what   string // `"b0" in net:h2`
	file   string // as given; "" for none
	filter string
	count  int
	entry  *lifecycle.Entry
	mu     sync.Mutex
	vals   []starlark.Value // nsh.packet values made so far, in order
}

var (
	_ starlark.HasAttrs  = (*Capture)(nil)
	_ starlark.Indexable = (*Capture)(nil)
)

var captureType = doc.Members[*Capture]{
	Name: "nsh.capture",
	Doc: `A packet capture on a link (capture()). len(cap) is the number of
packets captured so far and cap[i] the i-th (an nsh.packet); str() reads
"capture(b0 in net:h2, filter "icmp", 4 packets, running)".`,
	Attrs: []doc.AttrOf[*Capture]{
		{Name: "packets", Doc: "the packets captured so far, a list of nsh.packet", Get: func(c *Capture) (starlark.Value, error) {
			return starlark.NewList(c.packets()), nil
		}},
		{Name: "running", Doc: "True until stop(), the count reached, or the run's end", Get: func(c *Capture) (starlark.Value, error) {
			return starlark.Bool(c.c.Running()), nil
		}},
		{Name: "link", Doc: "the link captured on (nsh.link)", Get: func(c *Capture) (starlark.Value, error) { return c.link, nil }},
		{Name: "file", Doc: "the pcap file's path as given, or None", Get: func(c *Capture) (starlark.Value, error) {
			if c.file == "" {
				return starlark.None, nil
			}
			return starlark.String(c.file), nil
		}},
		{Name: "filter", Doc: "the filter as given, or None", Get: func(c *Capture) (starlark.Value, error) {
			if c.filter == "" {
				return starlark.None, nil
			}
			return starlark.String(c.filter), nil
		}},
		{Name: "dropped", Doc: "packets the kernel dropped because the capture read them too slowly (counted when it stops; 0 while it runs)", Get: func(c *Capture) (starlark.Value, error) {
			return starlark.MakeUint64(c.c.Dropped()), nil
		}},
	},
	Methods: []doc.MethodOf[*Capture]{
		{Name: "stop", Sig: "stop()", Impl: (*Capture).stopMethod, Doc: `Stops the capture and returns its packets, a list of nsh.packet.
The socket is closed and the file, if any, is complete when it returns.
Stopping a capture that has stopped (count reached, stop() called) just
returns its packets.`},
		{Name: "wait", Sig: "wait(count, timeout=5.0)", Impl: (*Capture).waitMethod, Doc: `Waits until count packets were captured and returns the packets so far.
It fails after timeout seconds (None: no limit), saying how many packets
came and the last one, or at once if the capture stopped with fewer.
Ctrl-C interrupts it.
  cap = capture(b, filter="tcp port 8080")
  ...
  cap.wait(3)     # the three-way handshake`},
	},
}

var packetType = recordType("nsh.packet", `One captured packet (cap.stop(), cap.packets, cap[i]). str() is its summary,
one line in tcpdump's words (without the time):
  10.0.0.1.43210 > 10.0.0.2.8080: Flags [S], length 0
  10.0.0.2 > 10.0.0.1: ICMP echo reply, id 7, seq 1, length 64
  ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28`, []doc.Attr{
	{Name: "time", Doc: "when the kernel saw it, in seconds since the epoch (a float, to the nanosecond as far as a float holds it)"},
	{Name: "length", Doc: "its length on the wire, in bytes (its link-layer header, if the link has one, included)"},
	{Name: "protocol", Doc: `"tcp", "udp", "icmp", "icmpv6", "arp", "sctp", "igmp", "gre", "ip-proto-N" (another IP protocol), "ipv4" or "ipv6" (a later fragment, or headers cut short by snaplen), "ethertype-0xNNNN" (not IP nor ARP)`},
	{Name: "src", Doc: "source IP address (ARP: the sender's); for what is not IP nor ARP the source MAC address; None if not captured"},
	{Name: "dst", Doc: "destination IP address (ARP: the target's); else as src"},
	{Name: "sport", Doc: "TCP, UDP or SCTP source port, else None"},
	{Name: "dport", Doc: "TCP, UDP or SCTP destination port, else None"},
	{Name: "flags", Doc: `TCP flags as letters in the order F S R P A U E W: "S" (SYN), "SA" (SYN-ACK), "A", "PA", "FA", "R"...; None if not TCP`},
	{Name: "direction", Doc: `"out" if the link sent it, "in" if it received it`},
	{Name: "summary", Doc: "one line in tcpdump's words, as str()"},
})

func captureBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var lv starlark.Value
	var filev, countv, filterv starlark.Value = starlark.None, starlark.None, starlark.None
	snaplen := sniff.MaxSnaplen
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "link", &lv, "file?", &filev, "count?", &countv,
		"filter?", &filterv, "snaplen?", &snaplen); err != nil {
		return nil, err
	}
	l, ok := lv.(*Link)
	if !ok {
		return nil, fmt.Errorf("capture: link must be an nsh.link (from veth(), bridge() or link()), not %s %s", lv.Type(), lv)
	}
	count := 0
	if countv != starlark.None {
		n, err := starlark.AsInt32(countv)
		if _, isBool := countv.(starlark.Bool); err != nil || isBool || n < 1 {
			return nil, fmt.Errorf("capture: count must be an int, 1 or more, or None, not %s %s", countv.Type(), countv)
		}
		count = n
	}
	if snaplen < 1 || snaplen > sniff.MaxSnaplen {
		return nil, fmt.Errorf("capture: snaplen %d is out of range (1..%d)", snaplen, sniff.MaxSnaplen)
	}
	var filter *sniff.Filter
	text := ""
	if filterv != starlark.None {
		s, ok := starlark.AsString(filterv)
		if !ok {
			return nil, fmt.Errorf("capture: filter must be a string or None, not %s %s", filterv.Type(), filterv)
		}
		var err error
		if filter, err = sniff.ParseFilter(s); err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		text = s
	}
	path := ""
	if filev != starlark.None {
		s, ok := starlark.AsString(filev)
		if !ok {
			return nil, fmt.Errorf("capture: file must be a path (a string) or None, not %s %s", filev.Type(), filev)
		}
		if err := checkPcapPath(s); err != nil {
			return nil, err
		}
		path = s
	}
	st := l.st
	_, nl, err := l.fetch()
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	ns, index, name := l.where()
	what := fmt.Sprintf("%q in %s", name, st.nsLabel(ns))
	framing := sniff.RawIP
	if t := nl.Attrs().EncapType; t == "ether" || t == "loopback" {
		framing = sniff.Ethernet
	}
	var f *os.File
	created := false
	if path != "" {
		if f, created, err = createPcap(path); err != nil {
			return nil, err
		}
	}
	c, err := sniff.Start(sniff.Config{Ifindex: index, Framing: framing, Snaplen: snaplen, Filter: filter, Count: count,
		File: f, What: what, In: func(fn func() error) error { return netlinkOf(st).In(ns, fn) }})
	if err != nil {
		if created {
			os.Remove(path)
		}
		return nil, fmt.Errorf("capture: %w", err)
	}
	cv := &Capture{c: c, link: l, what: what, file: path, filter: text, count: count}
	cv.entry = st.ex.Hold("capture on "+what, c.Stop)
	return cv, nil
}

// checkPcapPath refuses a path that cannot be a pcap file before anything
// is opened: an empty one, one with a NUL byte, a directory, or something
// else than a regular file.
func checkPcapPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("capture: file is an empty path")
	case strings.IndexByte(path, 0) >= 0:
		return fmt.Errorf("capture: file %q contains a NUL byte", path)
	case strings.HasSuffix(path, "/"):
		return fmt.Errorf("capture: file %q ends with a slash: want a file's path, not a directory's", path)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("capture: file %w", nserr.New("stat", path, err))
	case fi.IsDir():
		return fmt.Errorf("capture: file %q is a directory: want a file's path", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("capture: file %q exists and is not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	return nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// createPcap opens path for writing a pcap file: created with mode 0644
// whatever the umask, or an existing regular file truncated. created
// reports whether it did not exist.
func createPcap(path string) (f *os.File, created bool, err error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOCTTY, 0o644)
	if err == nil {
		f = os.NewFile(uintptr(fd), path)
		if err := f.Chmod(0o644); err != nil {
			f.Close()
			os.Remove(path)
			return nil, false, fmt.Errorf("capture: file %w", nserr.New("chmod", path, err))
		}
		return f, true, nil
	}
	if errors.Is(err, unix.EEXIST) {
		fd, err = unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
		if err == nil {
			f = os.NewFile(uintptr(fd), path)
			fi, serr := f.Stat()
			if serr != nil || !fi.Mode().IsRegular() {
				f.Close()
				if serr != nil {
					return nil, false, fmt.Errorf("capture: file %w", nserr.New("stat", path, serr))
				}
				return nil, false, fmt.Errorf("capture: file %q exists and is not a regular file (%s)", path, fileKind(fi.Mode()))
			}
			return f, false, nil
		}
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, false, fmt.Errorf("capture: file %q: its directory does not exist (%s)", path, nserr.Words(err))
	case errors.Is(err, unix.EISDIR):
		return nil, false, fmt.Errorf("capture: file %q is a directory: want a file's path", path)
	}
	return nil, false, fmt.Errorf("capture: file %w", nserr.New("open", path, err))
}

// packets returns the Starlark values of the packets captured so far.
func (c *Capture) packets() []starlark.Value {
	return append([]starlark.Value(nil), c.sync()...)
}

// sync makes the Starlark values of the packets that came since the last
// call, once each, and returns them all. The slice is only appended to.
func (c *Capture) sync() []starlark.Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.c.Packets(len(c.vals)) {
		c.vals = append(c.vals, packetValue(p))
	}
	return c.vals
}

func packetValue(p sniff.Packet) starlark.Value {
	optStr := func(s string) starlark.Value {
		if s == "" {
			return starlark.None
		}
		return starlark.String(s)
	}
	optPort := func(n int) starlark.Value {
		if n < 0 {
			return starlark.None
		}
		return starlark.MakeInt(n)
	}
	flags := starlark.Value(starlark.None)
	if p.Proto == "tcp" && p.SPort >= 0 {
		flags = starlark.String(p.Flags)
	}
	dir := "in"
	if p.Outgoing {
		dir = "out"
	}
	return &record{t: &packetType, str: p.Summary, fields: map[string]starlark.Value{
		"time":      starlark.Float(float64(p.Time.UnixNano()) / 1e9),
		"length":    starlark.MakeInt(p.Len),
		"protocol":  starlark.String(p.Proto),
		"src":       optStr(p.Src),
		"dst":       optStr(p.Dst),
		"sport":     optPort(p.SPort),
		"dport":     optPort(p.DPort),
		"flags":     flags,
		"direction": starlark.String(dir),
		"summary":   starlark.String(p.Summary),
	}}
}

// String renders the capture as
// `capture("b0" in net:h2, filter "icmp", 4 packets, running)`.
func (c *Capture) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "capture(%s", c.what)
	if c.filter != "" {
		fmt.Fprintf(&b, ", filter %q", c.filter)
	}
	if c.file != "" {
		fmt.Fprintf(&b, ", file %q", c.file)
	}
	n := c.c.Len()
	plural := "s"
	if n == 1 {
		plural = ""
	}
	state := "stopped"
	if c.c.Running() {
		state = "running"
	}
	fmt.Fprintf(&b, ", %d packet%s, %s)", n, plural, state)
	return b.String()
}

// Type returns "nsh.capture".
func (c *Capture) Type() string { return "nsh.capture" }

// Freeze is a no-op: a capture goes on.
func (c *Capture) Freeze() {}

// Truth is always true.
func (c *Capture) Truth() starlark.Bool { return true }

// Hash fails: a capture is not a key.
func (c *Capture) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: nsh.capture") }

// Len is the number of packets captured so far.
func (c *Capture) Len() int { return c.c.Len() }

// Index returns the i-th packet captured.
func (c *Capture) Index(i int) starlark.Value { return c.sync()[i] }

// AttrNames lists attributes and methods.
func (c *Capture) AttrNames() []string { return captureType.AttrNames() }

// Attr returns an attribute or a bound method.
func (c *Capture) Attr(name string) (starlark.Value, error) { return captureType.Attr(c, name) }

func (c *Capture) stopMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs); err != nil {
		return nil, err
	}
	c.entry.Release() // its undo is c.c.Stop, whose error is read again below
	if err := c.c.Stop(); err != nil {
		return nil, fmt.Errorf("stop: the capture on %s ended early after %d packets (still in .packets): %w", c.what, c.c.Len(), err)
	}
	return starlark.NewList(c.packets()), nil
}

func (c *Capture) waitMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var n int
	var timeout starlark.Value = starlark.Float(5)
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "count", &n, "timeout?", &timeout); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("wait: count %d is out of range (1 or more)", n)
	}
	d, limited, err := parseTimeout(timeout)
	if err != nil {
		return nil, fmt.Errorf("wait: %w", err)
	}
	ctx, cancel := lifecycle.From(th).Context(), context.CancelFunc(func() {})
	if limited {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	err = c.c.Wait(ctx, n)
	if err == nil {
		return starlark.NewList(c.packets()), nil
	}
	got := c.c.Len()
	seen := "none came"
	if got > 0 {
		seen = "the last: " + c.Index(got-1).String()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("wait: %d of %d packets after %s on %s%s (%s)", got, n, d, c.what, c.filterNote(), seen)
	case errors.Is(err, context.Canceled):
		return nil, fmt.Errorf("wait: interrupted with %d of %d packets on %s%s", got, n, c.what, c.filterNote())
	case errors.Is(err, sniff.ErrStopped):
		why := "it was stopped"
		if c.count > 0 && got >= c.count {
			why = fmt.Sprintf("its count=%d was reached", c.count)
		}
		if cause := c.c.Err(); cause != nil {
			why = "it ended early: " + cause.Error()
		}
		return nil, fmt.Errorf("wait: the capture on %s stopped with %d of %d packets: %s", c.what, got, n, why)
	}
	return nil, fmt.Errorf("wait: %w", err)
}

func (c *Capture) filterNote() string {
	if c.filter == "" {
		return ""
	}
	return fmt.Sprintf(", filter %q", c.filter)
}
