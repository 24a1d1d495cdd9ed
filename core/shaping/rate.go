package shaping

import (
	"errors"
	"fmt"
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

// ParseRate reads "2MiB/s", "256KiB/s", "1000000" (bytes per second), "0"
// (no cap) or "off". The "/s" suffix is optional.
func ParseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "off":
		return Off, nil
	case "0", "":
		if t == "" {
			return 0, errors.New(`empty rate (want e.g. "2MiB/s", "0" for no cap or "off")`)
		}
		return Unlimited, nil
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "ps")
	n, err := humanize.ParseBytes(t)
	if err != nil || n > maxRate {
		return 0, fmt.Errorf(`not a rate (want e.g. "2MiB/s", "0" for no cap or "off"): %q`, s)
	}
	return Rate(n), nil
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
