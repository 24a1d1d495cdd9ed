package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/shaping"
)

// usageFile is the usage record's name in the data directory.
const usageFile = "usage.json"

// openBudget loads the live settings (config file + data_dir/settings.json)
// and starts the budget that applies them; a settings change reaches the
// budget through its subscription, within the PUT that made it.
func (n *Node) openBudget() error {
	var err error
	home := n.cfg
	home.DataDir = n.homeDataDir // the base a reset (null) returns to
	if n.settings, err = config.OpenLive(home, n.settingsPath); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if keys := n.settings.Overridden(); len(keys) > 0 {
		n.log.Info("settings changed in the window or through /api/settings take the place of the config file's: reset them there, or delete the file, for the config file's to apply",
			"keys", strings.Join(keys, ", "), "file", n.settingsPath)
	}
	s := n.settings.Get()
	n.budget, err = shaping.New(n.budgetPolicy(s), shaping.Options{
		UsagePath: n.cfg.Path(usageFile),
		Log:       n.parts.With("component", "budget"),
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.settings.Subscribe(func(config.Settings) { n.setBudgetPolicy(n.settings.Get) })
	n.budget.Subscribe(func(st shaping.State) {
		n.log.Info("budget", "serving", st.Serving, "reason", st.Reason, "upload", st.Caps.Upload, "download", st.Caps.Download)
	})
	return nil
}

// followCacheSize keeps the store's disk budget at the cache size in the
// live settings: a smaller size evicts at once, within the PUT that set it.
func (n *Node) followCacheSize() {
	n.settings.Subscribe(func(s config.Settings) {
		n.store.SetMaxBytes(int64(s.Cache.MaxBytes))
	})
}

// announceHeadroom refreshes this node's announcement (the heartbeat peers
// read; it carries the budget's headroom) at once when serving or the caps
// change, and on every settings change (within the PUT, after the budget
// applied it), so no change waits for the heartbeat's next sweep; the
// refresh tells the peers when what they see changed.
func (n *Node) announceHeadroom() {
	n.budget.Subscribe(func(shaping.State) { n.loc.Refresh() })
	n.settings.Subscribe(func(config.Settings) { n.loc.Refresh() })
	n.loc.Refresh()
}

// Settings implements control.SettingsAPI.
func (n *Node) Settings(context.Context) (json.RawMessage, error) {
	return json.Marshal(n.settings.Get())
}

// UpdateSettings implements control.SettingsAPI.
func (n *Node) UpdateSettings(_ context.Context, patch json.RawMessage) (json.RawMessage, error) {
	s, err := n.settings.Update(patch)
	var ke *config.KeyError
	if errors.As(err, &ke) {
		return nil, &control.FieldError{Field: ke.Key, Msg: ke.Msg}
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// Usage implements control.UsageAPI.
func (n *Node) Usage(site string, since time.Time) []control.UsageBucket {
	out := []control.UsageBucket{}
	for _, b := range n.budget.Usage().Series(strings.ToLower(site), since) {
		out = append(out, control.UsageBucket{Start: b.Start, Sent: b.Sent, Received: b.Received})
	}
	return out
}

// budgetStatus is the budget's section of /api/status.
func (n *Node) budgetStatus() *control.BudgetStatus {
	// Every figure from the budget's own state, never the settings: during
	// a settings change those are newer than what the budget enforces.
	st := n.budget.State()
	h := n.budget.Headroom()
	sent, recv := n.budget.Rates()
	out := &control.BudgetStatus{
		Serving: st.Serving, Reason: st.Reason, ResumeAt: st.ResumeAt,
		Upload: st.Caps.Upload.String(), Download: st.Caps.Download.String(), Window: st.Window,
		QuotaBytes: st.Quota, QuotaUsed: st.QuotaUsed, QuotaWarn: st.QuotaWarn,
		QuotaResetAt: st.NextPeriod,
		SentRate:     sent, ReceivedRate: recv,
		SpareRate: h.SpareRate, QuotaLeft: h.QuotaLeft,
		Sites: map[string]control.SiteUsage{},
	}
	for site, c := range n.budget.Usage().SiteTotals(st.Period) {
		out.Sites[site] = control.SiteUsage{Sent: c.Sent, Received: c.Received}
	}
	for _, b := range n.budget.Usage().Series("", st.Period) {
		out.MonthSent += b.Sent
		out.MonthReceived += b.Received
	}
	out.Note = budgetNote(out)
	return out
}

// budgetNote is the warning the status page shows, "" when all is well.
func budgetNote(b *control.BudgetStatus) string {
	quota := ""
	if b.QuotaBytes > 0 {
		quota = fmt.Sprintf("%d %% of the monthly quota used (resets %s)", b.QuotaUsed*100/b.QuotaBytes, b.QuotaResetAt.Format("2 Jan 15:04"))
	}
	switch b.Reason {
	case "paused":
		return "paused: not serving visitors or other proxies."
	case "off window":
		if b.Window < 0 {
			return "upload or download is set to \"off\": not serving visitors or other proxies."
		}
		return "an \"off\" window of the schedule is in force: not serving visitors or other proxies."
	case "quota reached":
		return "the monthly quota is used up: not serving visitors or other proxies; " + quota + "."
	}
	if b.QuotaWarn {
		return quota + "."
	}
	return ""
}

// countDNS is dnsserver.Config.Traffic: DNS is counted, never held back.
func (n *Node) countDNS(sent, received int) {
	n.budget.CountSent("", int64(sent))
	n.budget.CountReceived("", int64(received))
}
