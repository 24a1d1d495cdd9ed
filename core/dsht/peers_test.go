package dsht

import (
	"testing"
	"time"
)

// MIT Chord's rule: a third party's claim that a node is alive does not
// override a more recent failure this node saw itself.
func TestDirectAllowed(t *testing.T) {
	ttl := 5 * time.Minute
	min := int64(time.Minute)
	tests := []struct {
		name             string
		lastOK, lastFail int64
		claimAt, now     int64
		want             bool
	}{
		{"never seen", 0, 0, 0, 10 * min, true},
		{"last heard alive", 9 * min, 0, 0, 10 * min, true},
		{"recovered after failing", 9 * min, 8 * min, 0, 10 * min, true},
		{"failed, no claim", 8 * min, 9 * min, 0, 10 * min, false},
		{"failed, older claim ignored", 8 * min, 9 * min, 8*min + 30*int64(time.Second), 10 * min, false},
		{"failed, newer claim believed", 8 * min, 9 * min, 9*min + 1, 10 * min, true},
		{"failure long ago forgotten", 0, 1 * min, 0, 10 * min, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &peerState{lastOK: tt.lastOK, lastFail: tt.lastFail}
			if got := p.directAllowed(tt.now, ttl, tt.claimAt); got != tt.want {
				t.Errorf("directAllowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAdaptiveTimeout(t *testing.T) {
	p := &peerState{}
	for range 20 {
		p.observeRTT(100*time.Millisecond, 0)
	}
	rto := rtoFor(p.srtt, p.rttvar, 50*time.Millisecond, 5*time.Second)
	if rto < 100*time.Millisecond || rto > 200*time.Millisecond {
		t.Fatalf("steady 100ms RTT gives timeout %v", rto)
	}
	// Jitter widens it.
	for i := range 20 {
		p.observeRTT(time.Duration(50+100*(i%2))*time.Millisecond, 0)
	}
	if j := rtoFor(p.srtt, p.rttvar, 50*time.Millisecond, 5*time.Second); j <= rto {
		t.Fatalf("jittery RTT timeout %v not above steady %v", j, rto)
	}
	if got := rtoFor(time.Millisecond, 0, 50*time.Millisecond, 5*time.Second); got != 50*time.Millisecond {
		t.Fatalf("clamped to %v, want MinRTO", got)
	}
	if got := rtoFor(time.Minute, 0, 50*time.Millisecond, 5*time.Second); got != 5*time.Second {
		t.Fatalf("clamped to %v, want MaxRTO", got)
	}
}

func TestViasKeepTheMostRecent(t *testing.T) {
	p := &peerState{}
	for i := range 6 {
		p.addVia(ID{byte(i + 1)}, int64(i))
	}
	vs := p.viasByRecency()
	if len(vs) != maxVias || vs[0].id != (ID{6}) || vs[len(vs)-1].id != (ID{3}) {
		t.Fatalf("vias %+v", vs)
	}
	p.addVia(ID{3}, 100) // a fresher claim moves an existing relay up
	if vs := p.viasByRecency(); vs[0].id != (ID{3}) {
		t.Fatalf("vias %+v", vs)
	}
}

// Cluster decisions use the minimum RTT of the last windows: queueing on a
// loaded host raises srtt but does not move a node out of its region, and
// a path that really got longer shows once the old window has passed.
func TestDistanceIsWindowedMinimum(t *testing.T) {
	p := &peerState{}
	w := int64(distanceWindow)
	p.observeRTT(5*time.Millisecond, 0)
	for i := range 30 {
		p.observeRTT(80*time.Millisecond, int64(i+1)) // a crowd: queueing
	}
	if p.srtt < 50*time.Millisecond {
		t.Fatalf("srtt %v does not show the queueing", p.srtt)
	}
	if d := p.distance(); d != 5*time.Millisecond {
		t.Errorf("distance under queueing %v, want the 5ms minimum", d)
	}
	// The path gets longer for good: after two windows the distance follows.
	p.observeRTT(40*time.Millisecond, w+10)
	p.observeRTT(40*time.Millisecond, 2*w+20)
	if d := p.distance(); d != 40*time.Millisecond {
		t.Errorf("distance after the path changed %v, want 40ms", d)
	}
}
