package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// quotaStop sets node 0's quota a little above what it has sent, lets a
// crowd use it up, and times from the moment node 0 reports the quota
// reached until node 1's DNS stops handing node 0 out.
func (b *bench) quotaStop() float64 {
	name := "www.example.com.localhost"
	node0, _, _ := net.SplitHostPort(b.c.Nodes[0].HTTP)
	deadline := time.Now().Add(time.Minute)
	for !slices.Contains(b.answers(name), node0) {
		if time.Now().After(deadline) {
			fail(fmt.Errorf("node 1 never handed out node 0"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.warm(sites[0], "/crowd")
	st, err := b.c.Nodes[0].Status(context.Background())
	if err != nil || st.Budget == nil {
		fail(fmt.Errorf("status: %v", err))
	}
	b.settings(0, fmt.Sprintf(`{"bandwidth": {"monthly_quota": "%d"}}`, st.Budget.QuotaUsed+2<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	b.crowd(ctx, &wg, 0, 8, sites[0], "/crowd")
	var reached time.Time
	for reached.IsZero() {
		st, err := b.c.Nodes[0].Status(ctx)
		if err != nil {
			fail(err)
		}
		if st.Budget != nil && st.Budget.QuotaUsed >= st.Budget.QuotaBytes {
			reached = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	for slices.Contains(b.answers(name), node0) {
		if ctx.Err() != nil {
			fail(fmt.Errorf("node 0 still handed out 2 minutes after its quota was reached"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(reached).Seconds()
	cancel()
	wg.Wait()
	fmt.Printf("quota: node 0 left node 1's DNS answers %.1fs after its quota was reached\n", took)
	b.settings(0, `{"bandwidth": {"monthly_quota": null}}`)
	return took
}

// answers is every proxy node 1's DNS hands out for name over a few
// queries (answers rotate).
func (b *bench) answers(name string) []string {
	var out []string
	for range 4 {
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
		r, _, err := (&mdns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, b.c.Nodes[1].DNS)
		if err != nil {
			fail(err)
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*mdns.A); ok && !slices.Contains(out, a.A.String()) {
				out = append(out, a.A.String())
			}
		}
	}
	return out
}
