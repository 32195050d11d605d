package builtins

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/lifecycle"
	"nsh.dev/nsh/internal/nsthread"
)

// TestStressNamespaces runs many goroutines at once, each in a run of its
// own whose context is a different net+uts namespace: they set and read
// hostnames, add, list and delete links through netlink handles opened in
// their namespace, and start processes there. None may ever see another's
// namespace or the host's; afterwards the host is as it was.
func TestStressNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates namespaces)")
	}
	leakcheck.Check(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	const workers, iters = 12, 500
	globals := Table().Globals()
	call := func(th *starlark.Thread, name string, args ...starlark.Value) (starlark.Value, error) {
		return starlark.Call(th, globals[name], starlark.Tuple(args), nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			reg := lifecycle.New()
			defer reg.Teardown()
			th := &starlark.Thread{Name: fmt.Sprintf("stress-%d", g)}
			lifecycle.Attach(th, reg)
			fail := func(format string, args ...any) {
				errs <- fmt.Errorf("worker %d: "+format, append([]any{g}, args...)...)
			}
			if _, err := call(th, "unshare", starlark.String("net"), starlark.String("uts")); err != nil {
				fail("unshare: %v", err)
				return
			}
			st, err := stateOf(th)
			if err != nil {
				fail("state: %v", err)
				return
			}
			// Not netlink.NewHandleAt: it moves the calling thread and
			// back, and rootless the way back (to the host's netns) is
			// refused, leaving an unpinned thread in the new one.
			var h *netlink.Handle
			err = nsthread.Do([]nsthread.Join{{Fd: st.current().Get("net").Fd(), Type: unix.CLONE_NEWNET, Name: "net"}}, func() error {
				var err error
				h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
				return err
			})
			if err != nil {
				fail("netlink handle: %v", err)
				return
			}
			defer h.Close()
			for i := 0; i < iters; i++ {
				name := fmt.Sprintf("pr-s%d-%d", g, i)
				if _, err := call(th, "hostname", starlark.String(name)); err != nil {
					fail("hostname(%q): %v", name, err)
					return
				}
				got, err := call(th, "hostname")
				if err != nil || string(got.(starlark.String)) != name {
					fail("iteration %d: hostname() = %v, %v; want %q", i, got, err, name)
					return
				}
				if i%20 == 0 {
					br := fmt.Sprintf("pr-br%d", g)
					if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}}); err != nil {
						fail("iteration %d: link add %s: %v", i, br, err)
						return
					}
					links, err := h.LinkList()
					if err != nil {
						fail("link list: %v", err)
						return
					}
					var names []string
					for _, l := range links {
						names = append(names, l.Attrs().Name)
					}
					sort.Strings(names)
					if strings.Join(names, " ") != "lo "+br {
						fail("iteration %d: links %v, want lo and %s", i, names, br)
						return
					}
					l, err := h.LinkByName(br)
					if err == nil {
						err = h.LinkDel(l)
					}
					if err != nil {
						fail("link del %s: %v", br, err)
						return
					}
				}
				if i%40 == 0 {
					p, err := call(th, "run", starlark.String("hostname"))
					if err != nil {
						fail("run: %v", err)
						return
					}
					out, _ := p.(*Process).Attr("stdout")
					if string(out.(starlark.String)) != name+"\n" {
						fail("iteration %d: process sees hostname %s, want %q", i, out, name)
						return
					}
				}
			}
			if err := reg.Teardown(); err != nil {
				fail("teardown: %v", err)
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if now, err := os.Hostname(); err != nil || now != host {
		t.Errorf("host hostname is %q (%v), was %q", now, err, host)
	}
}
