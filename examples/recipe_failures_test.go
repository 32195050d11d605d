package examples_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/startest"
	"nsh.dev/nsh/interp"
)

// failCase forces one fail() of a recipe in scripts/ against the real
// kernel: by the recipe's arguments, or by stubs, Starlark functions
// stub_NAME that stand in for the builtin NAME (which they call) and
// change what the kernel is asked to do: a link down, a tiny rate, a
// namespace not made. No kernel call is faked.
type failCase struct {
	recipe string   // file in scripts/
	args   []string // argv after the script's path
	site   string   // text of the fail() call this case reaches
	stubs  string   // Starlark source defining stub_NAME functions
	want   string   // regexp the error message must match
	needs  string   // a qdisc kind the path needs (has_qdisc), or ""
}

// Stubs shared by cases. noRoutes takes down every link a network
// namespace routes through, so that pings from it find no route (lost
// requests, as ping reports them). slowLinks shapes the sender's links to
// 8 Mbit/s whatever rate the recipe set.
const (
	noRoutes = `
def stub_ping(addr, ns = None, **kw):
    for r in routes(ns = ns):
        if r.dev:
            link(r.dev, ns = ns).down()
    return ping(addr, ns = ns, **kw)
`
	slowLinks = `
def stub_transfer(addr, to_ns, ns = None, **kw):
    for r in routes(ns = ns):
        if r.dev:
            link(r.dev, ns = ns).netem(rate = "8mbit")
    return transfer(addr, to_ns, ns = ns, **kw)
`
)

var failCases = []failCase{
	{recipe: "chain.star", args: []string{"1"}, site: "chain: n must be",
		want: `^fail: chain: n must be between 2 and 255, not 1$`},
	{recipe: "star.star", args: []string{"0"}, site: "star: n must be",
		want: `^fail: star: n must be between 1 and 16000, not 0$`},
	{recipe: "chain-ping.star", site: "no route from", stubs: noRoutes,
		want: `^fail: no route from c1 to c6$`},
	{recipe: "router-ping.star", site: "the router did not forward", stubs: noRoutes,
		want: `^fail: the router did not forward to 10\.2\.0\.2$`},
	{recipe: "star-ping.star", site: "pingall lost", stubs: noRoutes,
		want: `^fail: pingall lost 12 of 12$`},
	{recipe: "two-netns-ping.star", site: "replies", stubs: noRoutes,
		want: `^fail: ping 10\.0\.0\.2 got 0 of 3 replies$`},
	{recipe: "link-emulation.star", site: "Mbit/s through a", stubs: slowLinks,
		want: `^fail: measured \d\.\d Mbit/s through a 20 Mbit/s limit$`},
	{recipe: "link-emulation.star", site: "expected round trips", stubs: noRoutes, needs: "netem",
		want: `^fail: expected round trips of at least 40 ms, got `},
	{recipe: "container.star", site: "expected hostname box", stubs: `
def stub_clone(argv, *kinds, **kw):
    kw["hostname"] = "not-box"
    return clone(argv, *kinds, **kw)
`, want: `^fail: expected hostname box and PID 1, got \["not-box", "pid 1"\]$`},
	{recipe: "container.star", site: "the root inside is not", stubs: `
def stub_clone(argv, *kinds, **kw):
    kw.pop("root")   # the host's root, which has /home
    return clone(argv, *kinds, **kw)
`, want: `^fail: the root inside is not the rootfs: \[`},
	{recipe: "container.star", site: "should have only lo", stubs: `
def stub_clone(argv, *kinds, **kw):
    veth("ct-fail0", "ct-fail1")   # in the test's network namespace, which the child now shares
    return clone(argv, *[k for k in kinds if k != "net"], **kw)
`, want: `^fail: a new net namespace should have only lo: \[.*ct-fail[01]`},
	{recipe: "container.star", site: "leaked into the host", stubs: `
def stub_unshare(*kinds, **kw):
    kinds = [k for k in kinds if k != "mnt"]   # the rootfs then lands in the test's mount namespace
    return unshare(*kinds, **kw) if kinds else namespaces()
`, want: `^fail: the rootfs leaked into the host's mount namespace$`},
	{recipe: "rootfs.star", site: "should be the tmpfs after pivot_root", stubs: `
def stub_pivot_root(new_root, put_old = None):
    return None   # not pivoted: / stays the test's root
`, want: `^fail: / should be the tmpfs after pivot_root, got `},
	{recipe: "rootfs.star", site: "should be read-only", stubs: `
def stub_mount(*args, **kw):
    kw["readonly"] = False
    return mount(*args, **kw)
`, want: `^fail: the busybox binds should be read-only: `},
	{recipe: "rootfs.star", site: "old root should be detached", stubs: `
def stub_pivot_root(new_root, put_old = None):
    mount("none", new_root + "/tmp", "ramfs")   # a filesystem that is neither tmpfs nor proc
    return pivot_root(new_root, put_old)
`, want: `^fail: the old root should be detached$`},
	{recipe: "rootfs.star", site: "the host's root changed", stubs: `
def stub_mounts(ns = None):
    return mounts()   # reads the pivoted mount namespace, not the host's
`, want: `^fail: the host's root changed$`},
	{recipe: "two-hosts.star", site: "is for two hosts", stubs: `
stub_lab = struct(name = "two-hosts", prefix = "", up = True, host = "a")   # nsh up --host with three hosts
stub_hosts = {"a": "192.0.2.1", "b": "192.0.2.2", "c": "192.0.2.3"}
`, want: `^fail: two-hosts.star is for two hosts \(nsh up --host a=TARGET --host b=TARGET\), not 3: a, b, c$`},
	{recipe: "two-hosts.star", site: "cannot reach", stubs: noRoutes,
		want: `^fail: h1 cannot reach 10.42.0.2 over the VXLAN: 10.42.0.2: 0/3 replies`},
}

// TestRecipeFailures runs every fail() of the recipes in scripts/, each
// forced by a case of failCases, and checks that it reports its own
// message from its own line (not, say, a formatting error on the way).
// A fail() without a case fails the test.
func TestRecipeFailures(t *testing.T) {
	startest.NeedsRealRoot(t)
	sites := failSites(t, "../scripts")
	covered := map[string]bool{}
	for _, c := range failCases {
		var site string
		for s, text := range sites {
			if strings.HasPrefix(s, c.recipe+":") && strings.Contains(text, c.site) {
				if site != "" {
					t.Fatalf("case site %q of %s matches two fail() calls", c.site, c.recipe)
				}
				site = s
			}
		}
		if site == "" {
			t.Errorf("no fail() in %s contains %q", c.recipe, c.site)
			continue
		}
		covered[site] = true
		c := c
		t.Run(site, func(t *testing.T) { runFailCase(t, c, site) })
	}
	for s := range sites {
		if !covered[s] {
			t.Errorf("%s: this fail() has no case in failCases", s)
		}
	}
}

// failSites maps "recipe.star:LINE" to the source of each fail() call.
func failSites(t *testing.T, dir string) map[string]string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.star"))
	sites := map[string]string{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := interp.Options.Parse(f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		syntax.Walk(file, func(n syntax.Node) bool {
			if call, ok := n.(*syntax.CallExpr); ok {
				if id, ok := call.Fn.(*syntax.Ident); ok && id.Name == "fail" {
					start, end := call.Span()
					sites[fmt.Sprintf("%s:%d", filepath.Base(f), start.Line)] = string(src[offset(src, start):offset(src, end)])
				}
			}
			return true
		})
	}
	return sites
}

func offset(src []byte, p syntax.Position) int {
	line, off := int32(1), 0
	for off < len(src) && line < p.Line {
		if src[off] == '\n' {
			line++
		}
		off++
	}
	return off + int(p.Col) - 1
}

func runFailCase(t *testing.T, c failCase, site string) {
	table := builtins.Table()
	extra := starlark.StringDict{}
	if c.stubs != "" {
		// The stubs' module sees the real builtins.
		base := interp.New(interp.Config{Builtins: table, Stdout: testOut{t}})
		r := base.NewRun("../scripts", []string{"stubs.star"})
		globals, err := r.ExecFile("stubs.star", c.stubs)
		if err != nil {
			t.Fatal(interp.FormatError(err))
		}
		defer r.Close()
		for name, v := range globals {
			if real, ok := strings.CutPrefix(name, "stub_"); ok {
				extra[real] = v
			}
		}
	}
	if c.needs != "" {
		if !hasQdisc(t, c.needs) {
			t.Skipf("this fail() needs the %s qdisc, which this kernel lacks", c.needs)
		}
	}
	leakcheck.Check(t)
	path := filepath.Join("../scripts", c.recipe)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := interp.New(interp.Config{Builtins: table, Extra: extra, Stdout: testOut{t}})
	r := in.NewRun("../scripts", append([]string{path}, c.args...))
	_, err = r.ExecFile(path, src)
	if cerr := r.Close(); cerr != nil {
		t.Errorf("teardown: %v", cerr)
	}
	if err == nil {
		t.Fatalf("the recipe succeeded; want %s to fail with %q", site, c.want)
	}
	var ee *starlark.EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("want a fail() error, got %s", interp.FormatError(err))
	}
	if !regexp.MustCompile(c.want).MatchString(ee.Msg) {
		t.Errorf("got %s\nwant a message matching %q", interp.FormatError(err), c.want)
	}
	var at string
	for _, f := range ee.CallStack {
		if f.Pos.Filename() != "<builtin>" {
			at = fmt.Sprintf("%s:%d", filepath.Base(f.Pos.Filename()), f.Pos.Line)
		}
	}
	if at != site {
		t.Errorf("failed at %s, want %s:\n%s", at, site, interp.FormatError(err))
	}
}

func hasQdisc(t *testing.T, kind string) bool {
	in := interp.New(interp.Config{Builtins: builtins.Table(), Stdout: testOut{t}})
	r := in.NewRun(".", nil)
	defer r.Close()
	g, err := r.ExecFile("has.star", fmt.Sprintf("ok = has_qdisc(%q)\n", kind))
	if err != nil {
		t.Fatal(interp.FormatError(err))
	}
	return g["ok"] == starlark.True
}

type testOut struct{ t *testing.T }

func (w testOut) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
