package labs

import (
	"encoding/json"
	"math"
)

// decodeRecord decodes a record line of a journal into r. The lines are
// json.Marshal's (Journal.write), and that exact form is read here by
// hand: the keys of Record and Step, strings of ASCII with JSON's escapes,
// unsigned integers, no spaces. Any other line goes to encoding/json,
// which reads the same line with ~15 times as many instructions: it took
// three quarters of the user time of nsh down of a chain of 200 (12.8M of
// 17M instructions, callgrind).
func decodeRecord(line []byte, r *Record) error {
	p := lineParser{b: line}
	if p.record(r) && p.i == len(line) {
		return nil
	}
	*r = Record{}
	return json.Unmarshal(line, r)
}

// lineParser reads one journal line from b[i:]. Each method reports
// whether it read what it expects; false leaves the line to
// encoding/json.
type lineParser struct {
	b []byte
	i int
}

func (p *lineParser) record(r *Record) bool {
	var seen uint // a key twice: encoding/json's (it would merge the steps)
	return p.object(func(key []byte) bool {
		var ok bool
		bit := uint(0)
		switch string(key) {
		case "id":
			r.ID, ok = p.uint()
			bit = 1
		case "what":
			r.What, ok = p.str()
			bit = 2
		case "steps":
			r.Steps, ok = p.steps()
			bit = 4
		case "del":
			r.Del, ok = p.bool()
			bit = 8
		}
		ok = ok && seen&bit == 0
		seen |= bit
		return ok
	})
}

func (p *lineParser) steps() ([]Step, bool) {
	if !p.byte('[') {
		return nil, false
	}
	steps := []Step{} // as encoding/json: [] is empty, not nil
	if p.byte(']') {
		return steps, true
	}
	for {
		steps = append(steps, Step{})
		if !p.step(&steps[len(steps)-1]) {
			return nil, false
		}
		if p.byte(']') {
			return steps, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

func (p *lineParser) step(s *Step) bool {
	var seen uint
	return p.object(func(key []byte) bool {
		var ok bool
		bit := uint(0)
		switch string(key) {
		case "kind":
			s.Kind, ok = p.str()
			bit = 1
		case "arg":
			s.Arg, ok = p.uint()
			bit = 2
		case "path":
			s.Path, ok = p.str()
			bit = 4
		case "value":
			s.Value, ok = p.str()
			bit = 8
		case "expect":
			s.Expect, ok = p.str()
			bit = 16
		case "mnt":
			s.Mnt, ok = p.str()
			bit = 32
		case "net":
			s.Net, ok = p.str()
			bit = 64
		case "uts":
			s.UTS, ok = p.str()
			bit = 128
		case "net_ino":
			s.NetIno, ok = p.uint()
			bit = 256
		}
		ok = ok && seen&bit == 0
		seen |= bit
		return ok
	})
}

// object reads {"key":value,...}, each value by field.
func (p *lineParser) object(field func(key []byte) bool) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	for {
		if !p.byte('"') {
			return false
		}
		start := p.i
		for p.i < len(p.b) && p.b[p.i] != '"' && p.b[p.i] != '\\' {
			p.i++
		}
		key := p.b[start:p.i]
		if !p.byte('"') || !p.byte(':') || !field(key) {
			return false
		}
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

func (p *lineParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *lineParser) bool() (bool, bool) {
	for _, lit := range []string{"false", "true"} {
		if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
			p.i += len(lit)
			return lit == "true", true
		}
	}
	return false, false
}

// uint reads a JSON number that is an unsigned integer fitting in 64
// bits (what follows it, a '.' or an 'e', fails the caller).
func (p *lineParser) uint() (uint64, bool) {
	start := p.i
	var n uint64
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
		p.i++
	}
	if p.i == start || p.i-start > 1 && p.b[start] == '0' {
		return 0, false
	}
	return n, true
}

// str reads a string of ASCII: printable, or escaped as JSON escapes it.
func (p *lineParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start, escaped := p.i, false
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !escaped {
				return string(s), true
			}
			return unescape(s)
		case c == '\\':
			escaped = true
			p.i++ // the escaped byte (unescape checks it)
		case c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// unescape undoes JSON's escapes in s, a string's bytes between its
// quotes in which every '\' is followed by a byte; a \u escape of
// anything but ASCII is refused.
func unescape(s []byte) (string, bool) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(s) {
				return "", false
			}
			var r byte
			for _, h := range s[i+1 : i+5] {
				switch {
				case '0' <= h && h <= '9':
					h -= '0'
				case 'a' <= h && h <= 'f':
					h -= 'a' - 10
				case 'A' <= h && h <= 'F':
					h -= 'A' - 10
				default:
					return "", false
				}
				if r >= 0x10 { // the code point would be 0x100 or more
					return "", false
				}
				r = r<<4 | h
			}
			if r >= 0x80 {
				return "", false
			}
			out = append(out, r)
			i += 4
		default:
			return "", false
		}
	}
	return string(out), true
}
