package interp

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/nserr"
)

// load implements load(): a module path is resolved against the directory
// of the file that loads it; a relative path may not lead out of the run's
// root, neither with ".." nor through a symlink (symlinks are resolved,
// then the real path must lie under the root's real path); an absolute one
// may point anywhere. A module must be a regular file of at most
// MaxScriptSize bytes. Each module runs once per run (per real path) and
// its globals are cached; a cycle is an error naming the chain.
func (r *Run) load(thread *starlark.Thread, name string) (starlark.StringDict, error) {
	from, _ := thread.Local(fileKey).(string)
	path, err := r.resolve(from, name)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	m, ok := r.modules[path]
	if ok && m.loading {
		r.mu.Unlock()
		return nil, fmt.Errorf("load cycle: %s", r.cycle(path))
	}
	if ok {
		r.mu.Unlock()
		return m.globals, m.err
	}
	m = &module{loading: true}
	r.modules[path] = m
	r.mu.Unlock()

	src, err := ReadScript(path, false)
	if err != nil {
		m.err = fmt.Errorf("cannot load %q: %w", name, nserr.Cause(err))
	} else {
		th := r.NewThread(path)
		m.err = r.track(th, func() error {
			var err error
			m.globals, err = starlark.ExecFileOptions(Options, th, path, src, r.predeclared())
			suggestUndefined(err, r.predeclaredNames)
			return err
		})
	}
	r.mu.Lock()
	m.loading = false
	r.mu.Unlock()
	return m.globals, m.err
}

// cycle renders the modules being loaded, ending with path again.
func (r *Run) cycle(path string) string {
	var chain []string
	for p, m := range r.modules {
		if m.loading {
			chain = append(chain, filepath.Base(p))
		}
	}
	return strings.Join(chain, ", ") + " -> " + filepath.Base(path)
}

func (r *Run) resolve(from, module string) (string, error) {
	if module == "" {
		return "", fmt.Errorf("load: empty module path")
	}
	if filepath.IsAbs(module) {
		return filepath.Clean(module), nil
	}
	root := r.root()
	dir := root
	if from != "" && filepath.IsAbs(from) {
		dir = filepath.Dir(from)
	} else if from != "" && !strings.HasPrefix(from, "<") {
		if abs, err := filepath.Abs(from); err == nil {
			dir = filepath.Dir(abs)
		}
	}
	path := filepath.Join(dir, module)
	// A module loaded by its real path loads others from its real
	// directory: both spellings of the root count.
	realRoot := r.realRoot()
	escapes := !within(root, path) && !within(realRoot, path)
	if escapes {
		return "", fmt.Errorf("load: %q escapes the script's directory %s (use an absolute path to load from elsewhere)", module, root)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return path, nil // reading it reports what is wrong
	}
	if !within(realRoot, real) {
		return "", fmt.Errorf("load: %q leads through a symlink to %s, outside the script's directory %s (use an absolute path to load from elsewhere)", module, real, realRoot)
	}
	return real, nil
}

// within reports whether path lies under dir (both absolute and clean).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// MaxScriptSize is the largest script or module nsh reads: 16 MiB, a
// hundred times the largest script of its examples and tests.
const MaxScriptSize = 16 << 20

// ReadScript reads a script or module file. It must be a regular file,
// or, when pipes is set (the script named on nsh's command line, such as
// `nsh <(generate)`), a pipe; devices, directories and sockets are
// refused, and so is anything longer than MaxScriptSize. A module is
// opened without blocking, so a FIFO is refused rather than waited on.
func ReadScript(path string, pipes bool) ([]byte, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY
	if pipes {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			flags = os.O_RDONLY // wait for a writer, as cat would
		}
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() && !(pipes && fi.Mode()&os.ModeNamedPipe != 0) {
		want := "a regular file"
		if pipes {
			want = "a regular file or a pipe"
		}
		return nil, fmt.Errorf("%s is %s, not %s", path, fileKind(fi.Mode()), want)
	}
	return readCapped(f, path)
}

// ReadScriptFrom reads a script from r (nsh's stdin), at most
// MaxScriptSize bytes.
func ReadScriptFrom(r io.Reader, name string) ([]byte, error) { return readCapped(r, name) }

func readCapped(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxScriptSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxScriptSize {
		return nil, fmt.Errorf("%s is longer than %s, the limit for a script", name, FormatSize(MaxScriptSize))
	}
	return b, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}
