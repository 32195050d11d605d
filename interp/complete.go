package interp

import (
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
)

// completer completes, at the REPL's Tab: global names; after "x.y.",
// attribute names of the value the dotted path denotes (looked up, never
// called); and inside a call, the keyword arguments of the callee not yet
// given ("ping(addr, co" offers "count="), from the signature in the doc
// table for a builtin or a method, or from the parameters of a def.
type completer struct {
	env   starlark.StringDict
	table doc.Table
	// before is the text of the chunk's earlier lines (each ending in a
	// newline), so that a call opened on one of them is seen.
	before string
}

var keywords = []string{"and", "break", "continue", "def", "elif", "else", "for", "if", "in", "lambda", "load", "not", "or", "pass", "return", "while", "True", "False", "None"}

// exprKeywords are the keywords that may appear inside brackets.
var exprKeywords = []string{"and", "else", "for", "if", "in", "lambda", "not", "or", "True", "False", "None"}

// Do implements readline.AutoCompleter.
func (c *completer) Do(line []rune, pos int) ([][]rune, int) {
	sc := scanCode(c.before + string(line[:pos]))
	if sc.quote != "" || sc.comment >= 0 {
		return nil, 0 // inside a string or a comment
	}
	start := pos
	for start > 0 && (isIdent(line[start-1]) || line[start-1] == '.') {
		start--
	}
	word := string(line[start:pos])
	var first, cands []string // first: keyword arguments, offered before names
	prefix := word
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		prefix = word[i+1:]
		v := c.lookup(word[:i])
		if ha, ok := v.(starlark.HasAttrs); ok {
			cands = ha.AttrNames()
		}
	} else {
		if call := sc.call(); call != nil && strings.TrimSpace(call.args[len(call.args)-1]) == word {
			first = c.keywordArgs(call)
		}
		for k := range c.env {
			cands = append(cands, k)
		}
		for k := range starlark.Universe {
			cands = append(cands, k)
		}
		if len(sc.frames) > 0 {
			cands = append(cands, exprKeywords...)
		} else {
			cands = append(cands, keywords...)
		}
	}
	sort.Strings(cands)
	var out [][]rune
	seen := map[string]bool{}
	for _, s := range append(first, cands...) {
		if !seen[s] && strings.HasPrefix(s, prefix) && !strings.HasPrefix(s, "_") {
			out = append(out, []rune(s[len(prefix):]))
		}
		seen[s] = true
	}
	return out, len([]rune(prefix))
}

// (Compiled at first use, not at every nsh start.)
var keywordArgRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=($|[^=])`) })

// keywordArgs returns "name=" for each parameter of the call's callee that
// the arguments so far leave open: not given by keyword, nor by position.
func (c *completer) keywordArgs(call *openBracket) []string {
	params := c.params(call.callee)
	used := map[string]bool{}
	npos := 0
	for _, a := range call.args[:len(call.args)-1] {
		if m := keywordArgRe().FindStringSubmatch(a); m != nil {
			used[m[1]] = true
		} else if t := strings.TrimSpace(a); t != "" && !strings.HasPrefix(t, "*") {
			npos++
		}
	}
	var out []string
	positional := true
	for i, p := range params {
		if strings.HasPrefix(p, "*") {
			positional = false
			continue
		}
		if used[p] || positional && i < npos {
			continue
		}
		out = append(out, p+"=")
	}
	return out
}

// params returns the parameter names of what callee (a dotted name)
// denotes, as doc.Params gives them: a builtin's or a method's from the
// doc table, a def's from the function itself.
func (c *completer) params(callee string) []string {
	switch v := c.lookup(callee).(type) {
	case *starlark.Builtin:
		if recv := v.Receiver(); recv != nil {
			if m, ok := c.table.Method(recv.Type(), v.Name()); ok {
				return doc.Params(m.Sig)
			}
			return nil
		}
		if f, ok := c.table.Func(v.Name()); ok {
			return doc.Params(f.Sig)
		}
	case *starlark.Function:
		n := v.NumParams()
		var star, starstar string
		if v.HasKwargs() {
			n--
			name, _ := v.Param(n)
			starstar = "**" + name
		}
		if v.HasVarargs() {
			n--
			name, _ := v.Param(n)
			star = "*" + name
		}
		var out []string
		for i := 0; i < n; i++ {
			if i == n-v.NumKwonlyParams() {
				out = append(out, starOr(star))
				star = ""
			}
			name, _ := v.Param(i)
			out = append(out, name)
		}
		if star != "" {
			out = append(out, star)
		}
		if starstar != "" {
			out = append(out, starstar)
		}
		return out
	}
	return nil
}

// starOr is the *args parameter, or a bare * before keyword-only ones.
func starOr(star string) string {
	if star != "" {
		return star
	}
	return "*"
}

func (c *completer) lookup(path string) starlark.Value {
	parts := strings.Split(path, ".")
	v, ok := c.env[parts[0]]
	if !ok {
		v, ok = starlark.Universe[parts[0]]
		if !ok {
			return nil
		}
	}
	for _, p := range parts[1:] {
		ha, ok := v.(starlark.HasAttrs)
		if !ok {
			return nil
		}
		next, err := ha.Attr(p)
		if err != nil || next == nil {
			return nil
		}
		v = next
	}
	return v
}

func isIdent(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// typedCode is what scanCode learns of a piece of Starlark source, read up to
// its end (the cursor): the brackets still open, and whether the end is
// inside a string or a comment.
type typedCode struct {
	frames  []openBracket
	quote   string // the quote of the string the end is in, or ""
	comment int    // offset of the comment the end is in, or -1
}

// openBracket is one bracket still open.
type openBracket struct {
	open     byte
	callee   string   // for "(": the dotted name before it ("ping", "p.expect"), if any
	args     []string // the text of each argument so far; the last is being typed
	argStart int
}

// call returns the innermost open bracket if it is a call of a dotted name.
func (c *typedCode) call() *openBracket {
	if n := len(c.frames); n > 0 && c.frames[n-1].open == '(' && c.frames[n-1].callee != "" {
		return &c.frames[n-1]
	}
	return nil
}

// (Compiled at first use, not at every nsh start.)
var calleeRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*$`)
})

// scanCode reads s as Starlark source, tracking strings, comments and
// brackets; it is lenient (a stray closing bracket is ignored), as the
// text of a line being typed need not parse.
func scanCode(s string) typedCode {
	c := typedCode{comment: -1}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if c.quote != "" {
			switch {
			case ch == '\\':
				i++
			case ch == '\n' && len(c.quote) == 1:
				c.quote = "" // an unterminated string ends with its line
			case strings.HasPrefix(s[i:], c.quote):
				i += len(c.quote) - 1
				c.quote = ""
			}
			continue
		}
		if c.comment >= 0 {
			if ch == '\n' {
				c.comment = -1
			}
			continue
		}
		switch ch {
		case '#':
			c.comment = i
		case '"', '\'':
			q := s[i : i+1]
			if strings.HasPrefix(s[i:], strings.Repeat(q, 3)) {
				q = strings.Repeat(q, 3)
			}
			c.quote = q
			i += len(q) - 1
		case '(', '[', '{':
			f := openBracket{open: ch, argStart: i + 1}
			if ch == '(' {
				// Not a method of a literal ("".join): no dot before the name.
				if m := calleeRe().FindStringSubmatchIndex(s[:i]); m != nil && !strings.HasSuffix(strings.TrimSpace(s[:m[2]]), ".") {
					if name := strings.Join(strings.Fields(s[m[2]:m[3]]), ""); !isKeyword(name) {
						f.callee = name
					}
				}
			}
			c.frames = append(c.frames, f)
		case ')', ']', '}':
			if n := len(c.frames); n > 0 {
				c.frames = c.frames[:n-1]
			}
		case ',':
			if n := len(c.frames); n > 0 {
				f := &c.frames[n-1]
				f.args = append(f.args, s[f.argStart:i])
				f.argStart = i + 1
			}
		}
	}
	for i := range c.frames {
		f := &c.frames[i]
		f.args = append(f.args, s[f.argStart:])
	}
	return c
}

func isKeyword(s string) bool {
	for _, k := range keywords {
		if s == k {
			return true
		}
	}
	return false
}
