package format

import (
	"fmt"
	"math"
	"math/big"
	"strconv"

	"go.starlark.net/starlark"
)

// Round is Python's round(x, ndigits): x rounded to ndigits decimal digits
// (negative: to tens, hundreds, ...), a tie going to the even digit. It
// returns an int when ndigits is None, else a value of x's type. A float
// rounds by its exact binary value, as in Python: round(2.675, 2) is 2.67
// since 2.675 is stored as 2.67499999....
func Round(x, ndigits starlark.Value) (starlark.Value, error) {
	if ndigits == nil {
		ndigits = starlark.None
	}
	nd := 0
	if ndigits != starlark.None {
		i, ok := ndigits.(starlark.Int)
		if !ok {
			return nil, fmt.Errorf("round: ndigits must be an int or None, not %s", ndigits.Type())
		}
		n, ok := i.Int64()
		if !ok || n > 1<<20 || n < -(1<<20) {
			return nil, fmt.Errorf("round: ndigits %s is out of range", i.String())
		}
		nd = int(n)
	}
	switch x := x.(type) {
	case starlark.Int:
		if nd >= 0 {
			return x, nil
		}
		return starlark.MakeBigInt(roundInt(x.BigInt(), -nd)), nil
	case starlark.Float:
		f := float64(x)
		if ndigits == starlark.None {
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("round: cannot convert float %s to an int", x.String())
			}
			r, _ := new(big.Float).SetFloat64(math.RoundToEven(f)).Int(nil)
			return starlark.MakeBigInt(r), nil
		}
		return starlark.Float(roundFloat(f, nd)), nil
	}
	return nil, fmt.Errorf("round: got %s %s, want int or float", x.Type(), x.String())
}

// roundInt rounds n to a multiple of 10^k, a tie to the even multiple.
func roundInt(n *big.Int, k int) *big.Int {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil)
	q, r := new(big.Int).QuoRem(n, p, new(big.Int)) // truncated toward zero
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	if c := twice.Cmp(p); c > 0 || c == 0 && q.Bit(0) == 1 {
		if n.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Mul(q, p)
}

// roundFloat rounds f to nd decimal digits by its exact value.
func roundFloat(f float64, nd int) float64 {
	if math.IsInf(f, 0) || math.IsNaN(f) || f == 0 {
		return f
	}
	if nd > 340 {
		return f // more digits than a float64 has
	}
	if nd >= 0 {
		// strconv rounds the exact binary value, ties to even.
		r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', nd, 64), 64)
		return r
	}
	if nd < -330 {
		return math.Copysign(0, f)
	}
	// Exactly, with rationals: q = f / 10^k, rounded half to even.
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-nd)), nil)
	q := new(big.Rat).SetFloat64(f)
	q.Quo(q, new(big.Rat).SetInt(p))
	n := new(big.Int).Quo(q.Num(), q.Denom()) // truncated toward zero
	frac := new(big.Rat).Sub(q, new(big.Rat).SetInt(n))
	frac.Abs(frac)
	if c := frac.Cmp(big.NewRat(1, 2)); c > 0 || c == 0 && n.Bit(0) == 1 {
		if f < 0 {
			n.Sub(n, big.NewInt(1))
		} else {
			n.Add(n, big.NewInt(1))
		}
	}
	out, _ := new(big.Float).SetInt(n.Mul(n, p)).Float64()
	return math.Copysign(out, f)
}
