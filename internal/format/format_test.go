package format

import (
	"math"
	"math/big"
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

func bigInt(s string) starlark.Value {
	n, _ := new(big.Int).SetString(s, 10)
	return starlark.MakeBigInt(n)
}

// The wants are Python 3's format(v, spec), printed by CPython.
func TestValueMatchesPython(t *testing.T) {
	for _, c := range []struct {
		spec string
		v    starlark.Value
		want string
	}{
		{".3", starlark.Float(123.0), "1.23e+02"},
		{".3", starlark.Float(1.0), "1.0"},
		{".3", starlark.Float(1234.5), "1.23e+03"},
		{"", starlark.Float(1234567.0), "1234567.0"},
		{"", starlark.Float(1e+16), "1e+16"},
		{"", starlark.Float(1e-05), "1e-05"},
		{"", starlark.Float(0.0001), "0.0001"},
		{".2", starlark.Float(0.5), "0.5"},
		{"g", starlark.Float(1e-05), "1e-05"},
		{"#g", starlark.Float(1.5), "1.50000"},
		{"010,", starlark.MakeInt(1234), "00,001,234"},
		{"010,.2f", starlark.Float(1234.5), "001,234.50"},
		{",", starlark.MakeInt(-1234567), "-1,234,567"},
		{"_x", starlark.MakeInt(11259375), "ab_cdef"},
		{"#x", starlark.MakeInt(255), "0xff"},
		{"+.2%", starlark.Float(0.1234), "+12.34%"},
		{"5.2%", starlark.Float(0.5), "50.00%"},
		{"z.1f", starlark.Float(-0.01), "0.0"},
		{".1f", starlark.Float(-0.01), "-0.0"},
		{"=+8", starlark.MakeInt(42), "+     42"},
		{"*^9", starlark.MakeInt(42), "***42****"},
		{"x<5", starlark.String("ab"), "abxxx"},
		{".2s", starlark.String("abc"), "ab"},
		{"e", starlark.Float(12345.678), "1.234568e+04"},
		{".0e", starlark.Float(5.5), "6e+00"},
		{".0f", starlark.Float(2.5), "2"},
		{".0f", starlark.Float(3.5), "4"},
		{"#.0f", starlark.Float(2.0), "2."},
		{"n", starlark.Float(1.0), "1"},
		{"c", starlark.MakeInt(65), "A"},
		{"10.3g", starlark.Float(1e-07), "     1e-07"},
		{"F", starlark.Float(math.Inf(1)), "INF"},
		{"f", starlark.Float(math.NaN()), "nan"},
		{"+", starlark.Float(math.Inf(1)), "+inf"},
		{".3", starlark.Float(1e+16), "1e+16"},
		{"", starlark.Float(1.5e-07), "1.5e-07"},
		{"#o", starlark.MakeInt(8), "0o10"},
		{"b", starlark.MakeInt(-5), "-101"},
		{".1f", starlark.Float(1e+22), "10000000000000000000000.0"},
		{"", bigInt("1180591620717411303424"), "1180591620717411303424"},
		{",", bigInt("1180591620717411303424"), "1,180,591,620,717,411,303,424"},
		{"08.3f", starlark.Float(-3.14159), "-003.142"},
		{"^+10.2e", starlark.Float(-0.00123), "-1.23e-03 "},
		{".1", starlark.Float(1.0), "1e+00"},
		{".1", starlark.Float(0.5), "0.5"},
		{".2", starlark.Float(12.0), "1.2e+01"},
		{"", starlark.Float(math.Copysign(0, -1)), "-0.0"},
		{".3", starlark.Float(0.0), "0.0"},
		{"#.3g", starlark.Float(100.0), "100."},
		{">8", starlark.String("abc"), "     abc"},
		{"^7", starlark.String("ab"), "  ab   "},
		{"", starlark.MakeInt(12), "12"},
		{"x", starlark.MakeInt(255), "ff"},
		{"X", starlark.MakeInt(255), "FF"},
		{"#X", starlark.MakeInt(255), "0XFF"},
		{"#b", starlark.MakeInt(5), "0b101"},
		{"_b", starlark.MakeInt(255), "1111_1111"},
		{" d", starlark.MakeInt(7), " 7"},
		{"+d", starlark.MakeInt(-7), "-7"},
		{",.2f", starlark.Float(1234567.891), "1,234,567.89"},
		{"_", starlark.MakeInt(1234567), "1_234_567"},
		{"8.3f", starlark.Float(3.14159), "   3.142"},
		{"%", starlark.Float(0.25), "25.000000%"},
		{".0%", starlark.Float(0.125), "12%"},
		{"g", starlark.Float(123456789.0), "1.23457e+08"},
		{"g", starlark.Float(0.0001), "0.0001"},
		{"G", starlark.Float(1e-10), "1E-10"},
		{".10g", starlark.Float(0.3333333333333333), "0.3333333333"},
		{"", starlark.Float(0.1), "0.1"},
		{"", starlark.Float(0.3333333333333333), "0.3333333333333333"},
		{"e", starlark.Float(0.0), "0.000000e+00"},
		{".2e", starlark.Float(-1234.5), "-1.23e+03"},
		{"d", starlark.MakeInt(0), "0"},
		{"f", starlark.MakeInt(2), "2.000000"},
		{".1f", starlark.MakeInt(7), "7.0"},
		{"%", starlark.MakeInt(1), "100.000000%"},
		{"<06", starlark.MakeInt(5), "500000"},
		{"06", starlark.MakeInt(-5), "-00005"},
		{"+06.1f", starlark.Float(2.25), "+002.2"},
		{"020,.2f", starlark.Float(-1234567.891), "-0,000,001,234,567.89"},
		{"", starlark.Float(12.0), "12.0"},
		{".15g", starlark.Float(0.1), "0.1"},
		{"#.0e", starlark.Float(3.0), "3.e+00"},
		{"5", starlark.String("€"), "€    "},
		{"€^5", starlark.String("x"), "€€x€€"},
		{".2f", starlark.Float(2.675), "2.67"},
		{".2f", starlark.Float(0.125), "0.12"},
		{".2f", starlark.Float(0.375), "0.38"},
		{".0f", starlark.Float(0.5), "0"},
		{".0f", starlark.Float(-0.5), "-0"},
		// nsh's choices where Python has none: bool and other values as str.
		{"", starlark.True, "True"},
		{">6", starlark.False, " False"},
		{"d", starlark.True, "1"},
		{"^8", starlark.None, "  None  "},
		{"", starlark.NewList([]starlark.Value{starlark.MakeInt(1)}), "[1]"},
	} {
		got, err := Value(c.v, c.spec)
		if err != nil {
			t.Errorf("format(%s, %q): %v", c.v, c.spec, err)
			continue
		}
		if got != c.want {
			t.Errorf("format(%s, %q) = %q, want %q", c.v, c.spec, got, c.want)
		}
	}
}

func TestValueErrors(t *testing.T) {
	for _, c := range []struct {
		spec string
		v    starlark.Value
		want string
	}{
		{".1d", starlark.MakeInt(3), "precision not allowed in an integer format spec"},
		{".1", starlark.MakeInt(3), "precision not allowed"},
		{"x", starlark.Float(2.5), "unknown format code 'x' for float 2.5"},
		{"d", starlark.String("a"), `unknown format code 'd' for string "a"`},
		{"+", starlark.String("a"), "sign not allowed in a string format spec"},
		{",", starlark.String("a"), "cannot specify ','"},
		{"=5", starlark.String("a"), "'=' alignment not allowed"},
		{",x", starlark.MakeInt(3), "cannot specify ',' with 'x'"},
		{"q", starlark.MakeInt(3), `invalid format spec "q"`},
		{".f", starlark.Float(1), "no digits after the '.'"},
		{"99999999999", starlark.Float(1), "width 99999999999 is too large"},
		{"c", starlark.MakeInt(-1), "not in range"},
	} {
		_, err := Value(c.v, c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("format(%s, %q): error %v, want one containing %q", c.v, c.spec, err, c.want)
		}
	}
}

func TestTemplate(t *testing.T) {
	r := starlark.NewDict(1)
	r.SetKey(starlark.String("mbit"), starlark.Float(19.87))
	kw := []starlark.Tuple{{starlark.String("w"), starlark.MakeInt(6)}, {starlark.String("r"), r}}
	args := starlark.Tuple{starlark.Float(19.87), starlark.MakeInt(20), starlark.String("eth0")}
	for _, c := range []struct{ tmpl, want string }{
		{"{:.1f} Mbit/s through a {} Mbit/s limit", "19.9 Mbit/s through a 20 Mbit/s limit"},
		{"{2:>8}|{1:<4}|{0:08.3f}", "    eth0|20  |0019.870"},
		{"{{literal}} {}", "{literal} 19.87"},
		{"{2!r} {2!s} {2}", `"eth0" eth0 eth0`},
		{"{:>{w}}|{:^7}|", " 19.87|  20   |"},
		{"{r[mbit]:.0f}", "20"},
		{"{2[1]}", "t"},
		{"no fields", "no fields"},
	} {
		got, err := Template(c.tmpl, args, kw)
		if err != nil {
			t.Errorf("Template(%q): %v", c.tmpl, err)
		} else if got != c.want {
			t.Errorf("Template(%q) = %q, want %q", c.tmpl, got, c.want)
		}
	}
	for _, c := range []struct{ tmpl, want string }{
		{"{} {} {} {}", "wants positional argument 3 but there are 3"},
		{"{0} {}", "cannot switch from manual field numbering to automatic"},
		{"{} {0}", "cannot switch from automatic field numbering to manual"},
		{"{x}", "no keyword argument x"},
		{"a } b", "single '}'"},
		{"a { b", "unclosed '{'"},
		{"{!x}", "unknown conversion !x"},
		{"{2:.2f}", `{2:.2f}: unknown format code 'f' for string "eth0"`},
		{"{0.mbit}", "float has no attributes"},
		{"{-1}", "no keyword argument -1"}, // a panic (index -1) before
		{"{+1}", "no keyword argument +1"},
	} {
		_, err := Template(c.tmpl, args, kw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Template(%q): error %v, want one containing %q", c.tmpl, err, c.want)
		}
	}
}

// The wants are Python 3's round(x, n), printed by CPython (repr).
func TestRoundMatchesPython(t *testing.T) {
	for _, c := range []struct {
		x, n starlark.Value
		want string
	}{
		{starlark.Float(2.5), nil, "2"},
		{starlark.Float(3.5), nil, "4"},
		{starlark.Float(-2.5), nil, "-2"},
		{starlark.Float(0.5), nil, "0"},
		{starlark.Float(-0.5), nil, "0"},
		{starlark.Float(1.5), nil, "2"},
		{starlark.Float(2.675), starlark.MakeInt(2), "2.67"},
		{starlark.Float(0.125), starlark.MakeInt(2), "0.12"},
		{starlark.Float(0.375), starlark.MakeInt(2), "0.38"},
		{starlark.Float(1234.5), starlark.MakeInt(-2), "1200.0"},
		{starlark.Float(15.0), starlark.MakeInt(-1), "20.0"},
		{starlark.Float(25.0), starlark.MakeInt(-1), "20.0"},
		{starlark.Float(-25.0), starlark.MakeInt(-1), "-20.0"},
		{starlark.Float(1e+300), starlark.MakeInt(2), "1e+300"},
		{starlark.Float(1.0000001), starlark.MakeInt(3), "1.0"},
		{starlark.Float(2.5), starlark.MakeInt(0), "2.0"},
		{starlark.Float(1e+22), starlark.MakeInt(-21), "1e+22"},
		{starlark.Float(5e+22), starlark.MakeInt(-23), "0.0"},
		{starlark.Float(123.456), starlark.MakeInt(1), "123.5"},
		{starlark.Float(-123.456), starlark.MakeInt(-1), "-120.0"},
		{starlark.Float(0.0), starlark.MakeInt(-1), "0.0"},
		{starlark.MakeInt(1250), starlark.MakeInt(-2), "1200"},
		{starlark.MakeInt(1350), starlark.MakeInt(-2), "1400"},
		{starlark.MakeInt(-1250), starlark.MakeInt(-2), "-1200"},
		{starlark.MakeInt(-1350), starlark.MakeInt(-2), "-1400"},
		{starlark.MakeInt(5), starlark.MakeInt(2), "5"},
		{starlark.MakeInt(1249), starlark.MakeInt(-2), "1200"},
		{starlark.MakeInt(1251), starlark.MakeInt(-2), "1300"},
		{starlark.MakeInt(15), starlark.MakeInt(-1), "20"},
		{starlark.MakeInt(25), starlark.MakeInt(-1), "20"},
		{starlark.MakeInt(0), starlark.MakeInt(-3), "0"},
		{starlark.MakeInt(123), nil, "123"},
	} {
		got, err := Round(c.x, c.n)
		if err != nil {
			t.Errorf("round(%s, %v): %v", c.x, c.n, err)
			continue
		}
		if c.n == nil {
			if _, ok := got.(starlark.Int); !ok {
				t.Errorf("round(%s) is a %s, want int", c.x, got.Type())
			}
		}
		if s, _ := Value(got, ""); s != c.want {
			t.Errorf("round(%s, %v) = %s, want %s", c.x, c.n, s, c.want)
		}
	}
	if _, err := Round(starlark.Float(math.Inf(1)), nil); err == nil || !strings.Contains(err.Error(), "cannot convert float +inf to an int") {
		t.Errorf("round(inf): %v", err)
	}
	if _, err := Round(starlark.String("1"), nil); err == nil || !strings.Contains(err.Error(), `got string "1", want int or float`) {
		t.Errorf(`round("1"): %v`, err)
	}
}
