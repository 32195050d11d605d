// Package testrun is nsh test's runner: it finds *_test.star files, runs
// each test function in a child process of its own (nsh re-executed with
// ChildVerb, in a new mount namespace with a private /run/netns), with a
// timeout, checks what each test leaves behind, and collects the results
// for internal/testreport.
//
// Isolation. The child's mount namespace is a private copy of the
// runner's, in which /run/netns is an empty tmpfs (see
// keeper.PrepareRun): the named network namespaces a test makes are its
// own, so tests run in parallel (-j) may use the same names, and nothing
// of /run/netns reaches the host. The rest of the file system is shared
// (files, not mounts): /run/nsh/runs holds the journal of the child's run
// as of any nsh run, so if the child is killed (a timeout), its reaper
// still undoes what it changed on the host. The runner is a child
// subreaper: what a test started and left running is re-parented to it,
// and counted as a leak.
package testrun

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/labs"
	"nsh.dev/nsh/internal/leakcheck"
	"nsh.dev/nsh/internal/netnsdir"
	"nsh.dev/nsh/internal/testreport"
)

// Options are nsh test's flags.
type Options struct {
	Paths       []string       // files and directories (default ".")
	Run         *regexp.Regexp // -run: tests to run (nil: all)
	Verbose     bool           // -v: each test's output and result as it ends
	Jobs        int            // -j: tests run at once (default 1)
	Timeout     time.Duration  // -timeout per test (default 60 s)
	FailFast    bool           // --fail-fast: start no test after a failure
	ShellOnFail bool           // --shell-on-fail: the REPL in a failed test
	TAP         bool           // --tap: TAP 13 on Stdout instead of the summary
	JUnit       string         // --junit FILE: JUnit XML written to FILE too
	// Exe is the nsh binary that runs each test (os.Executable()).
	Exe string
	// Stdout and Stderr default to os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
}

// Grace is how long a test has to end after the SIGTERM of its timeout
// before it is killed (its reaper then undoes what it changed).
var Grace = 5 * time.Second

// DefaultTimeout is -timeout's default.
const DefaultTimeout = 60 * time.Second

// Main runs the tests opts names and returns nsh test's exit status: 0
// when every test passed, was skipped or failed as expected (xfail), 1
// otherwise, 2 when the paths hold no test file or do not exist.
func Main(opts Options) int {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if len(opts.Paths) == 0 {
		opts.Paths = []string{"."}
	}
	if opts.Jobs < 1 || opts.ShellOnFail {
		opts.Jobs = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	files, err := FindFiles(opts.Paths)
	if err != nil {
		fmt.Fprintf(opts.Stderr, "nsh test: %v\n", err)
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintf(opts.Stderr, "nsh test: no *%s files in %s\n", Suffix, strings.Join(opts.Paths, " "))
		return 2
	}
	start := time.Now()
	var tests []Test
	var results []testreport.Result
	for _, f := range files {
		ts, err := ListTests(f)
		if err != nil {
			results = append(results, testreport.Result{File: f, Name: "(load)", Status: testreport.Fail, Message: err.Error()})
			continue
		}
		tests = append(tests, Filter(ts, opts.Run)...)
	}
	if len(tests) == 0 && len(results) == 0 {
		fmt.Fprintf(opts.Stderr, "nsh test: warning: no tests to run\n")
	}

	r := &runner{opts: opts, running: map[int]bool{}}
	if root := labs.RunsRoot(); root != "" {
		// As root, the tests' journals and their /run/netns tmpfs sit
		// on the host's directories (see keeper.PrepareRun: without a
		// /run/netns the test's whole /run would be a copy, and a
		// journal written there invisible to nsh gc).
		for d, mode := range map[string]os.FileMode{root: 0o700, netnsdir.Dir: 0o755} {
			if err := os.MkdirAll(d, mode); err != nil {
				fmt.Fprintf(opts.Stderr, "nsh test: %v\n", err)
				return 1
			}
		}
	}
	before, err := leakcheck.Take()
	if err != nil {
		fmt.Fprintf(opts.Stderr, "nsh test: %v\n", err)
		return 1
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(opts.Stderr, "nsh test: prctl PR_SET_CHILD_SUBREAPER: %v\n", err)
		return 1
	}
	stopReaping := r.reapOrphans()
	sig := r.handleSignals()
	results = append(results, r.runAll(tests)...)
	if opts.Jobs > 1 {
		// One look at the host for the whole run: the tests overlap.
		if left := r.leftOnHost(before); len(left) > 0 {
			msg := "left on the host after the run: " + strings.Join(left, "; ")
			fmt.Fprintf(opts.Stderr, "nsh test: %s\n", msg)
			results = append(results, testreport.Result{Name: "(host leak check)", Status: testreport.Fail, Message: msg})
		}
	}
	stopReaping()
	sig()
	total := time.Since(start)
	return r.write(results, start, total)
}

// runner is one nsh test run.
type runner struct {
	opts Options
	mu   sync.Mutex
	// running are the pids of the test children running, which the
	// orphan reaper leaves to their Wait.
	running map[int]bool
	stopped bool           // fail-fast or a signal: start no more tests
	signal  syscall.Signal // the signal that stopped the run
	out     sync.Mutex     // serializes -v output
}

// runAll runs tests, opts.Jobs at a time, and returns their results in
// the order of tests (those never started, after --fail-fast or a signal,
// are left out).
func (r *runner) runAll(tests []Test) []testreport.Result {
	res := make([]*testreport.Result, len(tests))
	slots := make(chan struct{}, r.opts.Jobs)
	var wg sync.WaitGroup
	for i := range tests {
		slots <- struct{}{} // a slot free: the test before it has ended
		if r.isStopped() {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = r.runOne(tests[i])
			<-slots
		}()
	}
	wg.Wait()
	var out []testreport.Result
	for _, x := range res {
		if x != nil {
			out = append(out, *x)
		}
	}
	return out
}

func (r *runner) isStopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// progress is where -v lines go: stdout, or stderr under --tap.
func (r *runner) progress() io.Writer {
	if r.opts.TAP {
		return r.opts.Stderr
	}
	return r.opts.Stdout
}

// runOne runs one test in a child and checks what it left.
func (r *runner) runOne(t Test) *testreport.Result {
	res := &testreport.Result{File: t.File, Name: t.Name}
	var before leakcheck.Snapshot
	var snapErr error
	if r.opts.Jobs == 1 {
		before, snapErr = leakcheck.Take()
	}
	live := r.opts.Verbose && r.opts.Jobs == 1
	if r.opts.Verbose {
		r.out.Lock()
		fmt.Fprintf(r.progress(), "=== RUN   %s\n", t.ID())
		r.out.Unlock()
	}
	start := time.Now()
	status, msg, output := r.child(t, live)
	res.Duration = time.Since(start)
	res.Status, res.Message, res.Output = status, msg, output
	if r.opts.Jobs == 1 {
		left := []string{}
		if snapErr == nil {
			left = r.leftOnHost(before)
		}
		if len(left) > 0 {
			res.Status = testreport.Fail
			res.Message = strings.TrimPrefix(res.Message+"\nleft on the host: "+strings.Join(left, "; "), "\n")
		}
	}
	if !res.Status.OK() && r.opts.FailFast {
		r.mu.Lock()
		r.stopped = true
		r.mu.Unlock()
	}
	if r.opts.Verbose {
		r.out.Lock()
		w := r.progress()
		if !live && res.Output != "" {
			io.WriteString(w, res.Output)
			if !strings.HasSuffix(res.Output, "\n") {
				io.WriteString(w, "\n")
			}
		}
		fmt.Fprintf(w, "--- %s: %s (%.2fs)\n", strings.ToUpper(string(res.Status)), t.ID(), res.Duration.Seconds())
		msg := res.Message
		if res.Status == testreport.XPass {
			msg = "passed, but was marked xfail: " + msg + " (remove the mark)"
		}
		if msg != "" {
			fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(msg, "\n", "\n    "))
		}
		r.out.Unlock()
	}
	return res
}

// leftOnHost waits for what the host has beyond before to go (the kernel
// frees namespaces and their links asynchronously; a killed test's reaper
// needs a moment), then names what is still there and kills the
// processes among it.
func (r *runner) leftOnHost(before leakcheck.Snapshot) []string {
	left, err := leakcheck.Wait(before)
	if err != nil {
		return []string{"checking the host: " + err.Error()}
	}
	for _, l := range left {
		if rest, ok := strings.CutPrefix(l, "process "); ok {
			if pid, err := strconv.Atoi(strings.Fields(rest)[0]); err == nil {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	return left
}

// child runs t in a child process and returns its result and output.
// live copies the output to the progress writer as it comes.
func (r *runner) child(t Test, live bool) (testreport.Status, string, string) {
	args := []string{ChildVerb, t.File, t.Name}
	if r.opts.ShellOnFail {
		args = append(args, "--shell")
	}
	cmd := exec.Command(r.opts.Exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A mount namespace of its own: Go makes its mounts private.
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
	var output syncBuffer
	if r.opts.ShellOnFail {
		// The REPL needs the terminal: the output is not captured.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	} else {
		var w io.Writer = &output
		if live {
			w = io.MultiWriter(&output, lockedWriter{&r.out, r.progress()})
		}
		cmd.Stdout, cmd.Stderr = w, w
		// What the test left running may hold the output open.
		cmd.WaitDelay = 2 * time.Second
	}
	rep, w, err := os.Pipe()
	if err != nil {
		return testreport.Fail, "starting the test: " + err.Error(), ""
	}
	defer rep.Close()
	cmd.ExtraFiles = []*os.File{w}
	r.mu.Lock()
	if r.stopped && r.signal != 0 {
		r.mu.Unlock()
		w.Close()
		return testreport.Fail, "not run: interrupted", ""
	}
	err = cmd.Start()
	if err == nil {
		r.running[cmd.Process.Pid] = true
	}
	r.mu.Unlock()
	w.Close()
	if err != nil {
		return testreport.Fail, "starting the test: " + err.Error(), ""
	}
	// Start returns once the child has executed nsh: it is in its own
	// mount namespace by then.
	mnt, mntErr := nsOf(cmd.Process.Pid, "mnt")

	var timedOut, shellOpen bool
	var tmu sync.Mutex
	kill := time.AfterFunc(r.opts.Timeout, func() {
		tmu.Lock()
		defer tmu.Unlock()
		if shellOpen {
			return
		}
		timedOut = true
		cmd.Process.Signal(syscall.SIGTERM)
		time.AfterFunc(Grace, func() { cmd.Process.Kill() })
	})
	var last report
	sc := bufio.NewScanner(rep)
	for sc.Scan() {
		var x report
		if json.Unmarshal(sc.Bytes(), &x) != nil {
			continue
		}
		if x.Event == "shell" {
			tmu.Lock()
			shellOpen = true
			tmu.Unlock()
			kill.Stop()
			continue
		}
		last = x
	}
	werr := cmd.Wait()
	kill.Stop()
	r.mu.Lock()
	delete(r.running, cmd.Process.Pid)
	r.mu.Unlock()
	var left []string
	if r.opts.Jobs > 1 && mntErr == nil {
		// The tests overlap, so the host is compared only at the end;
		// what this one left running is still in its mount namespace.
		left = leftIn(mnt)
	}
	st, msg := r.verdict(cmd, werr, last, &tmu, &timedOut)
	if len(left) > 0 {
		st = testreport.Fail
		msg = strings.TrimPrefix(msg+"\nleft running: "+strings.Join(left, "; "), "\n")
	}
	return st, msg, output.String()
}

// verdict is the result of a test from its last report and how its
// process ended.
func (r *runner) verdict(cmd *exec.Cmd, werr error, last report, tmu *sync.Mutex, timedOut *bool) (testreport.Status, string) {
	tmu.Lock()
	defer tmu.Unlock()
	switch {
	case *timedOut:
		msg := fmt.Sprintf("test timed out after %v (-timeout)", r.opts.Timeout)
		if last.Message != "" {
			msg += "\n" + last.Message
		}
		return testreport.Fail, msg
	case last.Status == "":
		why := "exit status 0"
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			why = ee.ProcessState.String()
		} else if werr != nil {
			why = werr.Error()
		}
		return testreport.Fail, fmt.Sprintf("the test's process ended (%s) without reporting a result (its reaper undoes what it changed on the host)", why)
	}
	return last.Status, last.Message
}

// nsOf identifies the namespace of the given kind of process pid.
func nsOf(pid int, kind string) ([2]uint64, error) {
	var st unix.Stat_t
	err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), &st)
	return [2]uint64{st.Dev, st.Ino}, err
}

// leftIn waits up to leakcheck.Settle for the processes of mount
// namespace mnt to end (a test's reaper, undoing after a SIGKILL, is one),
// then kills those still there and names them ("pid comm").
func leftIn(mnt [2]uint64) []string {
	deadline := time.Now().Add(leakcheck.Settle)
	for {
		var left []string
		var pids []int
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if ns, err := nsOf(pid, "mnt"); err != nil || ns != mnt {
				continue
			}
			comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
			if st, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); strings.Contains(string(st), ") Z ") {
				continue // a zombie: ended, not yet reaped
			}
			pids = append(pids, pid)
			left = append(left, fmt.Sprintf("process %d %s", pid, strings.TrimSpace(string(comm))))
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				unix.Kill(pid, unix.SIGKILL)
			}
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reapOrphans reaps, until the returned function is called, the zombies
// re-parented to the runner (a subreaper) that are not test children.
func (r *runner) reapOrphans() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	self := os.Getpid()
	go func() {
		defer close(finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			r.mu.Lock()
			for _, pid := range zombieChildren(self) {
				if !r.running[pid] {
					var ws unix.WaitStatus
					unix.Wait4(pid, &ws, unix.WNOHANG, nil)
				}
			}
			r.mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// zombieChildren lists the children of pid that are zombies. The
// children are read from /proc/PID/task/*/children (a few small files),
// not from a scan of every process.
func zombieChildren(pid int) []int {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			st, err := os.ReadFile("/proc/" + f + "/stat")
			if err != nil {
				continue
			}
			s := string(st)
			i := strings.LastIndexByte(s, ')')
			if i < 0 || !strings.HasPrefix(s[i+1:], " Z ") {
				continue
			}
			if p, err := strconv.Atoi(f); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// handleSignals makes SIGINT, SIGTERM and SIGHUP stop the run: no test
// starts any more, the running ones get SIGTERM (and tear down), and the
// results so far are written. Under --shell-on-fail SIGINT is left to
// the REPL of the failed test. The returned function stops the handling.
func (r *runner) handleSignals() (stop func()) {
	c := make(chan os.Signal, 4)
	sigs := []os.Signal{syscall.SIGTERM, syscall.SIGHUP}
	if r.opts.ShellOnFail {
		signal.Ignore(syscall.SIGINT)
	} else {
		sigs = append(sigs, syscall.SIGINT)
	}
	signal.Notify(c, sigs...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-c:
				r.mu.Lock()
				r.stopped = true
				if r.signal == 0 {
					r.signal = s.(syscall.Signal)
				}
				for pid := range r.running {
					unix.Kill(pid, unix.SIGTERM)
				}
				r.mu.Unlock()
			}
		}
	}()
	return func() { signal.Stop(c); close(done) }
}

// write writes the results and returns the exit status.
func (r *runner) write(results []testreport.Result, start time.Time, total time.Duration) int {
	status := 0
	for _, x := range results {
		if !x.Status.OK() {
			status = 1
		}
	}
	var err error
	if r.opts.TAP {
		err = testreport.WriteTAP(r.opts.Stdout, results)
	} else {
		err = testreport.WriteSummary(r.opts.Stdout, results, total, false)
	}
	if err != nil {
		fmt.Fprintf(r.opts.Stderr, "nsh test: writing the results: %v\n", err)
		status = 1
	}
	if r.opts.JUnit != "" {
		if err := writeJUnit(r.opts.JUnit, results, start, total); err != nil {
			fmt.Fprintf(r.opts.Stderr, "nsh test: --junit: %v\n", err)
			status = 1
		}
	}
	r.mu.Lock()
	sig := r.signal
	r.mu.Unlock()
	if sig != 0 {
		fmt.Fprintf(r.opts.Stderr, "nsh test: interrupted by %s\n", unix.SignalName(sig))
		return 128 + int(sig)
	}
	return status
}

func writeJUnit(path string, results []testreport.Result, start time.Time, total time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := testreport.WriteJUnit(f, "nsh test", results, start, total); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncBuffer is a bytes buffer safe for the two copiers of a child's
// stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lockedWriter writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
