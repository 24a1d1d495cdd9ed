package dshtsim

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/coralcdn/coral/core/dsht"
)

// ReportOutlooks prints, for every level-l cluster found, what its members'
// membership rule sees: their own size estimates and, for each other
// cluster they know, how many know it, its estimated size, and how many
// find it acceptable and preferable. It explains why clusters stay apart.
func (s *Sim) ReportOutlooks(w io.Writer, l int) {
	type other struct {
		known, acceptable, preferred int
		sizes                        []int64
	}
	type found struct {
		id      dsht.ID
		members int
		own     []int64
		others  map[dsht.ID]*other
	}
	byID := map[dsht.ID]*found{}
	var ids []dsht.ID
	for _, i := range s.Live() {
		o := s.nodes[i].node.Outlook(l)
		f := byID[o.Own.ID]
		if f == nil {
			f = &found{id: o.Own.ID, others: map[dsht.ID]*other{}}
			byID[o.Own.ID] = f
			ids = append(ids, o.Own.ID)
		}
		f.members++
		f.own = append(f.own, o.Own.Size)
		for _, c := range o.Others {
			x := f.others[c.ID]
			if x == nil {
				x = &other{}
				f.others[c.ID] = x
			}
			x.known++
			x.sizes = append(x.sizes, c.Size)
			if c.Acceptable {
				x.acceptable++
			}
			if c.Acceptable && c.Preferred {
				x.preferred++
			}
		}
	}
	for _, id := range ids {
		f := byID[id]
		fmt.Fprintf(w, "  cluster %s (founded %v): %d members, own size estimates p10/p50/p90 %d/%d/%d\n",
			shortID(id), founded(id), f.members, pct(f.own, 10), pct(f.own, 50), pct(f.own, 90))
		for _, oid := range ids {
			x := f.others[oid]
			if oid == id || x == nil {
				continue
			}
			fmt.Fprintf(w, "    sees %s: known by %d, size p10/p50/p90 %d/%d/%d, acceptable to %d, preferred by %d\n",
				shortID(oid), x.known, pct(x.sizes, 10), pct(x.sizes, 50), pct(x.sizes, 90), x.acceptable, x.preferred)
		}
	}
}

func shortID(id dsht.ID) string { return hex.EncodeToString(id[8:12]) }

// founded is the virtual time a cluster was founded (its ID's first word).
func founded(id dsht.ID) time.Duration {
	at := int64(binary.BigEndian.Uint64(id[:8]))
	epoch := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	return time.Duration(at - epoch).Round(time.Millisecond)
}

func pct(xs []int64, p int) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}
