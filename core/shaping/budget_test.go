package shaping

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

func newBudget(t *testing.T, p Policy, c *testkit.Clock, path string) *Budget {
	t.Helper()
	b, err := New(p, Options{Location: testLoc(t, "Europe/Berlin"), Now: c.Now, UsagePath: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBudgetServingDecisions(t *testing.T) {
	berlin := testLoc(t, "Europe/Berlin")
	c := testkit.NewClock(time.Date(2026, 12, 7, 9, 0, 0, 0, berlin)) // a Monday
	off := Window{Days: []string{"mon"}, From: "08:00", To: "10:00", Upload: rp(Off)}
	b := newBudget(t, Policy{Upload: 1 << 20}, c, "")
	var mu sync.Mutex
	var seen []State
	b.Subscribe(func(s State) { mu.Lock(); seen = append(seen, s); mu.Unlock() })
	for _, step := range []struct {
		name   string
		p      Policy
		at     time.Time
		serves bool
		reason string
	}{
		{"plain", Policy{Upload: 1 << 20}, c.Now(), true, ""},
		{"paused", Policy{Upload: 1 << 20, Paused: true}, c.Now(), false, "paused"},
		{"off window", Policy{Upload: 1 << 20, Schedule: []Window{off}}, c.Now(), false, "off window"},
		{"after the off window", Policy{Upload: 1 << 20, Schedule: []Window{off}}, time.Date(2026, 12, 7, 10, 0, 0, 0, berlin), true, ""},
	} {
		c.Set(step.at)
		b.SetPolicy(step.p)
		st := b.State()
		if st.Serving != step.serves || st.Reason != step.reason {
			t.Errorf("%s: serving %v (%q), want %v (%q)", step.name, st.Serving, st.Reason, step.serves, step.reason)
		}
		if h := b.Headroom(); h.HasRoom() != step.serves {
			t.Errorf("%s: headroom %+v HasRoom %v", step.name, h, h.HasRoom())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 3 {
		t.Errorf("subscribers saw %d changes, want at least 3", len(seen))
	}
}

func TestQuotaStopsServingAndResets(t *testing.T) {
	berlin := testLoc(t, "Europe/Berlin")
	c := testkit.NewClock(time.Date(2026, 12, 14, 12, 0, 0, 0, berlin))
	b := newBudget(t, Policy{MonthlyQuota: 1000, QuotaResetDay: 15}, c, "")
	b.CountSent("a.example", 899)
	if st := b.State(); st.QuotaWarn {
		t.Fatal("warned below 90 %")
	}
	b.CountSent("a.example", 1)
	b.SetPolicy(Policy{MonthlyQuota: 1000, QuotaResetDay: 15})
	if st := b.State(); !st.QuotaWarn || !st.Serving {
		t.Fatalf("at 90 %%: %+v, want a warning and still serving", st)
	}
	b.CountSent("", 100) // DSHT traffic counts too
	testkit.Eventually(t, 5*time.Second, "quota reached stops serving", func() bool { return !b.Serving() })
	if got := b.State().Reason; got != "quota reached" {
		t.Errorf("reason %q", got)
	}
	if h := b.Headroom(); h.QuotaLeft != 0 || h.HasRoom() {
		t.Errorf("headroom %+v at the quota", h)
	}
	c.Set(time.Date(2026, 12, 15, 0, 0, 0, 0, berlin)) // reset day, local midnight
	b.SetPolicy(Policy{MonthlyQuota: 1000, QuotaResetDay: 15})
	if st := b.State(); !st.Serving || st.QuotaUsed != 0 {
		t.Fatalf("after the reset day: %+v", st)
	}
}

func TestUsageSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.json")
	c := testkit.NewClock(time.Date(2026, 12, 6, 12, 2, 0, 0, time.UTC))
	b, err := New(Policy{MonthlyQuota: 1 << 30}, Options{Now: c.Now, UsagePath: path, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	b.CountSent("a.example", 1000)
	b.CountReceived("a.example", 300)
	b.CountSent("b.example", 50)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := newBudget(t, Policy{MonthlyQuota: 1 << 30}, c, path)
	if st := b2.State(); st.QuotaUsed != 1050 {
		t.Fatalf("month to date after restart %d, want 1050", st.QuotaUsed)
	}
	series := b2.Usage().Series("a.example", c.Now().Add(-time.Hour))
	if len(series) != 1 || series[0].Sent != 1000 || series[0].Received != 300 ||
		!series[0].Start.Equal(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("series %+v", series)
	}
}

func TestUsageKeeps31DaysAndPrunesOlder(t *testing.T) {
	u, _ := OpenUsage("")
	now := time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC)
	u.Add(now.Add(-31*24*time.Hour), "a", Counts{Sent: 1})
	u.Add(now.Add(-40*24*time.Hour), "a", Counts{Sent: 2})
	u.Flush(now)
	if got := u.SentSince(now.Add(-50 * 24 * time.Hour)); got != 1 {
		t.Fatalf("after pruning %d bytes, want the 31-day-old 1", got)
	}
}

func TestUsageBoundsSites(t *testing.T) {
	u, _ := OpenUsage("")
	now := time.Now()
	for i := range maxSites + 50 {
		u.Add(now, "site"+string(rune('a'+i%26))+time.Duration(i).String(), Counts{Sent: 1})
	}
	if n := len(u.SiteTotals(now.Add(-time.Hour))); n > maxSites+1 {
		t.Fatalf("%d sites tracked, bound %d", n, maxSites)
	}
	if u.SiteTotals(now.Add(-time.Hour))[OtherSite].Sent != 50 {
		t.Fatalf("overflow not counted as %s", OtherSite)
	}
}

func TestDamagedUsageFileIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := OpenUsage(path); err == nil {
		t.Fatal("a damaged usage file opened silently")
	}
}

func TestSendCountsAndHoldsBack(t *testing.T) {
	c := testkit.NewClock(time.Now())
	b := newBudget(t, Policy{Upload: 1 << 10}, c, "")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.Send(ctx, "a", 64<<10); err == nil {
		t.Fatal("64 KiB passed a 1 KiB/s cap at once")
	}
	if err := b.Send(context.Background(), "a", 100); err != nil {
		t.Fatal(err)
	}
}

// A crash (no Close) loses at most one flush interval of counting.
func TestUsageSurvivesCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.json")
	c := testkit.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	b, err := New(Policy{}, Options{Now: c.Now, UsagePath: path, Location: time.UTC, FlushEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.CountSent("a.example", 4242)
	testkit.Eventually(t, 5*time.Second, "the count on disk within a flush interval", func() bool {
		u, err := OpenUsage(path) // what a restart after a crash now would read
		return err == nil && u.SentSince(c.Now().Add(-time.Hour)) == 4242
	})
}

// Schedule windows take effect at their boundary without any settings
// change: the budget re-evaluates on its own.
func TestWindowAppliesAtItsBoundary(t *testing.T) {
	berlin := testLoc(t, "Europe/Berlin")
	c := testkit.NewClock(time.Date(2026, 12, 7, 7, 59, 0, 0, berlin))
	off := Window{Days: []string{"mon"}, From: "08:00", To: "09:00", Upload: rp(Off)}
	b, err := New(Policy{Schedule: []Window{off}}, Options{Now: c.Now, Location: berlin, EvalEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Serving() {
		t.Fatal("not serving before the window")
	}
	c.Set(time.Date(2026, 12, 7, 8, 0, 0, 0, berlin))
	testkit.Eventually(t, 5*time.Second, "the off window applies at 08:00", func() bool { return !b.Serving() })
	if got := b.State().ResumeAt; !got.Equal(time.Date(2026, 12, 7, 9, 0, 0, 0, berlin)) {
		t.Errorf("resume at %v, want the window's end 09:00", got)
	}
	c.Set(time.Date(2026, 12, 7, 9, 0, 0, 0, berlin))
	testkit.Eventually(t, 5*time.Second, "serving again at 09:00", func() bool { return b.Serving() })
}

// The shapers enforce the caps the state shows: the tick's evaluation,
// begun under the old policy, cannot set its caps after a policy change
// has set the new ones (the status would say 4 KiB/s while the node sends
// unlimited until the next tick).
func TestShapersFollowTheLatestPolicy(t *testing.T) {
	b, err := New(Policy{}, Options{Location: time.UTC, EvalEvery: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	const rounds = 100000
	mismatched := 0
	for round := range rounds {
		p := Policy{}
		if round%2 == 0 {
			p.Upload = 4 << 10
		}
		b.SetPolicy(p)
		if got := b.up.Cap(); got != p.Upload {
			mismatched++
		}
	}
	if mismatched > 0 {
		t.Errorf("%d of %d policy changes left the upload shaper at the old cap", mismatched, rounds)
	}
}

// transferResult is what one direction of a budget does with 1 MiB sent in
// relay-sized pieces: how much got through before an error, and the error.
func transferResult(t *testing.T, b *Budget, download bool) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const total, piece = 1 << 20, 16 << 10
	moved := 0
	for moved < total {
		var err error
		if download {
			err = b.Receive(ctx, "x", piece)
		} else {
			err = b.Send(ctx, "(relayed)", piece)
		}
		if err != nil {
			return moved, err
		}
		moved += piece
	}
	return moved, nil
}

// "off" means nothing at all, in either direction, whether it is the base
// cap or a window's: the node stops serving, and a direction whose base is
// also off refuses every byte (it never falls back to no cap).
func TestOffNeverMeansUnlimited(t *testing.T) {
	berlin := testLoc(t, "Europe/Berlin")
	c := testkit.NewClock(time.Date(2026, 12, 7, 9, 0, 0, 0, berlin)) // a Monday
	allDay := func(up, down *Rate) []Window {
		return []Window{{Days: []string{"mon"}, From: "00:00", To: "24:00", Upload: up, Download: down}}
	}
	for _, tc := range []struct {
		name     string
		p        Policy
		download bool
		refused  bool // every byte refused with ErrOff
	}{
		{"base upload off", Policy{Upload: Off}, false, true},
		{"base download off", Policy{Download: Off}, true, true},
		{"window upload off, base off", Policy{Upload: Off, Schedule: allDay(rp(Off), nil)}, false, true},
		{"window download off, base off", Policy{Download: Off, Schedule: allDay(nil, rp(Off))}, true, true},
		// Transfers under way finish under the base cap (here none).
		{"window download off, base 0", Policy{Schedule: allDay(nil, rp(Off))}, true, false},
		{"window upload off, base 0", Policy{Schedule: allDay(rp(Off), nil)}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(t, tc.p, c, "")
			if st := b.State(); st.Serving || st.Reason != "off window" {
				t.Errorf("serving %v (%q), want not serving (\"off window\")", st.Serving, st.Reason)
			}
			if b.Serving() {
				t.Error("Serving() is true")
			}
			moved, err := transferResult(t, b, tc.download)
			if tc.refused && (moved != 0 || !errors.Is(err, ErrOff)) {
				t.Errorf("moved %d bytes, err %v; want none, ErrOff", moved, err)
			}
			if !tc.refused && err != nil {
				t.Errorf("a transfer under way under no base cap: moved %d, err %v", moved, err)
			}
		})
	}
}

// A download-only off window ends when downloads may resume, and the
// status says when.
func TestDownloadOffWindowResumes(t *testing.T) {
	berlin := testLoc(t, "Europe/Berlin")
	c := testkit.NewClock(time.Date(2026, 12, 7, 9, 0, 0, 0, berlin)) // a Monday
	w := Window{Days: []string{"mon"}, From: "08:00", To: "10:00", Download: rp(Off)}
	b := newBudget(t, Policy{Upload: 1 << 20, Schedule: []Window{w}}, c, "")
	st := b.State()
	if st.Serving || st.Reason != "off window" {
		t.Fatalf("in a download-off window: serving %v (%q)", st.Serving, st.Reason)
	}
	if want := time.Date(2026, 12, 7, 10, 0, 0, 0, berlin); !st.ResumeAt.Equal(want) {
		t.Errorf("resumes at %v, want %v", st.ResumeAt, want)
	}
	c.Set(time.Date(2026, 12, 7, 10, 0, 0, 0, berlin))
	b.evaluate()
	if st := b.State(); !st.Serving || st.Caps.Download != Unlimited {
		t.Errorf("after the window: serving %v, download cap %v", st.Serving, st.Caps.Download)
	}
}
