package doc

import (
	"sort"
	"strings"
)

// Params returns the parameter names of a signature line, in order, as
// written but without defaults: Params(`ping(addr, ns=None, count=1)`) is
// [addr ns count]; a variadic one keeps its stars ("*kinds", "**kwargs").
func Params(sig string) []string {
	open := strings.IndexByte(sig, '(')
	end := strings.LastIndexByte(sig, ')')
	if open < 0 || end < open {
		return nil
	}
	var names []string
	depth, start := 0, open+1
	quote := byte(0)
	for i := open + 1; i <= end; i++ {
		c := sig[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case (c == ')' || c == ']' || c == '}') && i < end:
			depth--
		case (c == ',' && depth == 0) || i == end:
			p := strings.TrimSpace(sig[start:i])
			if j := strings.IndexByte(p, '='); j >= 0 {
				p = strings.TrimSpace(p[:j])
			}
			if p != "" {
				names = append(names, p)
			}
			start = i + 1
		}
	}
	return names
}

// A Hit is one entry of the table whose doc mentions a word (see Search).
type Hit struct {
	Name string // what "nsh doc NAME" takes: "netns", "link.netem", "nsh.link", "kinds"
	Line string // the signature, or the line of the doc that mentions the word
	Rank int    // HitName, HitParam or HitText
}

// The kinds of Hit, best first.
const (
	HitName  = iota // the name contains the word
	HitParam        // a parameter or attribute is named with it
	HitText         // the doc text mentions it
)

// Search returns the builtins, methods, types and topics whose name,
// parameters or doc text contain word (case-insensitively), one hit per
// entry, ranked: names first (an exact name before the others), then
// parameter and attribute names, then the text; alphabetically within a
// rank.
func (t Table) Search(word string) []Hit {
	w := strings.ToLower(strings.TrimSpace(word))
	if w == "" {
		return nil
	}
	var hits []Hit
	add := func(name, last, sig string, params []string, text string) {
		switch {
		case strings.Contains(strings.ToLower(last), w):
			hits = append(hits, Hit{Name: name, Line: firstNonEmpty(sig, Summary(text)), Rank: HitName})
		case containsName(params, w):
			hits = append(hits, Hit{Name: name, Line: firstNonEmpty(sig, lineWith(text, w)), Rank: HitParam})
		default:
			if l := lineWith(text, w); l != "" {
				hits = append(hits, Hit{Name: name, Line: l, Rank: HitText})
			}
		}
	}
	for _, f := range t.Funcs {
		add(f.Name, f.Name, f.Sig, Params(f.Sig), f.Doc)
	}
	for _, ty := range t.Types {
		short := strings.TrimPrefix(ty.Name, "nsh.")
		var attrs []string
		text := ty.Doc
		for _, a := range ty.Attrs {
			attrs = append(attrs, a.Name)
			text += "\n" + a.Name + ": " + a.Doc
		}
		add(ty.Name, short, "", attrs, text)
		for _, m := range ty.Methods {
			add(short+"."+m.Name, m.Name, m.Sig, Params(m.Sig), m.Doc)
		}
	}
	for name, text := range t.Topic {
		add(name, name, "", nil, text)
	}
	exact := func(h Hit) bool {
		return strings.EqualFold(h.Name[strings.LastIndexByte(h.Name, '.')+1:], w)
	}
	sort.Slice(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if a.Rank != b.Rank {
			return a.Rank < b.Rank
		}
		if ea, eb := exact(a), exact(b); ea != eb {
			return ea
		}
		return a.Name < b.Name
	})
	return hits
}

// containsName reports whether one of names, without its stars, contains w.
func containsName(names []string, w string) bool {
	for _, n := range names {
		if strings.Contains(strings.ToLower(strings.TrimLeft(n, "*")), w) {
			return true
		}
	}
	return false
}

// lineWith returns the first line of text that contains w (lower case),
// trimmed; "" if none does.
func lineWith(text, w string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(strings.ToLower(l), w) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
