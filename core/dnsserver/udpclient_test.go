package dnsserver

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// udpClient sends queries at a steady rate from a chosen source address
// and counts what comes back.
type udpClient struct {
	conn     *net.UDPConn
	slipped  atomic.Int64 // empty replies with TC
	sent     atomic.Int64 // bytes of queries sent
	received atomic.Int64 // bytes of replies received
}

func newUDPClient(t *testing.T, from, server string) *udpClient {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, raddr)
	if err != nil {
		t.Fatalf("bind %s: %v", from, err)
	}
	conn.SetReadBuffer(8 << 20)
	t.Cleanup(func() { conn.Close() })
	return &udpClient{conn: conn}
}

// send sends queries for ids (the message ID; a single id n>0 alone means
// n queries with IDs 0..n-1) at rate per second, paced in 1 ms batches.
func (c *udpClient) send(ids []int, rate int, name func(int) string) {
	if len(ids) == 1 && ids[0] > 0 {
		n := ids[0]
		ids = make([]int, n)
		for i := range ids {
			ids[i] = i
		}
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < len(ids); {
		due := min(len(ids), int(time.Since(start).Seconds()*float64(rate))+1)
		for ; i < due; i++ {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name(ids[i])), dns.TypeA)
			m.Id = uint16(ids[i])
			b, _ := m.Pack()
			if _, err := c.conn.Write(b); err == nil {
				c.sent.Add(int64(len(b)))
			}
		}
		<-tick.C
	}
}

// collect reads replies until every id in want has a full answer or
// nothing arrives for 2 s, and returns the ids that got a full answer.
func (c *udpClient) collect(want []int) map[uint16]bool {
	seen := make(map[uint16]bool, len(want))
	buf := make([]byte, 4096)
	for len(seen) < len(want) {
		c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		k, err := c.conn.Read(buf)
		if err != nil {
			break // quiet for 2 s: everything that will come has come
		}
		c.received.Add(int64(k))
		m := new(dns.Msg)
		if m.Unpack(buf[:k]) != nil {
			continue
		}
		switch {
		case len(m.Answer) > 0:
			seen[m.Id] = true
		case m.Truncated:
			c.slipped.Add(1)
		}
	}
	return seen
}
