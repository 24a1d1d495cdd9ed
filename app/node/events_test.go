package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A fresh node tells the volunteer, through /api/status, that it created
// its own network: the warning a terminal nobody reads would otherwise hold.
func TestStatusCarriesTheNodesWarnings(t *testing.T) {
	n := startNode(t, testConfig(t))
	st, err := n.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range st.Events {
		if strings.HasPrefix(e.Message, "created a new network secret") && e.Level == "warn" && e.Component == "p2p" {
			return
		}
	}
	t.Errorf("no network-secret warning in %+v", st.Events)
}

func TestEventLogKeepsWarningsWithoutQueries(t *testing.T) {
	var out bytes.Buffer
	events := &eventLog{}
	log := slog.New(events.tee(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError})))
	proxyLog := log.With("component", "proxy")
	proxyLog.Info("not kept")
	proxyLog.Warn("origin slow", "url", "http://example.com/a?session=secret", "took", "3s")
	for i := 0; i < maxEvents+5; i++ {
		log.Warn(fmt.Sprintf("w%d", i))
	}
	got := events.list()
	if len(got) != maxEvents {
		t.Fatalf("kept %d events, want %d", len(got), maxEvents)
	}
	if got[len(got)-1].Message != fmt.Sprintf("w%d", maxEvents+4) {
		t.Errorf("newest %q", got[len(got)-1].Message)
	}
	events = &eventLog{}
	log = slog.New(events.tee(slog.NewTextHandler(&out, nil))).With("component", "proxy")
	log.Warn("origin slow", "url", "http://example.com/a?session=secret", "took", "3s")
	e := events.list()[0]
	if e.Component != "proxy" || e.Message != "origin slow (url: http://example.com/a, took: 3s)" {
		t.Errorf("event %+v", e)
	}
	if !strings.Contains(out.String(), "session=secret") {
		t.Errorf("the terminal log lost detail: %s", out.String())
	}
	if strings.Contains(out.String(), "not kept") {
		t.Errorf("the tee let through a level the terminal handler does not want")
	}
}
