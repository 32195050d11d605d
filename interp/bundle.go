package interp

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/syntax"
)

// Bundle is a script with every module it loads, to run it on another
// machine (nsh up --host): the files by slash path relative to the
// script's directory, which is the run's root there as here.
type Bundle struct {
	Script string            `json:"script"` // the script's path in Files
	Files  map[string][]byte `json:"files"`
}

// NewBundle reads script and the modules its load() statements name,
// and theirs, found without running anything: each file is parsed and
// its load() statements resolved as a run resolves them (relative to the
// loading file's directory, never out of the script's directory). An
// absolute module path is refused: on the other machine it would name
// that machine's file.
func NewBundle(script string) (*Bundle, error) {
	abs, err := filepath.Abs(script)
	if err != nil {
		return nil, err
	}
	root := filepath.Dir(abs)
	b := &Bundle{Script: filepath.Base(abs), Files: map[string][]byte{}}
	var add func(rel string, pipes bool, by string) error
	add = func(rel string, pipes bool, by string) error {
		if _, ok := b.Files[rel]; ok {
			return nil
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		src, err := ReadScript(p, pipes)
		if err != nil {
			if by != "" {
				return fmt.Errorf("%s: %w", by, err)
			}
			return err
		}
		b.Files[rel] = src
		f, err := Options.Parse(p, src, 0)
		if err != nil {
			return err
		}
		for _, st := range f.Stmts {
			ls, ok := st.(*syntax.LoadStmt)
			if !ok {
				continue
			}
			mod, _ := ls.Module.Value.(string)
			pos := ls.Module.TokenPos
			at := fmt.Sprintf("%s:%d:%d: load(%q)", p, pos.Line, pos.Col, mod)
			switch {
			case mod == "":
				return fmt.Errorf("%s: empty module path", at)
			case path.IsAbs(mod) || filepath.IsAbs(mod):
				return fmt.Errorf("%s: an absolute module path names a file of each host, not one nsh can send; put the module beside the recipe and load it by a relative path", at)
			}
			next := path.Join(path.Dir(rel), filepath.ToSlash(mod))
			if next == ".." || strings.HasPrefix(next, "../") {
				return fmt.Errorf("%s: escapes the script's directory %s", at, root)
			}
			if err := add(next, false, at); err != nil {
				return err
			}
		}
		return nil
	}
	if err := add(b.Script, true, ""); err != nil {
		return nil, err
	}
	return b, nil
}

// Names lists the bundle's files, sorted.
func (b *Bundle) Names() []string {
	var names []string
	for n := range b.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Unpack writes the bundle's files under dir (which must exist) and
// returns the script's path there. A file name that would lead out of
// dir is refused.
func (b *Bundle) Unpack(dir string) (string, error) {
	if _, ok := b.Files[b.Script]; !ok {
		return "", fmt.Errorf("bundle: its script %q is not among its files", b.Script)
	}
	for _, n := range b.Names() {
		clean := path.Clean(n)
		if clean != n || path.IsAbs(n) || n == ".." || strings.HasPrefix(n, "../") || n == "." {
			return "", fmt.Errorf("bundle: file name %q leads out of its directory", n)
		}
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, b.Files[n], 0o600); err != nil {
			return "", err
		}
	}
	if len(b.Files) == 0 {
		return "", errors.New("bundle: no files")
	}
	return filepath.Join(dir, filepath.FromSlash(b.Script)), nil
}
