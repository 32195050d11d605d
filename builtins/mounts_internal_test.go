package builtins

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"
)

// parse calls parseMount with keyword arguments given as name, value pairs.
func parse(kv ...any) (*mountReq, error) {
	var kwargs []starlark.Tuple
	for i := 0; i < len(kv); i += 2 {
		var v starlark.Value
		switch x := kv[i+1].(type) {
		case string:
			v = starlark.String(x)
		case bool:
			v = starlark.Bool(x)
		case int:
			v = starlark.MakeInt(x)
		case nil:
			v = starlark.None
		}
		kwargs = append(kwargs, starlark.Tuple{starlark.String(kv[i].(string)), v})
	}
	return parseMount("mount", nil, kwargs)
}

func TestParseMount(t *testing.T) {
	r, err := parse("source", "tmpfs", "target", "/mnt/x", "fstype", "tmpfs", "options", "ro,nosuid,size=10m")
	if err != nil {
		t.Fatal(err)
	}
	if r.opts.Flags != unix.MS_RDONLY|unix.MS_NOSUID || r.opts.DataString() != "size=10m" || !r.newMount() {
		t.Errorf("%+v", r)
	}
	if got := r.describe(); got != `-t tmpfs -o ro,nosuid,size=10m "tmpfs" "/mnt/x"` {
		t.Errorf("describe: %s", got)
	}

	r, err = parse("target", "/", "propagation", "private", "recursive", true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.propOnly() || r.propagation != unix.MS_PRIVATE || r.describe() != `--make-rprivate "/"` {
		t.Errorf("%+v %s", r, r.describe())
	}

	r, err = parse("source", "/etc", "target", "/mnt/etc", "bind", true, "readonly", true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.bindNew() || r.opts.Flags != unix.MS_RDONLY || r.describe() != `--bind -o ro "/etc" "/mnt/etc"` {
		t.Errorf("%+v %s", r, r.describe())
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
	if r.source != "overlay" || strings.Contains(r.opts.DataString(), "=l1") || !strings.Contains(r.opts.DataString(), ":/l2,upperdir=/") {
		t.Errorf("overlay: %+v", r.opts)
	}
}

func TestParseMountRefusals(t *testing.T) {
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
		{[]any{"source", 1, "target", "/x"}, "source must be a string"},
		{[]any{"source", "a\x00b", "target", "/x", "fstype", "tmpfs"}, "NUL"},
		{[]any{"target", "/x", "fstype", "tmpfs", "options", "rbind"}, "use bind=True"},
	} {
		_, err := parse(c.kv...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse(%v) = %v, want error containing %q", c.kv, err, c.want)
		}
	}
}
