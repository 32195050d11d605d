package builtins

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/change"
	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/nlhandle"
	"nsh.dev/nsh/internal/nserr"
	"nsh.dev/nsh/internal/nsthread"
)

func netemTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{Name: "has_qdisc", Sig: "has_qdisc(kind)", Impl: hasQdiscBuiltin, Doc: `Reports whether the kernel has a tc qdisc kind ("netem", "tbf", "htb").
Scripts use it to skip what the kernel cannot do, e.g.
if not has_qdisc("netem"): print("no sch_netem: skipping the delay demo").
It probes in a scratch network namespace, so nothing is changed.`},
		},
	}
}

const netemDoc = `Shapes what the link sends: delay, jitter, loss and rate.
This is the link's egress, as Mininet's TCLink shapes with tc. delay and
jitter are durations ("10ms", "1.5s", "250us", or a number of
milliseconds); loss is a percentage (0..100); rate is "10mbit",
"512kbit", "1gbit", "100kbps" (bytes), or a number of bits per second.
rate alone uses a tbf qdisc; delay, jitter or loss need tc netem (the
kernel's sch_netem), which also carries the rate. netem() with no
arguments removes the emulation. Shape both directions by calling it on
both ends. The original qdisc is restored at the end of the run, unless
the link is kept (persist()) or is in a network namespace this run made
and keeps (netns()): then the emulation is kept with it.
Where the kernel lacks sch_netem (CONFIG_NET_SCH_NETEM unset), delay,
jitter and loss fail with an error saying so and nothing is changed.`

// Limits beyond which a netem value is taken for a mistake.
const (
	maxDelay = time.Minute
	minRate  = 8    // bits/s
	maxRate  = 1e12 // 1 Tbit/s
	tbfLat   = 50 * time.Millisecond
)

// netemArgs is a validated netem() request.
type netemArgs struct {
	delay, jitter time.Duration
	loss          float64 // percent
	rate          uint64  // bits per second; 0: none
	hasLoss       bool
}

func (a netemArgs) needsNetem() bool { return a.delay > 0 || a.jitter > 0 || a.hasLoss }
func (a netemArgs) empty() bool      { return !a.needsNetem() && a.rate == 0 }

// parseDuration reads "10ms", "1.5s", "250us" or a number of milliseconds.
func parseDuration(what string, v starlark.Value) (time.Duration, error) {
	var d time.Duration
	switch v := v.(type) {
	case starlark.String:
		var err error
		d, err = time.ParseDuration(strings.TrimSpace(string(v)))
		if err != nil {
			return 0, fmt.Errorf("%s %q is not a duration (want e.g. \"10ms\", \"1.5s\" or a number of milliseconds)", what, string(v))
		}
	case starlark.Int, starlark.Float:
		f, _ := starlark.AsFloat(v)
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(maxDelay/time.Millisecond)*10 {
			return 0, fmt.Errorf("%s %s ms is out of range (0..%s)", what, v, maxDelay)
		}
		d = time.Duration(f * float64(time.Millisecond))
	default:
		return 0, fmt.Errorf("%s must be a duration string or a number of milliseconds, not %s", what, v.Type())
	}
	if d < 0 {
		return 0, fmt.Errorf("%s %s is negative", what, v)
	}
	if d > maxDelay {
		return 0, fmt.Errorf("%s %s is absurd (at most %s)", what, v, maxDelay)
	}
	if d > 0 && d < time.Microsecond {
		// netem keeps microseconds: the delay would silently be 0.
		return 0, fmt.Errorf("%s %s is less than a microsecond, netem's resolution", what, v)
	}
	return d, nil
}

// parsePercent reads a number (or "5%") between 0 and 100.
func parsePercent(what string, v starlark.Value) (float64, error) {
	var f float64
	switch v := v.(type) {
	case starlark.String:
		var err error
		f, err = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(string(v)), "%"), 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q is not a percentage (want e.g. 5 or \"5%%\")", what, string(v))
		}
	case starlark.Int, starlark.Float:
		f, _ = starlark.AsFloat(v)
	default:
		return 0, fmt.Errorf("%s must be a percentage, not %s", what, v.Type())
	}
	if math.IsNaN(f) || f < 0 || f > 100 {
		return 0, fmt.Errorf("%s %s is not a percentage between 0 and 100", what, v)
	}
	return f, nil
}

var rateUnits = []struct {
	suffix string
	mult   float64 // bits per unit
}{
	{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3},
	{"tbps", 8e12}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3},
	{"bit", 1}, {"bps", 8},
}

// parseRate reads tc's rate notation ("10mbit", "100kbps" in bytes) or a
// number of bits per second, and returns bits per second.
func parseRate(v starlark.Value) (uint64, error) {
	var f float64
	switch v := v.(type) {
	case starlark.String:
		s := strings.ToLower(strings.TrimSpace(string(v)))
		mult := 0.0
		for _, u := range rateUnits {
			if strings.HasSuffix(s, u.suffix) {
				s, mult = strings.TrimSuffix(s, u.suffix), u.mult
				break
			}
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if mult == 0 || err != nil {
			return 0, fmt.Errorf("rate %q is not a rate (want e.g. \"10mbit\", \"512kbit\", \"100kbps\" or bits per second)", string(v))
		}
		f = n * mult
	case starlark.Int, starlark.Float:
		f, _ = starlark.AsFloat(v)
	default:
		return 0, fmt.Errorf("rate must be a string like \"10mbit\" or bits per second, not %s", v.Type())
	}
	switch {
	case math.IsNaN(f):
		return 0, fmt.Errorf("rate %s is not a number", v)
	case f < 0:
		return 0, fmt.Errorf("rate %s is negative", v)
	case f < minRate:
		return 0, fmt.Errorf("rate %s is too low (at least %d bit/s)", v, minRate)
	case f > maxRate:
		return 0, fmt.Errorf("rate %s is absurd (at most 1tbit)", v)
	}
	return uint64(f), nil
}

func parseNetem(delay, jitter, loss, rate starlark.Value) (netemArgs, error) {
	var a netemArgs
	var err error
	if delay != starlark.None {
		if a.delay, err = parseDuration("delay", delay); err != nil {
			return a, err
		}
	}
	if jitter != starlark.None {
		if a.jitter, err = parseDuration("jitter", jitter); err != nil {
			return a, err
		}
		if a.delay == 0 && a.jitter > 0 {
			return a, fmt.Errorf("jitter %s needs a delay", jitter)
		}
	}
	if loss != starlark.None {
		if a.loss, err = parsePercent("loss", loss); err != nil {
			return a, err
		}
		a.hasLoss = a.loss > 0
	}
	if rate != starlark.None {
		if a.rate, err = parseRate(rate); err != nil {
			return a, err
		}
	}
	return a, nil
}

func (l *Link) netemMethod(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var delay, jitter, loss, rate starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kw, "delay?", &delay, "jitter?", &jitter, "loss?", &loss, "rate?", &rate); err != nil {
		return nil, err
	}
	a, err := parseNetem(delay, jitter, loss, rate)
	if err != nil {
		return nil, err
	}
	h, nl, err := l.fetch()
	if err != nil {
		return nil, err
	}
	name := nl.Attrs().Name
	rec := &change.Qdisc{NS: l.st.netnsRef(l.netns()), Dev: name}
	if a.empty() {
		rec.Verb = "del"
		rec.Apply = func() error {
			did, err := clearQdisc(h, nl)
			rec.None = !did
			return err
		}
		_, err := l.st.ex.Do(th, rec)
		return starlark.None, err
	}
	root := netlink.QdiscAttrs{LinkIndex: nl.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}
	rec.Verb, rec.Handle, rec.Rate = "replace", "1:", a.rate
	var q netlink.Qdisc
	if a.needsNetem() {
		q = netlink.NewNetem(root, netlink.NetemQdiscAttrs{
			Latency: uint32(a.delay / time.Microsecond),
			Jitter:  uint32(a.jitter / time.Microsecond),
			Loss:    float32(a.loss),
			Rate64:  a.rate / 8,
		})
		rec.Kind, rec.Delay, rec.Jitter, rec.Loss = "netem", a.delay, a.jitter, a.loss
	} else {
		var t *netlink.Tbf
		t, rec.Burst = tbf(root, a.rate, nl.Attrs().MTU)
		q, rec.Kind, rec.Limit = t, "tbf", t.Limit
	}
	rec.What = fmt.Sprintf("qdisc on %q", name)
	rec.Apply = func() error {
		err := h.QdiscReplace(q)
		if err != nil && a.needsNetem() && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP)) {
			return nserr.Errorf("qdisc replace", fmt.Sprintf("netem on %q", name), err,
				"this kernel lacks sch_netem (CONFIG_NET_SCH_NETEM is not set): delay, jitter and loss cannot be emulated here; rate= alone works (tbf)")
		}
		return nserr.New("qdisc replace", fmt.Sprintf("%s on %q", q.Type(), name), err)
	}
	if l.qdisc == nil {
		// The first shaping of the link restores its default qdisc at the
		// end of the run, unless the link goes with its namespace first.
		// A link kept after the run, or in a namespace this run made and
		// keeps, keeps its qdisc too.
		rec.Undo = func() (bool, error) {
			if l.st.keptHere(l.netns()) || l.kept() {
				return false, nil
			}
			h, nl, err := l.fetch()
			if err != nil {
				return false, nil // the link is gone, and its qdisc with it
			}
			if l.st.keptLink(l.netns(), nl.Attrs().Index) {
				return false, nil
			}
			return clearQdisc(h, nl)
		}
	}
	e, err := l.st.ex.Do(th, rec)
	if err != nil {
		return nil, err
	}
	if e != nil {
		l.qdisc = e
	}
	return starlark.None, nil
}

// tbf returns a token bucket shaping to rate bits/s, and its burst in bytes.
// The bucket holds 10 ms of traffic (at least a few full-size packets) and
// the queue about 50 ms.
func tbf(attrs netlink.QdiscAttrs, rate uint64, mtu int) (*netlink.Tbf, uint32) {
	bytesPerSec := rate / 8
	if bytesPerSec == 0 {
		bytesPerSec = 1
	}
	burst := uint32(min(bytesPerSec/100, 1<<24))
	if floor := uint32(4 * (mtu + 14)); burst < floor {
		burst = floor
	}
	limit := uint64(burst) + bytesPerSec*uint64(tbfLat)/uint64(time.Second)
	return &netlink.Tbf{
		QdiscAttrs: attrs,
		Rate:       bytesPerSec,
		Limit:      uint32(min(limit, 1<<30)),
		Buffer:     netlink.Xmittime(bytesPerSec, burst),
	}, burst
}

// clearQdisc removes the root qdisc, giving the link its default back; it
// reports whether there was one to remove.
func clearQdisc(h *nlhandle.Handle, nl netlink.Link) (bool, error) {
	qs, err := h.QdiscList(nl)
	if err != nil {
		return false, nserr.New("qdisc show", quote(nl.Attrs().Name), err)
	}
	did := false
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent != netlink.HANDLE_ROOT || a.Handle == 0 || q.Type() == "noqueue" {
			continue
		}
		did = true
		if err := h.QdiscDel(q); err != nil && !isNotFound(err) && !errors.Is(err, unix.EINVAL) {
			return did, nserr.New("qdisc del", fmt.Sprintf("%s on %q", q.Type(), nl.Attrs().Name), err)
		}
	}
	return did, nil
}

func hasQdiscBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var kind string
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "kind", &kind); err != nil {
		return nil, err
	}
	if kind == "" || len(kind) > 15 || strings.ContainsAny(kind, " /\t\n") {
		return nil, fmt.Errorf("malformed qdisc kind %q", kind)
	}
	ok, err := probeQdisc(kind)
	if err != nil {
		return nil, err
	}
	return starlark.Bool(ok), nil
}

// probeQdisc asks the kernel whether it knows a qdisc kind, by adding one
// without options to the loopback of a scratch network namespace that dies
// with the probing thread. An unknown kind is ENOENT; a known one is
// created or refused for its missing options.
func probeQdisc(kind string) (bool, error) {
	var ok bool
	err := nsthread.Unshare(nil, unix.CLONE_NEWNET, func() error {
		h, err := nlhandle.Open()
		if err != nil {
			return err
		}
		defer h.Close()
		q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: 1, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}, QdiscType: kind}
		err = h.QdiscAdd(q)
		ok = !errors.Is(err, unix.ENOENT)
		return nil
	})
	return ok, err
}
