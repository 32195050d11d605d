package mountopt

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	o, err := Parse("ro,nosuid,size=10m,mode=0755,defaults,x-systemd.foo,noexec")
	if err != nil {
		t.Fatal(err)
	}
	if o.Flags != unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC {
		t.Errorf("flags %#x", o.Flags)
	}
	if o.DataString() != "size=10m,mode=0755" {
		t.Errorf("data %q", o.DataString())
	}
	if !reflect.DeepEqual(o.Names, []string{"ro", "nosuid", "noexec"}) {
		t.Errorf("names %q", o.Names)
	}
	if v, ok := o.Value("size"); !ok || v != "10m" {
		t.Errorf("size %q %v", v, ok)
	}
}

func TestLaterWins(t *testing.T) {
	o, _ := Parse("ro,rw,nodev")
	if o.Flags != unix.MS_NODEV || o.Clear&unix.MS_RDONLY == 0 {
		t.Errorf("flags %#x clear %#x", o.Flags, o.Clear)
	}
}

func TestQuotesAndEscapes(t *testing.T) {
	o, err := Parse(`lowerdir="/a,b:/c",upperdir=/u\,v,workdir=/w`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`lowerdir=/a\,b:/c`, `upperdir=/u\,v`, "workdir=/w"}
	if !reflect.DeepEqual(o.Data, want) {
		t.Errorf("data %q, want %q", o.Data, want)
	}
}

func TestEmpty(t *testing.T) {
	o, err := Parse("")
	if err != nil || o.Flags != 0 || len(o.Data) != 0 {
		t.Errorf("%+v %v", o, err)
	}
}

func TestRefused(t *testing.T) {
	for in, want := range map[string]string{
		"bind":     "bind=True",
		"ro,rbind": "bind=True",
		"rprivate": `propagation="private"`,
		"shared":   `propagation="shared"`,
		"=x":       "no name",
		`a="b,c`:   "unterminated quote",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", in, err, want)
		}
	}
}

func TestPropagation(t *testing.T) {
	for name, want := range map[string]uintptr{
		"shared": unix.MS_SHARED, "slave": unix.MS_SLAVE, "private": unix.MS_PRIVATE, "unbindable": unix.MS_UNBINDABLE,
	} {
		for _, unchanged := range []bool{false, true} {
			if f, err := Propagation(name, unchanged); err != nil || f != want {
				t.Errorf("Propagation(%q, %v) = %#x, %v; want %#x", name, unchanged, f, err, want)
			}
		}
		if got := PropagationName(want); got != name {
			t.Errorf("PropagationName(%#x) = %q, want %q", want, got, name)
		}
		// mount(8)'s recursive form is refused as an option, pointing to the keyword.
		if _, err := Parse("r" + name); err == nil || !strings.Contains(err.Error(), `use propagation="`+name+`"`) {
			t.Errorf("Parse(r%s) = %v", name, err)
		}
	}
	if f, err := Propagation("unchanged", true); err != nil || f != 0 {
		t.Errorf("Propagation(unchanged, true) = %#x, %v", f, err)
	}
	for _, c := range []struct {
		name      string
		unchanged bool
		want      string
	}{
		{"unchanged", false, `unknown propagation "unchanged" (shared, slave, private, unbindable)`},
		{"sideways", true, `unknown propagation "sideways" (shared, slave, private, unbindable, unchanged)`},
		{"rshared", false, `unknown propagation "rshared" (shared, slave, private, unbindable)`},
		{"", true, `unknown propagation "" (shared, slave, private, unbindable, unchanged)`},
	} {
		if _, err := Propagation(c.name, c.unchanged); err == nil || err.Error() != c.want {
			t.Errorf("Propagation(%q, %v) = %v, want %s", c.name, c.unchanged, err, c.want)
		}
	}
	for flags, want := range map[uintptr]string{
		0:                                  "private",
		unix.MS_SHARED | unix.MS_SLAVE:     "shared+slave",
		unix.MS_UNBINDABLE | unix.MS_SLAVE: "unbindable",
	} {
		if got := PropagationName(flags); got != want {
			t.Errorf("PropagationName(%#x) = %q, want %q", flags, got, want)
		}
	}
}
