package interp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
)

// load implements load(): a module path is resolved against the directory
// of the file that loads it; a relative path may not climb out of the run's
// root with "..", an absolute one may point anywhere. Each module runs once
// per run and its globals are cached; a cycle is an error naming the chain.
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

	src, err := os.ReadFile(path)
	if err != nil {
		m.err = fmt.Errorf("cannot load %q: %w", name, unwrapPathErr(err))
	} else {
		th := r.NewThread(path)
		m.err = r.track(th, func() error {
			var err error
			m.globals, err = starlark.ExecFileOptions(Options, th, path, src, r.predeclared())
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
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("load: %q escapes the script's directory %s (use an absolute path to load from elsewhere)", module, root)
	}
	return path, nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
