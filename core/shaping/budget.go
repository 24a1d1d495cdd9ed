package shaping

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Budget. Zero values are defaults.
type Options struct {
	Location  *time.Location   // the volunteer's time zone; default time.Local
	UsagePath string           // where the usage record is kept; "": memory only
	Now       func() time.Time // the clock; default time.Now
	Log       *slog.Logger
	// EvalEvery is how often schedule and quota are re-evaluated (default
	// 5 s); FlushEvery how often the usage record is saved (default 30 s:
	// a crash loses at most that much counting). Tests shorten them.
	EvalEvery, FlushEvery time.Duration
}

// State is what the budget decided for now.
type State struct {
	Serving   bool   `json:"serving"`
	Reason    string `json:"reason,omitempty"` // why not serving: "paused", "off window", "quota reached"
	Caps      Caps   `json:"caps"`             // caps in force (schedule applied)
	Window    int    `json:"window"`           // index of the schedule window in force; -1 none
	Quota     int64  `json:"quota"`            // the policy's monthly quota in bytes; 0 none
	QuotaUsed int64  `json:"quota_used"`       // bytes sent this quota month
	// Period is when this quota month began; NextPeriod when the next one
	// begins (the policy's reset day).
	Period     time.Time `json:"period"`
	NextPeriod time.Time `json:"next_period"`
	QuotaWarn  bool      `json:"quota_warn"` // at least 90 % of the quota used
	// ResumeAt is when serving resumes by itself (the off window's end, the
	// next quota month); zero when paused or serving.
	ResumeAt time.Time `json:"resume_at,omitzero"`
}

// Budget applies a Policy: it holds the upload and download shapers, the
// usage record and the serving decision, re-evaluated when the policy
// changes and at least every few seconds for schedule and quota.
type Budget struct {
	opts  Options
	usage *Usage
	up    *Shaper
	down  *Shaper
	sent  meter
	recv  meter
	// totals since start, for counters that only grow (Prometheus)
	totalSent, totalRecv atomic.Int64

	// applying orders whole evaluations: the policy and state stored and
	// the shapers' caps and weights set, one evaluation after another, so
	// the shapers never keep an older evaluation's caps than the state
	// shows (the tick's evaluation finishing after a settings change's).
	applying sync.Mutex
	mu       sync.Mutex
	policy   Policy
	state    State
	period   time.Time // start of the quota month mtd counts from

	// Read on every byte sent, so kept outside mu.
	mtd     atomic.Int64 // bytes sent since period
	quota   atomic.Int64 // the policy's MonthlyQuota
	serving atomic.Bool  // state.Serving
	subs    []func(State)

	stop chan struct{}
	done chan struct{}
}

// Defaults of Options.EvalEvery and Options.FlushEvery.
const (
	evalEvery  = 5 * time.Second
	flushEvery = 30 * time.Second
)

// setDefaults fills zero fields with their defaults.
func (o *Options) setDefaults() {
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.EvalEvery <= 0 {
		o.EvalEvery = evalEvery
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = flushEvery
	}
}

// New opens the usage record and starts applying p.
func New(p Policy, o Options) (*Budget, error) {
	o.setDefaults()
	u, err := OpenUsage(o.UsagePath)
	if err != nil {
		return nil, err
	}
	b := &Budget{opts: o, usage: u, up: NewShaper(Unlimited), down: NewShaper(Unlimited),
		stop: make(chan struct{}), done: make(chan struct{})}
	b.SetPolicy(p)
	go b.loop()
	return b, nil
}

// Close stops the budget and saves the usage record.
func (b *Budget) Close() error {
	select {
	case <-b.stop:
		return nil
	default:
	}
	close(b.stop)
	<-b.done
	b.up.Close()
	b.down.Close()
	return b.usage.Flush(b.opts.Now())
}

// SetPolicy applies p at once (a live settings change).
func (b *Budget) SetPolicy(p Policy) {
	b.applying.Lock()
	b.mu.Lock()
	b.policy = p
	b.mu.Unlock()
	b.up.SetWeights(p.Weights)
	notify := b.apply()
	b.applying.Unlock()
	notify()
}

// Subscribe calls fn (on its own goroutine's time, not under a lock)
// whenever the serving decision or the caps in force change.
func (b *Budget) Subscribe(fn func(State)) {
	b.mu.Lock()
	b.subs = append(b.subs, fn)
	b.mu.Unlock()
}

func (b *Budget) loop() {
	defer close(b.done)
	eval := time.NewTicker(b.opts.EvalEvery)
	flush := time.NewTicker(b.opts.FlushEvery)
	defer eval.Stop()
	defer flush.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-eval.C:
			b.evaluate()
		case <-flush.C:
			if err := b.usage.Flush(b.opts.Now()); err != nil {
				b.opts.Log.Warn("saving usage", "err", err)
			}
		}
	}
}

// evaluate decides caps and serving for now and tells subscribers of a change.
func (b *Budget) evaluate() {
	b.applying.Lock()
	notify := b.apply()
	b.applying.Unlock()
	notify()
}

// apply decides caps and serving for now and sets them (b.applying held);
// notify tells the subscribers of a change, called once b.applying is
// released so a subscriber may read the budget or change its policy.
func (b *Budget) apply() (notify func()) {
	now := b.opts.Now()
	b.mu.Lock()
	p := b.policy
	if ps := PeriodStart(now, p.QuotaResetDay, b.opts.Location); !ps.Equal(b.period) {
		b.period = ps
		b.mtd.Store(b.usage.SentSince(ps))
	}
	caps, win := Schedule{Base: Caps{Upload: p.Upload, Download: p.Download}, Windows: p.Schedule}.At(now, b.opts.Location)
	mtd := b.mtd.Load()
	st := State{Serving: true, Caps: caps, Window: win, Quota: int64(p.MonthlyQuota), QuotaUsed: mtd,
		Period: b.period, NextPeriod: NextPeriod(now, p.QuotaResetDay, b.opts.Location)}
	if p.MonthlyQuota > 0 {
		st.QuotaWarn = mtd*10 >= int64(p.MonthlyQuota)*9
	}
	switch {
	case p.Paused:
		st.Serving, st.Reason = false, "paused"
	case caps.Upload == Off || caps.Download == Off:
		// A node that may not download cannot fetch what visitors and
		// peers ask for, so download "off" stops serving as upload "off".
		st.Serving, st.Reason = false, "off window"
		st.ResumeAt = offUntil(Schedule{Base: Caps{Upload: p.Upload, Download: p.Download}, Windows: p.Schedule}, now, b.opts.Location)
	case p.MonthlyQuota > 0 && mtd >= int64(p.MonthlyQuota):
		st.Serving, st.Reason = false, "quota reached"
		st.ResumeAt = st.NextPeriod
	}
	changed := st.Serving != b.state.Serving || st.Caps != b.state.Caps || st.Reason != b.state.Reason
	b.state = st
	b.quota.Store(int64(p.MonthlyQuota))
	b.serving.Store(st.Serving)
	subs := append([]func(State){}, b.subs...)
	b.mu.Unlock()
	// Transfers already under way finish under the base cap when a window
	// is "off" (and fail with ErrOff when the base is "off" too); new ones
	// are refused by the callers' Serving checks.
	b.up.SetCap(capOrBase(caps.Upload, p.Upload))
	b.down.SetCap(capOrBase(caps.Download, p.Download))
	return func() {
		if changed {
			for _, fn := range subs {
				fn(st)
			}
		}
	}
}

// capOrBase is the cap a shaper enforces: an "off" window's base cap,
// else the cap in force. An "off" base stays Off (senders get ErrOff):
// off never means unlimited.
func capOrBase(c, base Rate) Rate {
	if c == Off {
		return base
	}
	return c
}

// State is the decision in force.
func (b *Budget) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Serving says whether the node serves visitors and peers now.
func (b *Budget) Serving() bool { return b.serving.Load() }

// Send waits until n bytes of site may be sent under the upload cap and
// counts them. Callers check Serving before starting a transfer; Send does
// not cut one short, unless upload is "off" with no cap to fall back on
// (ErrOff).
func (b *Budget) Send(ctx context.Context, site string, n int) error {
	if err := b.up.Wait(ctx, site, n); err != nil {
		return err
	}
	b.CountSent(site, int64(n))
	return nil
}

// Receive waits until n bytes of site may be received under the download
// cap and counts them.
func (b *Budget) Receive(ctx context.Context, site string, n int) error {
	if err := b.down.Wait(ctx, site, n); err != nil {
		return err
	}
	b.CountReceived(site, int64(n))
	return nil
}

// CountSent records bytes sent without holding them back (DNS and DSHT
// messages, and bytes already shaped elsewhere).
func (b *Budget) CountSent(site string, n int64) {
	now := b.opts.Now()
	b.usage.Add(now, site, Counts{Sent: n})
	b.sent.add(now, n)
	b.totalSent.Add(n)
	used := b.mtd.Add(n)
	if q := b.quota.Load(); q > 0 && used >= q && b.serving.Load() {
		go b.evaluate() // stop at once rather than at the next tick
	}
}

// CountReceived records bytes received without holding them back.
func (b *Budget) CountReceived(site string, n int64) {
	now := b.opts.Now()
	b.usage.Add(now, site, Counts{Received: n})
	b.recv.add(now, n)
	b.totalRecv.Add(n)
}

// Usage is the record behind the budget.
func (b *Budget) Usage() *Usage { return b.usage }

// Rates are the measured send and receive rates (bytes/s, last seconds).
func (b *Budget) Rates() (sent, received int64) {
	now := b.opts.Now()
	return b.sent.rate(now), b.recv.rate(now)
}

// Totals are the bytes sent and received since the budget started.
func (b *Budget) Totals() (sent, received int64) { return b.totalSent.Load(), b.totalRecv.Load() }

// offUntil is the first minute after now at which the schedule no longer
// turns upload or download off (zero: not within a week and a day, i.e.
// always off).
func offUntil(s Schedule, now time.Time, loc *time.Location) time.Time {
	t := now.Truncate(time.Minute)
	for range 8 * 24 * 60 {
		t = t.Add(time.Minute)
		if c, _ := s.At(t, loc); c.Upload != Off && c.Download != Off {
			return t
		}
	}
	return time.Time{}
}
