package mount

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// parse fills a Request from mount()'s keyword names and values, given as
// name, value pairs, and checks it.
func parse(kv ...any) (*Request, error) {
	r := &Request{}
	for i := 0; i < len(kv); i += 2 {
		s, _ := kv[i+1].(string)
		b, _ := kv[i+1].(bool)
		switch kv[i] {
		case "source":
			r.Source = s
		case "target":
			r.Target = s
		case "root":
			r.Root = s
		case "fstype":
			r.FSType = s
		case "options":
			r.Options = s
		case "propagation":
			r.Propagation = s
		case "bind":
			r.Bind = b
		case "recursive":
			r.Recursive = b
		case "readonly":
			r.Readonly = b
		case "mkdir":
			r.Mkdir = b
		default:
			panic(kv[i])
		}
	}
	return r, r.Check()
}

func TestCheck(t *testing.T) {
	r, err := parse("source", "tmpfs", "target", "/mnt/x", "fstype", "tmpfs", "options", "ro,nosuid,size=10m")
	if err != nil {
		t.Fatal(err)
	}
	if r.opts.Flags != unix.MS_RDONLY|unix.MS_NOSUID || r.opts.DataString() != "size=10m" || !r.NewMount() {
		t.Errorf("%+v", r)
	}
	if got := r.Describe(); got != `-t tmpfs -o ro,nosuid,size=10m "tmpfs" "/mnt/x"` {
		t.Errorf("describe: %s", got)
	}

	r, err = parse("target", "/", "propagation", "private", "recursive", true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.propOnly() || r.propFlag != unix.MS_PRIVATE || r.Describe() != `--make-rprivate "/"` {
		t.Errorf("%+v %s", r, r.Describe())
	}

	r, err = parse("source", "/etc", "target", "/mnt/etc", "bind", true, "readonly", true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.bindNew() || r.opts.Flags != unix.MS_RDONLY || r.Describe() != `--bind -o ro "/etc" "/mnt/etc"` {
		t.Errorf("%+v %s", r, r.Describe())
	}

	r, err = parse("target", "/mnt/x", "options", "remount,ro", "bind", true)
	if err != nil {
		t.Fatal(err)
	}
	if r.bindNew() || !r.remount() {
		t.Errorf("bind remount: %+v", r)
	}

	// Overlay directories become absolute; the source defaults to the type.
	r, err = parse("target", "/m", "fstype", "overlay", "options", "lowerdir=l1:/l2,upperdir=u,workdir=/w")
	if err != nil {
		t.Fatal(err)
	}
	if r.Source != "overlay" || strings.Contains(r.opts.DataString(), "=l1") || !strings.Contains(r.opts.DataString(), ":/l2,upperdir=/") {
		t.Errorf("overlay: %+v", r.opts)
	}
}

func TestCheckRefusals(t *testing.T) {
	for _, c := range []struct {
		kv   []any
		want string
	}{
		{nil, "missing target"},
		{[]any{"source", "tmpfs"}, "missing target"},
		{[]any{"target", "/x", "fstype", "nosuchfs"}, `unknown filesystem type "nosuchfs"`},
		{[]any{"source", "/etc", "target", "/x"}, "needs fstype="},
		{[]any{"target", "/x"}, "nothing to do"},
		{[]any{"target", "/x", "propagation", "sideways"}, `unknown propagation "sideways"`},
		{[]any{"source", "/etc", "target", "/x", "bind", true, "options", "size=1"}, "takes only mount flags"},
		{[]any{"source", "/etc", "target", "/x", "bind", true, "fstype", "tmpfs"}, "takes no fstype"},
		{[]any{"target", "/x", "bind", true}, "needs a source"},
		{[]any{"target", "/x", "fstype", "tmpfs", "recursive", true}, "recursive=True applies to"},
		{[]any{"target", "/x", "fstype", "overlay", "options", "upperdir=/u"}, "needs lowerdir="},
		{[]any{"target", "/x", "fstype", "overlay", "options", "lowerdir=/l,workdir=/w"}, "together"},
		{[]any{"target", "/x", "propagation", "shared", "options", "ro"}, "only target, propagation and recursive"},
		{[]any{"source", "a", "target", "/x", "options", "remount"}, "target and options only"},
		{[]any{"target", "/x", "fstype", "tmpfs", "options", "rbind"}, "use bind=True"},
	} {
		_, err := parse(c.kv...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse(%v) = %v, want error containing %q", c.kv, err, c.want)
		}
	}
}
