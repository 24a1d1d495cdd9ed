package control

import (
	"fmt"
	"testing"
	"time"
)

func TestHealthOf(t *testing.T) {
	p2p := func(reach string, relayed bool, peers int) *P2PStatus {
		return &P2PStatus{Reachability: reach, Relayed: relayed, ConnectedPeers: peers}
	}
	room := CacheStatus{FreeBytes: 10 << 30, MinFreeBytes: 1 << 30, Storing: true}
	for _, c := range []struct {
		name string
		st   Status
		want Health
	}{
		{"public", Status{Cache: room, P2P: p2p("public", false, 4)}, Health{"Serving visitors", HealthOK}},
		{"relayed", Status{Cache: room, P2P: p2p("private", true, 4)}, Health{"Not reachable from the Internet: serving through relays", HealthNote}},
		{"private, no relay yet", Status{Cache: room, P2P: p2p("private", false, 4)}, Health{"Not reachable from the Internet: looking for a relay", HealthWarn}},
		{"alone", Status{Cache: room, P2P: p2p("unknown", false, 0)}, Health{"Serving visitors; looking for other nodes", HealthNote}},
		{"refused by the network", Status{Cache: room, P2P: &P2PStatus{Reachability: "unknown", JoinProblem: "no member accepted the connection"}},
			Health{"Not on the network: no member accepted the connection", HealthWarn}},
		{"p2p off", Status{Cache: room}, Health{"Serving visitors on its own (peer-to-peer is off)", HealthNote}},
		{"disk full", Status{Cache: CacheStatus{FreeBytes: 1, MinFreeBytes: 1 << 30, DiskNote: "disk nearly full"}, P2P: p2p("public", false, 4)},
			Health{"Disk almost full: serving visitors without storing new copies", HealthWarn}},
		{"paused by the operator", Status{Cache: room, P2P: p2p("public", false, 4), RunState: &RunState{Why: "paused by the network's operator", Serving: map[string]bool{"proxy": false}}},
			Health{"Not serving: paused by the network's operator", HealthWarn}},
		{"run state, all serving", Status{Cache: room, P2P: p2p("public", false, 4), RunState: &RunState{Serving: map[string]bool{"proxy": true}}}, Health{"Serving visitors", HealthOK}},
		{"paused", Status{Cache: room, P2P: p2p("public", false, 4), Budget: &BudgetStatus{Reason: "paused"}}, Health{"Paused", HealthNote}},
		{"quota reached", Status{Cache: room, P2P: p2p("public", false, 4), Budget: &BudgetStatus{Reason: "quota reached", ResumeAt: time.Date(2031, 1, 1, 0, 0, 0, 0, time.Local)}},
			Health{"Quota reached — resumes on the 1st", HealthNote}},
		{"off window", Status{Cache: room, P2P: p2p("public", false, 4), Budget: &BudgetStatus{Reason: "off window", ResumeAt: time.Date(2031, 1, 22, 18, 0, 0, 0, time.Local)}},
			Health{"Off by the schedule — resumes on the 22nd", HealthNote}},
		{"upload or download off", Status{Cache: room, P2P: p2p("public", false, 4), Budget: &BudgetStatus{Reason: "off window", Window: -1}},
			Health{`Off: upload or download is set to "off"`, HealthNote}},
		{"quota warning", Status{Cache: room, P2P: p2p("public", false, 4), Budget: &BudgetStatus{Serving: true, QuotaWarn: true, QuotaBytes: 100, QuotaUsed: 91}},
			Health{"Serving visitors; 91 % of the monthly quota used", HealthNote}},
		{"free space unknown", Status{Cache: CacheStatus{FreeBytes: -1}, P2P: p2p("public", false, 4)}, Health{"Serving visitors", HealthOK}},
	} {
		if got := HealthOf(c.st); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// Peer IDs share their printable prefix; their names must not.
func TestNodeNamesTellNodesApart(t *testing.T) {
	seen := map[string]string{}
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("12D3KooWAbCdEfGh%04d", i)
		n := NodeName(id)
		if n != NodeName(id) {
			t.Fatalf("NodeName(%q) is not stable", id)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s are both named %s", other, id, n)
		}
		seen[n] = id
	}
	if NodeName("") != "unnamed node" {
		t.Errorf("empty ID named %q", NodeName(""))
	}
}

func TestResumeWordsToday(t *testing.T) {
	at := time.Now().Add(time.Minute)
	if at.Day() != time.Now().Day() {
		at = time.Now() // just before midnight: still today
	}
	if got := resumeWords(at, "later"); got != "at "+at.Local().Format("15:04") {
		t.Errorf("today: %q", got)
	}
	for d, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 22: "22nd", 23: "23rd", 31: "31st"} {
		if got := ordinal(d); got != want {
			t.Errorf("ordinal(%d) = %q", d, got)
		}
	}
}
