package testrun

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.starlark.net/syntax"

	"nsh.dev/nsh/interp"
)

// Suffix ends the names of the files nsh test looks for in directories.
const Suffix = "_test.star"

// Test is one test: a function of a test file.
type Test struct {
	File string // the file as given or found
	Name string // the function's name, test_...
}

// ID is how a test is named in messages and matched by -run: FILE:NAME.
func (t Test) ID() string { return t.File + ":" + t.Name }

// FindFiles returns the test files under paths: a directory is searched
// recursively for *_test.star files (directories whose names start with
// "." are passed over), a file is taken as it is. A path that does not
// exist is an error.
func FindFiles(paths []string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), Suffix) {
				add(path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// ListTests returns the tests of a file, in file order: the functions
// defined by a def statement at its top level whose names start with
// "test_". The file is parsed, not run.
func ListTests(file string) ([]Test, error) {
	src, err := interp.ReadScript(file, false)
	if err != nil {
		return nil, err
	}
	f, err := interp.Options.Parse(file, src, 0)
	if err != nil {
		return nil, fmt.Errorf("%s", interp.FormatError(err))
	}
	var tests []Test
	for _, st := range f.Stmts {
		if def, ok := st.(*syntax.DefStmt); ok && strings.HasPrefix(def.Name.Name, "test_") {
			tests = append(tests, Test{File: file, Name: def.Name.Name})
		}
	}
	return tests, nil
}

// Filter keeps the tests that re (-run) matches, as their name or as
// FILE:NAME; a nil re keeps all.
func Filter(tests []Test, re *regexp.Regexp) []Test {
	if re == nil {
		return tests
	}
	var out []Test
	for _, t := range tests {
		if re.MatchString(t.Name) || re.MatchString(t.ID()) {
			out = append(out, t)
		}
	}
	return out
}

// LoadRoot is the directory a test file's load() paths may not lead out of
// (interp.Run's root): the top of the checkout the file is in — the nearest
// directory above it holding .git — so a suite under tests/ loads the
// project's recipes ("../scripts/chain.star"); or, for a file in no
// checkout, its own directory, as for a script.
func LoadRoot(file string) string {
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return filepath.Dir(file)
	}
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		up := filepath.Dir(d)
		if up == d {
			return dir
		}
		d = up
	}
}
