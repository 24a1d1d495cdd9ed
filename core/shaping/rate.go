package shaping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// Rate is a byte rate. Zero means no cap; Off means nothing at all (an
// "off" window: the node serves nothing for the network).
type Rate int64

const (
	// Unlimited is the zero Rate: no cap.
	Unlimited Rate = 0
	// Off serves nothing.
	Off Rate = -1
)

// maxRate bounds parsed rates well below overflow in byte arithmetic.
const maxRate = 1 << 50

// ParseRate reads a rate in bytes per second: "2MiB/s", "256KiB/s",
// "1.5MB/s", "1000000" (bytes), or in bits per second as networks are
// sold: "10Mbit/s", "10Mbps", "10 Mb/s" (all 1.25 MB/s); "0" is no cap
// and "off" nothing at all. A capital B is a byte and a lowercase b a bit,
// so "10Mbps" is never read as 10 MB/s. The "/s" or "ps" suffix is
// optional; k, M, G, T, P are powers of 1000 and Ki, Mi, Gi, Ti, Pi of 1024.
func ParseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "off":
		return Off, nil
	case "0":
		return Unlimited, nil
	case "":
		return 0, errors.New(`empty rate (want e.g. "2MiB/s", "10Mbit/s", "0" for no cap or "off")`)
	}
	r, err := rateBytes(t)
	if err != nil {
		return 0, fmt.Errorf(`not a rate (want e.g. "2MiB/s", "10Mbit/s", "0" for no cap or "off"): %q: %v`, s, err)
	}
	return r, nil
}

// rateBytes reads a number and an optional unit (see ParseRate) as whole
// bytes per second, at least 1.
func rateBytes(t string) (Rate, error) {
	end := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(t)
	}
	num, unit := t[:end], strings.TrimSpace(t[end:])
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
		return 0, errors.New("want a number of digits, such as 2 or 1.5")
	}
	size, err := unitSize(unit)
	if err != nil {
		return 0, err
	}
	v := math.Round(n * size)
	switch {
	case n == 0:
		return Unlimited, nil // "0MiB/s" is "0": no cap
	case v > maxRate:
		return 0, errors.New("too large")
	case v < 1:
		return 0, errors.New(`less than 1 byte/s (use "0" for no cap or "off")`)
	}
	return Rate(v), nil
}

// unitSize is how many bytes one unit is: "MiB/s" 1<<20, "Mbit/s" 125000.
func unitSize(unit string) (float64, error) {
	u := strings.TrimSuffix(unit, "/s")
	if u == unit {
		u = strings.TrimSuffix(unit, "ps")
	}
	perByte := 1.0
	switch lower := strings.ToLower(u); {
	case strings.HasSuffix(lower, "bits"):
		u, perByte = u[:len(u)-4], 8
	case strings.HasSuffix(lower, "bit"):
		u, perByte = u[:len(u)-3], 8
	case strings.HasSuffix(u, "b"):
		u, perByte = strings.TrimSuffix(u, "b"), 8
	case strings.HasSuffix(u, "B"):
		u = strings.TrimSuffix(u, "B")
	default:
		// No B or b ("2M"): bytes, as such rates have always been read.
	}
	mult, ok := unitPrefixes[strings.ToLower(u)]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (want B, KiB, MiB, GiB, kB, MB, GB or kbit, Mbit, Gbit, each optionally /s)", unit)
	}
	return mult / perByte, nil
}

// unitPrefixes are the multipliers rates accept, read case-insensitively
// (an "m" is mega: nobody caps at millibits).
var unitPrefixes = map[string]float64{
	"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15,
	"ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40, "pi": 1 << 50,
}

// String writes the rate as ParseRate reads it.
func (r Rate) String() string {
	switch {
	case r == Off:
		return "off"
	case r <= 0:
		return "0"
	}
	return exactBytes(int64(r)) + "/s"
}

// exactBytes writes n in the largest unit that divides it exactly, so the
// text parses back to the same number ("1MiB", "1500kB", "1234").
func exactBytes(n int64) string {
	units := []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"kB", 1e3}}
	for _, u := range units {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprint(n)
}

// Capped says whether r limits anything (a positive cap; not 0, not off).
func (r Rate) Capped() bool { return r > 0 }

// UnmarshalText parses a rate for TOML and JSON.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText writes the rate for TOML and JSON.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// errRateNotString is what a cap written as a bare number gets: 5 could be
// bytes, bits or MiB per second, so a rate is always a string.
var errRateNotString = errors.New(`want a string such as "2MiB/s", "0" or "off"`)

// UnmarshalJSON reads a rate from a JSON string; a bare number is refused
// with the form to use (json would say "cannot unmarshal number into Go
// value of type *shaping.Rate"). null changes nothing, as json's own types.
func (r *Rate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errRateNotString
	}
	return r.UnmarshalText([]byte(s))
}

// UnmarshalTOML reads a rate from a TOML string, refusing other values as
// UnmarshalJSON does.
func (r *Rate) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return errRateNotString
	}
	return r.UnmarshalText([]byte(s))
}

// Size is a byte count: "300GiB", "50MiB", "0".
type Size int64

// ParseSize reads a human-readable size; "0" is zero.
func ParseSize(s string) (Size, error) {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil || n > 1<<62 {
		return 0, fmt.Errorf(`not a size (want e.g. "300GiB" or "0"): %q`, s)
	}
	return Size(n), nil
}

func (s Size) String() string { return exactBytes(int64(s)) }

// UnmarshalText parses a size for TOML and JSON.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText writes the size for TOML and JSON.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
