// Package format implements Python's format-spec mini-language and
// str.format-style templates for Starlark values, and Python's round():
// the fmt() and round() builtins of nsh. Starlark's own % operator and
// str.format have no width, precision or grouping; this package adds them
// without changing the language.
//
// A spec is [[fill]align][sign][z][#][0][width][grouping][.precision][type]:
//
//	fill       any character, used with an align
//	align      < left (strings' default), > right (numbers' default),
//	           ^ centre, = pad after the sign (numbers only)
//	sign       + always, - only negatives (default), space: a space for positives
//	z          -0.0 rounded to zero prints as 0.0
//	#          alternate form: 0b, 0o, 0x prefixes; keep the point and zeros of g
//	0          pad numbers with zeros after the sign (as fill 0 with align =)
//	width      minimum width in characters
//	grouping   , or _ every three digits (_ every four for b, o, x, X)
//	precision  digits after the point (f, e, %), significant digits (g, none),
//	           or the most characters of a string
//	type       ints: d b o x X c n; floats (and ints): f F e E g G n %; strings: s
//
// Values other than int, float and string (bool, None, lists, nsh objects)
// format as their str(), with the string rules; bool takes a numeric type
// as 1 or 0. An int formatted with a float type is converted to float.
package format

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
)

// Spec is a parsed format spec.
type Spec struct {
	Fill      rune // 0: space
	Align     byte // 0, '<', '>', '^', '='
	Sign      byte // 0, '+', '-', ' '
	NoNegZero bool // z
	Alt       bool // #
	Width     int  // -1: none
	Group     byte // 0, ',', '_'
	Prec      int  // -1: none
	Type      byte // 0 or the type letter
}

// maxWidth bounds width and precision, so a spec cannot ask for gigabytes.
const maxWidth = 1 << 16

// ParseSpec parses a format spec such as ">8", "+,.2f" or "08x".
func ParseSpec(s string) (Spec, error) {
	sp := Spec{Width: -1, Prec: -1}
	rest := s
	isAlign := func(c byte) bool { return c == '<' || c == '>' || c == '^' || c == '=' }
	if r, n := utf8.DecodeRuneInString(rest); n > 0 && n < len(rest) && isAlign(rest[n]) {
		sp.Fill, sp.Align, rest = r, rest[n], rest[n+1:]
	} else if rest != "" && isAlign(rest[0]) {
		sp.Align, rest = rest[0], rest[1:]
	}
	if rest != "" && (rest[0] == '+' || rest[0] == '-' || rest[0] == ' ') {
		sp.Sign, rest = rest[0], rest[1:]
	}
	if rest != "" && rest[0] == 'z' {
		sp.NoNegZero, rest = true, rest[1:]
	}
	if rest != "" && rest[0] == '#' {
		sp.Alt, rest = true, rest[1:]
	}
	if rest != "" && rest[0] == '0' {
		// As in Python: 0 fills with zeros unless a fill is given, and
		// pads after the sign unless an align is given.
		if sp.Fill == 0 {
			sp.Fill = '0'
		}
		if sp.Align == 0 {
			sp.Align = '='
		}
		rest = rest[1:]
	}
	var err error
	if sp.Width, rest, err = number(rest, s, "width"); err != nil {
		return sp, err
	}
	if rest != "" && (rest[0] == ',' || rest[0] == '_') {
		sp.Group, rest = rest[0], rest[1:]
	}
	if rest != "" && rest[0] == '.' {
		if sp.Prec, rest, err = number(rest[1:], s, "precision"); err != nil {
			return sp, err
		}
		if sp.Prec < 0 {
			return sp, fmt.Errorf("format spec %q: no digits after the '.' of the precision", s)
		}
	}
	if len(rest) == 1 && strings.IndexByte("bcdoxXnsfFeEgG%", rest[0]) >= 0 {
		sp.Type, rest = rest[0], ""
	}
	if rest != "" {
		return sp, fmt.Errorf("invalid format spec %q (expected [[fill]align][sign][z][#][0][width][,|_][.precision][type])", s)
	}
	return sp, nil
}

// number reads leading decimal digits; -1 when there are none.
func number(s, spec, what string) (int, string, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return -1, s, nil
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n > maxWidth {
		return 0, s, fmt.Errorf("format spec %q: %s %s is too large (at most %d)", spec, what, s[:i], maxWidth)
	}
	return n, s[i:], nil
}

// Value formats v by spec, as Python's format(v, spec).
func Value(v starlark.Value, spec string) (string, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return "", err
	}
	return sp.Format(v)
}

// Format formats v by the spec.
func (sp Spec) Format(v starlark.Value) (string, error) {
	numeric := sp.Type != 0 && sp.Type != 's'
	switch x := v.(type) {
	case starlark.Int:
		return sp.intOrFloat(x.BigInt(), v)
	case starlark.Float:
		return sp.float(float64(x), v)
	case starlark.Bool:
		if numeric {
			n := int64(0)
			if x {
				n = 1
			}
			return sp.intOrFloat(big.NewInt(n), v)
		}
	}
	if numeric {
		return "", fmt.Errorf("unknown format code '%c' for %s %s", sp.Type, v.Type(), v.String())
	}
	s, ok := starlark.AsString(v)
	if !ok {
		s = v.String()
	}
	return sp.str(s, v)
}

func (sp Spec) str(s string, v starlark.Value) (string, error) {
	switch {
	case sp.Sign != 0:
		return "", fmt.Errorf("sign not allowed in a string format spec (value %s)", v.String())
	case sp.Alt:
		return "", fmt.Errorf("alternate form (#) not allowed in a string format spec (value %s)", v.String())
	case sp.Align == '=':
		return "", fmt.Errorf("'=' alignment not allowed in a string format spec (value %s)", v.String())
	case sp.Group != 0:
		return "", fmt.Errorf("cannot specify '%c' with a string (value %s)", sp.Group, v.String())
	case sp.NoNegZero:
		return "", fmt.Errorf("'z' not allowed in a string format spec (value %s)", v.String())
	}
	if sp.Prec >= 0 && utf8.RuneCountInString(s) > sp.Prec {
		n := 0
		for i := range s {
			if n == sp.Prec {
				s = s[:i]
				break
			}
			n++
		}
	}
	return sp.pad("", s, '<'), nil
}

// pad lays out sign+prefix and body in the width, aligned as the spec says
// (def when it says nothing).
func (sp Spec) pad(prefix, body string, def byte) string {
	n := utf8.RuneCountInString(prefix) + utf8.RuneCountInString(body)
	if sp.Width <= n {
		return prefix + body
	}
	fill := sp.Fill
	if fill == 0 {
		fill = ' '
	}
	f := strings.Repeat(string(fill), sp.Width-n)
	align := sp.Align
	if align == 0 {
		align = def
	}
	switch align {
	case '<':
		return prefix + body + f
	case '^':
		half := (sp.Width - n) / 2
		r := []rune(f)
		return string(r[:half]) + prefix + body + string(r[half:])
	case '=':
		return prefix + f + body
	}
	return f + prefix + body
}

func (sp Spec) sign(neg bool) string {
	switch {
	case neg:
		return "-"
	case sp.Sign == '+':
		return "+"
	case sp.Sign == ' ':
		return " "
	}
	return ""
}

func (sp Spec) intOrFloat(n *big.Int, v starlark.Value) (string, error) {
	switch sp.Type {
	case 'f', 'F', 'e', 'E', 'g', 'G', '%':
		f, _ := new(big.Float).SetInt(n).Float64()
		return sp.float(f, v)
	}
	if sp.Prec >= 0 {
		return "", fmt.Errorf("precision not allowed in an integer format spec (value %s; use a float type such as .%df)", v.String(), sp.Prec)
	}
	if sp.NoNegZero {
		return "", fmt.Errorf("'z' not allowed in an integer format spec (value %s)", v.String())
	}
	if sp.Type == 'c' {
		if sp.Sign != 0 || sp.Alt || sp.Group != 0 {
			return "", fmt.Errorf("sign, # and grouping not allowed with 'c' (value %s)", v.String())
		}
		if !n.IsInt64() || n.Int64() < 0 || n.Int64() > utf8.MaxRune {
			return "", fmt.Errorf("%%c arg %s not in range 0..0x10FFFF", v.String())
		}
		return sp.pad("", string(rune(n.Int64())), '>'), nil
	}
	base, prefix, every := 10, "", 3
	switch sp.Type {
	case 'b':
		base, prefix, every = 2, "0b", 4
	case 'o':
		base, prefix, every = 8, "0o", 4
	case 'x', 'X':
		base, prefix, every = 16, "0x", 4
	}
	if !sp.Alt {
		prefix = ""
	}
	if sp.Group == ',' && base != 10 {
		return "", fmt.Errorf("cannot specify ',' with '%c' (value %s; '_' groups by four)", sp.Type, v.String())
	}
	digits := new(big.Int).Abs(n).Text(base)
	if sp.Type == 'X' {
		digits, prefix = strings.ToUpper(digits), strings.ToUpper(prefix)
	}
	return sp.number(sp.sign(n.Sign() < 0)+prefix, digits, "", every), nil
}

// number lays out a number: lead is sign and prefix, intPart the digits
// before the point (grouped as the spec says), frac the point and the
// rest. Zero padding goes between lead and intPart and is grouped too.
func (sp Spec) number(lead, intPart, frac string, every int) string {
	if sp.Fill == '0' && sp.Align == '=' && sp.Group != 0 && sp.Width > 0 {
		// The fewest digits whose grouped form (d digits, (d-1)/every
		// separators) fills the width; counted, not tried by grouping
		// again for each zero added (which took 18 s for a width of
		// 50,050, found by FuzzSpec).
		d := len(intPart)
		for len(lead)+d+(d-1)/every+len(frac) < sp.Width {
			d++
		}
		intPart = strings.Repeat("0", d-len(intPart)) + intPart
		return lead + group(intPart, sp.Group, every) + frac
	}
	return sp.pad(lead, group(intPart, sp.Group, every)+frac, '>')
}

func group(digits string, sep byte, every int) string {
	if sep == 0 || len(digits) <= every {
		return digits
	}
	var b strings.Builder
	first := len(digits) % every
	if first == 0 {
		first = every
	}
	b.WriteString(digits[:first])
	for i := first; i < len(digits); i += every {
		b.WriteByte(sep)
		b.WriteString(digits[i : i+every])
	}
	return b.String()
}

func (sp Spec) float(f float64, v starlark.Value) (string, error) {
	switch sp.Type {
	case 'b', 'c', 'd', 'o', 'x', 'X':
		return "", fmt.Errorf("unknown format code '%c' for float %s (round(x) makes an int)", sp.Type, v.String())
	}
	neg := math.Signbit(f)
	a := math.Abs(f)
	upper := sp.Type == 'F' || sp.Type == 'E' || sp.Type == 'G'
	if math.IsInf(f, 0) || math.IsNaN(f) {
		s := "inf"
		if math.IsNaN(f) {
			s, neg = "nan", false
		}
		if upper {
			s = strings.ToUpper(s)
		}
		if sp.Type == '%' {
			s += "%"
		}
		return sp.pad(sp.sign(neg), s, '>'), nil
	}
	prec := sp.Prec
	var body, suffix string
	switch sp.Type {
	case 'f', 'F':
		if prec < 0 {
			prec = 6
		}
		body = strconv.FormatFloat(a, 'f', prec, 64)
	case '%':
		if prec < 0 {
			prec = 6
		}
		body, suffix = strconv.FormatFloat(a*100, 'f', prec, 64), "%"
	case 'e', 'E':
		if prec < 0 {
			prec = 6
		}
		body = strconv.FormatFloat(a, 'e', prec, 64)
	case 'g', 'G', 'n':
		if prec < 0 {
			prec = 6
		}
		body = general(a, prec, sp.Alt, false)
	default: // no type
		if prec < 0 {
			body = shortest(a)
		} else {
			body = general(a, prec, sp.Alt, true)
		}
	}
	if upper {
		body = strings.ToUpper(body)
	}
	if sp.Alt && !strings.Contains(body, ".") {
		// # keeps the point: "2." for format(2.0, "#.0f"), "3.e+00".
		if i := strings.IndexAny(body, "eE"); i >= 0 {
			body = body[:i] + "." + body[i:]
		} else {
			body += "."
		}
	}
	if sp.NoNegZero && neg && strings.Trim(body, "0.eE+-") == "" {
		neg = false
	}
	intPart, frac := body, ""
	if i := strings.IndexAny(body, ".eE"); i >= 0 {
		intPart, frac = body[:i], body[i:]
	}
	return sp.number(sp.sign(neg), intPart, frac+suffix, 3), nil
}

// general is Python's 'g' for a ≥ 0 with precision p: p significant
// digits, scientific notation when the exponent is below -4 or not below p,
// trailing zeros (and the point) removed unless alt. With dot0 (the
// format with a precision but no type) the switch comes at p-1 and a
// fixed-point result keeps one digit after the point.
func general(a float64, p int, alt, dot0 bool) string {
	if p == 0 {
		p = 1
	}
	e := strconv.FormatFloat(a, 'e', p-1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	limit := p
	if dot0 {
		limit = p - 1
	}
	var s string
	if exp < -4 || exp >= limit {
		s = e
	} else {
		s = strconv.FormatFloat(a, 'f', p-1-exp, 64)
	}
	if alt {
		return s
	}
	mant, expPart := s, ""
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		mant, expPart = s[:i], s[i:]
	}
	if strings.IndexByte(mant, '.') >= 0 {
		mant = strings.TrimRight(mant, "0")
		if dot0 && expPart == "" && strings.HasSuffix(mant, ".") {
			mant += "0"
		}
		mant = strings.TrimSuffix(mant, ".")
	} else if dot0 && expPart == "" {
		mant += ".0"
	}
	return mant + expPart
}

// shortest is Python's repr of a float ≥ 0: the fewest digits that read
// back the same, scientific notation below 1e-4 and from 1e16 on.
func shortest(a float64) string {
	e := strconv.FormatFloat(a, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if a != 0 && (exp < -4 || exp >= 16) {
		return e
	}
	s := strconv.FormatFloat(a, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
