package crowd

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// KillPlan kills a share of the nodes (SIGKILL, as a crash) in the middle
// of a crowd: once AtDone visitors have their response. A visitor whose
// proxy died turns to another live node of the same planted region, as a
// browser that re-resolves the name would be handed one by DNS.
type KillPlan struct {
	Victims []int // node indexes, ascending
	AtDone  int   // visitors done when the victims are killed
	regions Regions
	nodes   int
	dead    []atomic.Bool
	once    sync.Once
}

// NewKillPlan picks round(share × nodes) victims at random (seed makes
// the choice repeatable) to be killed when atDone visitors are done; nil
// when the share kills nobody.
func NewKillPlan(nodes int, share float64, atDone int, seed uint64, regions Regions) *KillPlan {
	k := int(share*float64(nodes) + 0.5)
	if k <= 0 || nodes < 2 {
		return nil
	}
	k = min(k, nodes-1) // someone must survive to serve
	victims := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Perm(nodes)[:k]
	slices.Sort(victims)
	return &KillPlan{Victims: victims, AtDone: atDone, regions: regions, nodes: nodes, dead: make([]atomic.Bool, nodes)}
}

// Due reports whether done visitors reach the moment of the kill.
func (p *KillPlan) Due(done int) bool { return p != nil && done >= p.AtDone }

// Kill marks the victims dead (visitors turn away from them from now on)
// and calls kill for each, once; later calls do nothing.
func (p *KillPlan) Kill(kill func(node int)) {
	p.once.Do(func() {
		for _, v := range p.Victims {
			p.dead[v].Store(true)
		}
		var wg sync.WaitGroup
		for _, v := range p.Victims {
			wg.Go(func() { kill(v) })
		}
		wg.Wait()
	})
}

// Dead reports whether node was killed.
func (p *KillPlan) Dead(node int) bool { return p != nil && p.dead[node].Load() }

// Instead is the live node a visitor of the dead node turns to: the next
// one of the same region (the next node overall when the whole region is
// dead).
func (p *KillPlan) Instead(node int) int {
	step := max(p.regions.N, 1)
	if !p.regions.Planted() {
		step = 1
	}
	for _, s := range []int{step, 1} {
		for i := (node + s) % p.nodes; i != node; i = (i + s) % p.nodes {
			if !p.Dead(i) {
				return i
			}
		}
	}
	return node
}
