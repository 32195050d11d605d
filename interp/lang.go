package interp

import (
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"nsh.dev/nsh/internal/doc"
	"nsh.dev/nsh/internal/format"
)

// languageTable documents and implements the builtins that belong to the
// shell itself rather than to a kernel object family.
func (in *Interp) languageTable() doc.Table {
	return doc.Table{
		Funcs: []doc.Func{
			{
				Name: "help",
				Sig:  "help(x=None)",
				Doc: `Prints the reference of a builtin, type, method or topic.
help() lists every builtin with its summary. help(veth) prints the doc of the
veth builtin; help(link) or help("nsh.link") that of a type with its
attributes and methods; help(l.up) that of a bound method; help("language")
the Starlark dialect nsh accepts. help("WORD"), for a word that names
nothing, lists the builtins, methods, types and topics whose doc mentions it.
The same text is printed by "nsh doc NAME".`,
				Impl: in.help,
			},
			{
				Name: "exit",
				Sig:  "exit(code=0)",
				Doc: `Ends the script now with the given exit status.
Everything the script created is torn down first, exactly as at the normal
end of the script; what was persisted stays.`,
				Impl: exitBuiltin,
			},
			{
				Name: "fmt",
				Sig:  "fmt(template, *args, **kwargs)",
				Doc: `Formats numbers and text with width, precision and grouping, as Python's str.format.
Starlark's % has no width or precision ("%.1f" % x fails with "unknown
conversion %."); fmt has Python's format-spec mini-language:
  fmt("{:.1f} Mbit/s", 19.87)        "19.9 Mbit/s"
  fmt("{:>8}|{:<6}|", "eth0", 42)    "    eth0|42    |"
  fmt("{:,}", 1234567)               "1,234,567"
  fmt("{:x} {:#06x}", 255, 255)      "ff 0x00ff"
  fmt("{:5.1%}", 0.25)               "25.0%"
  fmt("{0} {0!r} {n:03d}", "a", n=7) "a \"a\" 007"
  fmt("{r.mbit:.1f}", r=result)      an attribute of an nsh value
  fmt("{:>{w}}", "x", w=5)           the width from an argument
  fmt(".2f", 3.14159)                "3.14": a bare spec formats one value
Fields: {} the next argument, {0} by position, {name} by keyword, then
.attr and [index]; !r or !s; then :spec. {{ and }} are literal braces.
Spec: [[fill]align][sign][z][#][0][width][,|_][.precision][type]
  align  < left (text's default), > right (numbers'), ^ centre, = after the sign
  sign   + always, - negatives only (default), space before positives
  z      no "-" on a value that rounds to zero; # 0b/0o/0x prefix, keep the point
  0      pad with zeros after the sign; , or _ groups thousands (_ by 4 for b/o/x)
  type   int: d b o x X c n   float (or int): f F e E g G n %   text: s
  no type: ints as d, floats as Python's repr (or g-like with a precision), the
  rest as str(); bool formats as True/False, or 1/0 with a numeric type.
A template is any string with a brace; a string without one and one argument
is a bare spec (Python's format(x, spec)).`,
				Impl: fmtBuiltin,
			},
			{
				Name: "round",
				Sig:  "round(x, ndigits=None)",
				Doc: `Rounds a number as Python does: a tie goes to the even digit.
round(2.5) is 2 and round(3.5) is 4, both ints: without ndigits the result
is an int. round(19.87, 1) is 19.9 (a float); round(1250, -2) is 1200 (an
int: negative ndigits round to tens, hundreds, ...). A float rounds by its
exact binary value: round(2.675, 2) is 2.67, since 2.675 is stored as
2.67499.... For text use fmt("{:.2f}", x).`,
				Impl: roundBuiltin,
			},
		},
		Topic: map[string]string{
			"language": languageDoc,
			"argv": `argv: the script's arguments as a list of strings; argv[0] is the script
path ("-c" for a one-liner, "-" for stdin, "" in the REPL).`,
			"json":   "json: go.starlark.net's json module: json.encode(x), json.decode(s), json.indent(s).",
			"math":   "math: go.starlark.net's math module: math.sqrt, math.floor, math.pi, ...",
			"time":   "time: go.starlark.net's time module: time.now(), time.parse_duration(\"1s\"), ...",
			"struct": "struct(**kwargs): an immutable record with the given fields, e.g. struct(a=1).a",
		},
	}
}

const languageDoc = `nsh scripts are Starlark (https://github.com/bazelbuild/starlark) with these
options enabled, as a scripting user expects:
  set()           the set type: set([1, 2]) | set([3])
  while loops     while cond: ...
  top-level control   if/for/while statements outside functions
  global reassignment   x = 1; x = 2 at top level
  recursion       functions may call themselves
load("lib.star", "f") loads a module relative to the loading file; each
module runs once per run. Predeclared modules: assert, json, math, time,
struct.
Use fail(msg) to stop a script with an error (exit status 1), exit(code) to
stop it early with a status; both tear down what the script created.
Limits: calls nest at most 100,000 deep ("Starlark stack overflow"); the
script is cancelled when nsh's heap passes --max-memory (default 2GiB), and
after --max-steps Starlark steps if given (no limit by default). load()
follows a symlink only if it stays in the script's directory, and reads
only regular files of at most 16 MiB.`

func exitBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	code := 0
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "code?", &code); err != nil {
		return nil, err
	}
	if code < 0 || code > 255 {
		return nil, fmt.Errorf("exit code %d is out of range 0..255", code)
	}
	return nil, &ExitError{Code: code}
}

func fmtBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("fmt: missing template (e.g. fmt(\"{:.1f}\", x))")
	}
	tmpl, ok := starlark.AsString(args[0])
	if !ok {
		return nil, fmt.Errorf("fmt: template must be a string, not %s", args[0].Type())
	}
	var (
		s   string
		err error
	)
	if !strings.ContainsAny(tmpl, "{}") && len(args) == 2 && len(kwargs) == 0 {
		s, err = format.Value(args[1], tmpl)
	} else {
		s, err = format.Template(tmpl, args[1:], kwargs)
	}
	if err != nil {
		return nil, fmt.Errorf("fmt: %v", err)
	}
	return starlark.String(s), nil
}

func roundBuiltin(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x, nd starlark.Value = nil, starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "x", &x, "ndigits?", &nd); err != nil {
		return nil, err
	}
	return format.Round(x, nd)
}

func (in *Interp) help(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value = starlark.None
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "x?", &x); err != nil {
		return nil, err
	}
	text, err := in.HelpOf(x)
	if err != nil {
		return nil, err
	}
	th.Print(th, strings.TrimRight(text, "\n"))
	return starlark.None, nil
}

// HelpOf returns the help text of a value: a builtin, a method bound to an
// nsh value, an nsh value (its type's doc), a module such as assert (its
// topic), or a string naming any of those or a topic. None gives the index of everything.
func (in *Interp) HelpOf(x starlark.Value) (string, error) {
	switch x := x.(type) {
	case starlark.NoneType:
		return in.Index(), nil
	case starlark.String:
		return in.Doc(string(x))
	case *starlark.Builtin:
		if recv := x.Receiver(); recv != nil {
			if m, ok := in.table.Method(recv.Type(), x.Name()); ok {
				return doc.FormatFunc(m), nil
			}
			return "", fmt.Errorf("no help for method %s of %s", x.Name(), recv.Type())
		}
		return in.Doc(x.Name())
	case *starlarkstruct.Module:
		return in.Doc(x.Name) // assert, json, math, time: their topics
	case *starlark.Function:
		s := x.Doc()
		if s == "" {
			s = "(no docstring)"
		}
		return fmt.Sprintf("%s (function defined at %s)\n\n%s\n", x.Name(), x.Position(), s), nil
	}
	if ty, ok := in.table.Type(x.Type()); ok {
		return doc.FormatType(ty), nil
	}
	return "", fmt.Errorf("no help for a value of type %s", x.Type())
}

// Doc returns the reference text for a name: a builtin, a type ("link",
// "nsh.link"), a method ("link.up"), a constant or a topic. A word that
// names none of those is searched for: the text lists the entries whose
// name, parameters or doc mention it (doc.Table.Search), best first.
func (in *Interp) Doc(name string) (string, error) {
	if f, ok := in.table.Func(name); ok {
		return doc.FormatFunc(f), nil
	}
	if ty, ok := in.table.Type(name); ok {
		return doc.FormatType(ty), nil
	}
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		if m, ok := in.table.Method(name[:i], name[i+1:]); ok {
			return doc.FormatFunc(m), nil
		}
	}
	if t, ok := in.table.Topic[name]; ok {
		return t + "\n", nil
	}
	if hits := in.table.Search(name); len(hits) > 0 {
		return formatHits(name, hits), nil
	}
	return "", fmt.Errorf("no help for %q, and no doc mentions it (help() lists what there is)", name)
}

// formatHits renders what Search found for a word that names nothing: one
// line per entry, its name and the signature or the line that mentions
// the word.
func formatHits(word string, hits []doc.Hit) string {
	width := 0
	for _, h := range hits {
		width = max(width, min(len(h.Name), 20))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Nothing is named %q; these mention it (help(NAME) or nsh doc NAME for one):\n", word)
	for _, h := range hits {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, h.Name, excerpt(h.Line, word, 76-width))
	}
	return b.String()
}

// excerpt shortens line to at most room bytes, keeping the first mention
// of word in view.
func excerpt(line, word string, room int) string {
	if len(line) <= room {
		return line
	}
	at := strings.Index(strings.ToLower(line), strings.ToLower(word))
	if at < 0 || at+len(word) <= room-3 {
		return line[:room-3] + "..."
	}
	start := min(at-(room-len(word))/2, len(line)-(room-3))
	if start+room-3 >= len(line) {
		return "..." + line[start:]
	}
	return "..." + line[start:start+room-6] + "..."
}

// Index lists every builtin, type and topic with its summary.
func (in *Interp) Index() string {
	var b strings.Builder
	b.WriteString("Builtins (help(NAME) for details):\n")
	for _, f := range in.table.Funcs {
		if len(f.Sig) > 44 {
			// A long signature gets a line of its own.
			fmt.Fprintf(&b, "  %s\n  %-44s %s\n", f.Sig, "", doc.Summary(f.Doc))
			continue
		}
		fmt.Fprintf(&b, "  %-44s %s\n", f.Sig, doc.Summary(f.Doc))
	}
	if len(in.table.Types) > 0 {
		b.WriteString("\nTypes:\n")
		types := append([]doc.Type(nil), in.table.Types...)
		sort.Slice(types, func(i, j int) bool { return types[i].Name < types[j].Name })
		for _, t := range types {
			fmt.Fprintf(&b, "  %-44s %s\n", t.Name, doc.Summary(t.Doc))
		}
	}
	var topics []string
	for k := range in.table.Topic {
		topics = append(topics, k)
	}
	sort.Strings(topics)
	fmt.Fprintf(&b, "\nTopics: %s\n", strings.Join(topics, ", "))
	return b.String()
}
