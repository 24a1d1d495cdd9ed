package group

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/coralcdn/coral/core/signed"
)

// Figures are what one member node publishes to its group about itself:
// its upload's 95th percentile (the figure transit is billed on) and the
// bytes it served per group site. Members publish them on the group's
// ledger topic, where gossip signs each message with the author's node key
// and a member accepts figures only from the member node they name.
type Figures struct {
	Peer  string    `json:"peer"`
	At    time.Time `json:"at"`
	Day   string    `json:"day"`   // "2026-12-06" (UTC): the day P95Day covers
	Month string    `json:"month"` // "2026-12" (UTC): the month P95Month and Sites cover
	// P95Day and P95Month are the 95th percentile of the node's upload rate
	// (bytes/s) over the usage buckets of the day and of the month so far.
	P95Day   int64 `json:"p95_day"`
	P95Month int64 `json:"p95_month"`
	// Sites are the bytes this node sent for each group site this month.
	Sites map[string]int64 `json:"sites"`
}

// MaxFiguresBytes bounds a published Figures message.
const MaxFiguresBytes = 16 << 10

// ParseFigures decodes and checks figures received from the group; m is
// the manifest in force (the author must be a member node, the sites the
// group's).
func ParseFigures(b []byte, m Manifest) (Figures, error) {
	var f Figures
	if len(b) > MaxFiguresBytes {
		return f, fmt.Errorf("%w: figures of %d bytes", ErrMalformed, len(b))
	}
	if err := signed.DecodeStrict(b, &f); err != nil {
		return f, fmt.Errorf("%w: figures: %v", ErrMalformed, err)
	}
	if _, ok := m.Member(f.Peer); !ok {
		return f, fmt.Errorf("%w: figures of %q, not a member node", ErrMalformed, f.Peer)
	}
	if _, err := time.Parse("2006-01-02", f.Day); err != nil {
		return f, fmt.Errorf("%w: figures: day %q", ErrMalformed, f.Day)
	}
	if _, err := time.Parse("2006-01", f.Month); err != nil {
		return f, fmt.Errorf("%w: figures: month %q", ErrMalformed, f.Month)
	}
	if f.P95Day < 0 || f.P95Month < 0 {
		return f, fmt.Errorf("%w: figures: negative percentile", ErrMalformed)
	}
	for s, n := range f.Sites {
		if _, ok := m.Site(s); !ok || n < 0 {
			return f, fmt.Errorf("%w: figures: site %q (%d bytes)", ErrMalformed, s, n)
		}
	}
	return f, nil
}

// Percentile95 is the 95th percentile of per-bucket byte counts as a rate
// (bytes/s): sent holds the non-empty buckets, buckets is how many the
// period has (the rest sent nothing), width the bucket's length. As in
// transit billing, the top 5 % of buckets are discarded and the highest
// remaining one is the figure.
func Percentile95(sent []int64, buckets int, width time.Duration) int64 {
	if buckets <= 0 || width <= 0 {
		return 0
	}
	vals := slices.Clone(sent)
	slices.Sort(vals)
	zeros := max(buckets-len(vals), 0)
	// Index (0-based, ascending, zeros first) of the 95th percentile.
	i := int(math.Ceil(0.95*float64(zeros+len(vals)))) - 1
	i -= zeros
	if i < 0 || len(vals) == 0 {
		return 0
	}
	return int64(float64(vals[min(i, len(vals)-1)]) / width.Seconds())
}

// LedgerRow is one member node's line in the group's ledger.
type LedgerRow struct {
	Peer     string           `json:"peer"`
	At       time.Time        `json:"at,omitzero"` // when its figures were made; zero: none yet
	P95Day   int64            `json:"p95_day"`
	P95Month int64            `json:"p95_month"`
	Sites    map[string]int64 `json:"sites,omitempty"` // bytes served per group site this month
	// Contributed: bytes it served for other members' sites; Received:
	// bytes other members served for its own sites.
	Contributed int64 `json:"contributed"`
	Received    int64 `json:"received"`
}

// Ledger combines the members' latest figures into the group's ledger, in
// the manifest's member order.
func Ledger(m Manifest, figs map[string]Figures) []LedgerRow {
	owner := map[string]string{} // site -> member whose own it is
	for _, mb := range m.Members {
		for _, s := range mb.Sites {
			owner[s] = mb.Peer
		}
	}
	rows := make([]LedgerRow, len(m.Members))
	index := map[string]int{}
	for i, mb := range m.Members {
		f := figs[mb.Peer]
		rows[i] = LedgerRow{Peer: mb.Peer, At: f.At, P95Day: f.P95Day, P95Month: f.P95Month, Sites: f.Sites}
		index[mb.Peer] = i
	}
	for i, mb := range m.Members {
		for site, n := range figs[mb.Peer].Sites {
			own, ok := owner[site]
			if !ok || own == mb.Peer {
				continue
			}
			rows[i].Contributed += n
			rows[index[own]].Received += n
		}
	}
	return rows
}
