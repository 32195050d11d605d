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
	want := []string{"lowerdir=/a,b:/c", `upperdir=/u\,v`, "workdir=/w"}
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
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", in, err, want)
		}
	}
}
