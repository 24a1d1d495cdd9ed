package gui

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

func errLabel() *widget.Label {
	l := wrapped("")
	l.Importance = widget.DangerImportance
	return l
}

// budgetForm edits the live settings: pause, caps, quota, schedule, sites.
type budgetForm struct {
	api     settingsAPI
	loaded  settingsDoc // as the node last said
	paused  *widget.Check
	upload  *capField
	down    *capField
	quota   *widget.Entry
	resetDy *widget.Select
	sched   *scheduleEditor
	sites   *sitesEditor
	size    *widget.Entry            // cache.max_bytes
	dataDir *widget.Entry            // cache.data_dir
	errs    map[string]*widget.Label // by the key prefix a refused change names
	general *widget.Label
	result  *widget.Label
	applyB  *widget.Button
	ready   bool // the settings were read once: the form holds them
	// onPaused hears the paused state the node reports (the tray's label).
	onPaused func(paused bool)

	bandwidth, schedule, weights, cache, applyBar fyne.CanvasObject // the Settings tab's parts
}

func newBudgetForm(api settingsAPI, win func() fyne.Window) *budgetForm {
	b := &budgetForm{api: api, upload: newCapField("Upload cap (what the node sends)"),
		down: newCapField("Download cap (what it fetches)"), quota: widget.NewEntry(),
		general: errLabel(), result: widget.NewLabel("")}
	b.paused = widget.NewCheck("Pause serving (the cache and network membership stay)", nil)
	days := make([]string, 28)
	for i := range days {
		days[i] = strconv.Itoa(i + 1)
	}
	b.resetDy = widget.NewSelect(days, nil)
	b.quota.SetPlaceHolder("e.g. 300GiB; 0: none")
	b.sched = newScheduleEditor(win)
	b.sites = newSitesEditor()
	quotaErr, sizeErr, dirErr := errLabel(), errLabel(), errLabel()
	b.errs = map[string]*widget.Label{
		"paused": b.general, "bandwidth.upload": b.upload.err, "bandwidth.download": b.down.err,
		"bandwidth.monthly_quota": quotaErr, "bandwidth.quota_reset_day": quotaErr,
		"bandwidth.schedule": b.sched.err, "sites": b.sites.err,
		"cache.max_bytes": sizeErr, "cache.data_dir": dirErr,
	}
	b.size, b.dataDir = widget.NewEntry(), widget.NewEntry()
	b.size.SetPlaceHolder("e.g. 20GiB; 0: no limit")
	b.dataDir.SetPlaceHolder("an absolute directory, e.g. /srv/coral")
	b.cache = container.NewVBox(
		widget.NewLabel("Cache size: least recently used copies are dropped beyond it (applies at once)"),
		b.size, sizeErr,
		widget.NewLabel("Cache location (the node's data directory)"),
		b.dataDir, dirErr,
		wrapped("A new location applies at the node's next start; the node starts there afresh (a new identity and an empty cache) unless you move the old directory's contents there first."))
	apply := widget.NewButton("Apply", b.applyTapped)
	apply.Importance = widget.HighImportance
	apply.Disable() // until the settings are read: an empty form is not the node's
	b.applyB = apply
	b.general.SetText("Reading the node's settings…")
	b.bandwidth = container.NewVBox(
		b.paused, b.upload.box, b.down.box,
		widget.NewLabel("Monthly upload quota, and the day of the month it starts again"),
		container.NewGridWithColumns(2, b.quota, b.resetDy), quotaErr)
	b.schedule = container.NewVBox(widget.NewLabel("Windows in local time; the first that matches wins."), b.sched.content)
	b.weights = container.NewVBox(widget.NewLabel("Each site's share of the upload when the cap binds."), b.sites.content)
	b.applyBar = container.NewVBox(b.general, container.NewHBox(apply, b.result))
	return b
}

// fetch reads the settings in force (any goroutine); show puts them in
// the form (the UI goroutine).
func (b *budgetForm) fetch(ctx context.Context) (settingsDoc, error) {
	var doc settingsDoc
	raw, err := b.api.Settings(ctx)
	if err != nil {
		return doc, err
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, fmt.Errorf("settings: %w", err)
	}
	return doc, nil
}

func (b *budgetForm) show(doc settingsDoc) {
	b.loaded = doc
	if b.onPaused != nil {
		b.onPaused(doc.Paused)
	}
	b.paused.SetChecked(doc.Paused)
	b.upload.set(doc.Bandwidth.Upload)
	b.down.set(doc.Bandwidth.Download)
	b.quota.SetText(doc.Bandwidth.MonthlyQuota)
	b.resetDy.SetSelected(strconv.Itoa(doc.Bandwidth.QuotaResetDay))
	b.sched.set(doc.Bandwidth.Schedule)
	b.sites.set(doc.Sites)
	b.size.SetText(doc.Cache.MaxBytes)
	b.dataDir.SetText(doc.Cache.DataDir)
	if !b.ready {
		b.ready = true
		b.general.SetText("")
		b.applyB.Enable()
	}
}

// loaded reports a read of the node's settings (UI goroutine): the first
// good read fills the form, later ones refresh what the volunteer is not
// editing; a failed first read is said where Apply is.
func (b *budgetForm) reloaded(doc settingsDoc, err error) {
	switch {
	case err != nil && !b.ready:
		b.general.SetText("Cannot read the node's settings (tried again every few seconds): " + err.Error())
	case err != nil:
	case !b.ready:
		b.show(doc)
	default:
		b.refresh(doc)
	}
}

// refresh takes the node's settings, changed elsewhere perhaps (another
// window, PUT /api/settings), into every field that still shows what was
// loaded; a field the volunteer has changed keeps their text, and keeps
// the value it was loaded with as its base, so Apply sends it.
func (b *budgetForm) refresh(doc settingsDoc) {
	old := b.loaded.normal()
	if b.paused.Checked == old.Paused {
		b.loaded.Paused = doc.Paused
		b.paused.SetChecked(doc.Paused)
	}
	if b.onPaused != nil {
		b.onPaused(doc.Paused)
	}
	refreshText := func(e *widget.Entry, was string, now string, base *string) {
		if strings.TrimSpace(e.Text) == was {
			*base = now
			if e.Text != now {
				e.SetText(now)
			}
		}
	}
	refreshText(b.upload.entry, old.Bandwidth.Upload, doc.Bandwidth.Upload, &b.loaded.Bandwidth.Upload)
	refreshText(b.down.entry, old.Bandwidth.Download, doc.Bandwidth.Download, &b.loaded.Bandwidth.Download)
	refreshText(b.quota, old.Bandwidth.MonthlyQuota, doc.Bandwidth.MonthlyQuota, &b.loaded.Bandwidth.MonthlyQuota)
	refreshText(b.size, old.Cache.MaxBytes, doc.Cache.MaxBytes, &b.loaded.Cache.MaxBytes)
	refreshText(b.dataDir, old.Cache.DataDir, doc.Cache.DataDir, &b.loaded.Cache.DataDir)
	if day := strconv.Itoa(doc.Bandwidth.QuotaResetDay); b.resetDy.Selected == strconv.Itoa(old.Bandwidth.QuotaResetDay) {
		b.loaded.Bandwidth.QuotaResetDay = doc.Bandwidth.QuotaResetDay
		if b.resetDy.Selected != day {
			b.resetDy.SetSelected(day)
		}
	}
	now := doc.normal()
	if sched := (settingsDoc{Bandwidth: bandwidthDoc{Schedule: b.sched.windows()}}).normal(); reflect.DeepEqual(sched.Bandwidth.Schedule, old.Bandwidth.Schedule) {
		b.loaded.Bandwidth.Schedule = doc.Bandwidth.Schedule
		if !reflect.DeepEqual(sched.Bandwidth.Schedule, now.Bandwidth.Schedule) {
			b.sched.set(doc.Bandwidth.Schedule)
		}
	}
	if sites, err := b.sites.list(); err == nil && reflect.DeepEqual(sites, old.Sites) {
		b.loaded.Sites = doc.Sites
		if !reflect.DeepEqual(sites, now.Sites) {
			b.sites.set(doc.Sites)
		}
	}
}

// form is what the form holds now, or the first thing wrong with it.
func (b *budgetForm) form() (settingsDoc, error) {
	doc := b.loaded
	doc.Paused = b.paused.Checked
	doc.Bandwidth.Upload = strings.TrimSpace(b.upload.entry.Text)
	doc.Bandwidth.Download = strings.TrimSpace(b.down.entry.Text)
	doc.Bandwidth.MonthlyQuota = strings.TrimSpace(b.quota.Text)
	day, err := strconv.Atoi(b.resetDy.Selected)
	if err != nil {
		return doc, fmt.Errorf("bandwidth.quota_reset_day: pick a day from 1 to 28")
	}
	doc.Bandwidth.QuotaResetDay = day
	doc.Bandwidth.Schedule = b.sched.windows()
	if doc.Sites, err = b.sites.list(); err != nil {
		return doc, err
	}
	doc.Cache.MaxBytes = strings.TrimSpace(b.size.Text)
	doc.Cache.DataDir = strings.TrimSpace(b.dataDir.Text)
	if doc.Cache.DataDir != b.loaded.Cache.DataDir && !filepath.IsAbs(doc.Cache.DataDir) {
		return doc, fmt.Errorf("cache.data_dir: want an absolute directory path, got %q", doc.Cache.DataDir)
	}
	return doc, nil
}

// applyCall is one Apply: what the form was based on, the patch, and
// what the node answered.
type applyCall struct {
	base     settingsDoc
	patch    map[string]any
	answer   settingsDoc
	fresh    settingsDoc // the node's settings just before, when a list changed there
	conflict bool
	err      error
}

// prepare clears the messages and reads the form (UI goroutine); nil
// when there is nothing to send (and the reason is shown).
func (b *budgetForm) prepare() *applyCall {
	for _, l := range b.errs {
		l.SetText("")
	}
	b.result.SetText("")
	if !b.ready {
		b.general.SetText("Not applied: the node's settings are not read yet.")
		return nil
	}
	cur, err := b.form()
	if err != nil {
		b.showError(err)
		return nil
	}
	c := &applyCall{base: b.loaded, patch: patchFrom(b.loaded, cur)}
	if len(c.patch) == 0 {
		b.result.SetText("Nothing changed.")
		return nil
	}
	return c
}

// send asks the node (any goroutine but the UI's). A merge patch replaces
// lists whole, so a list changed on the node since the form read it is
// not sent over: that would drop the other change.
func (c *applyCall) send(ctx context.Context, api settingsAPI) {
	raw, err := api.Settings(ctx)
	if err == nil {
		err = json.Unmarshal(raw, &c.fresh)
	}
	if err != nil {
		c.err = err
		return
	}
	base, fresh := c.base.normal(), c.fresh.normal()
	_, sites := c.patch["sites"]
	bw, _ := c.patch["bandwidth"].(map[string]any)
	_, sched := bw["schedule"]
	if (sites && !reflect.DeepEqual(base.Sites, fresh.Sites)) || (sched && !reflect.DeepEqual(base.Bandwidth.Schedule, fresh.Bandwidth.Schedule)) {
		c.conflict = true
		return
	}
	body, _ := json.Marshal(c.patch)
	if raw, err = api.UpdateSettings(ctx, body); err == nil {
		err = json.Unmarshal(raw, &c.answer)
	}
	c.err = err
}

// finish shows what the node answered (UI goroutine).
func (b *budgetForm) finish(c *applyCall) {
	switch {
	case c.conflict:
		b.loaded.Sites, b.loaded.Bandwidth.Schedule = c.fresh.Sites, c.fresh.Bandwidth.Schedule
		b.sites.set(c.fresh.Sites)
		b.sched.set(c.fresh.Bandwidth.Schedule)
		b.refresh(c.fresh)
		b.result.SetText("")
		b.general.SetText("Not applied: the site weights or the schedule were changed elsewhere: reloaded, check and apply again.")
	case c.err != nil:
		b.showError(c.err)
	default:
		b.show(c.answer)
		b.result.SetText("Applied and saved.")
	}
}

// apply sends what changed and shows the answer, all on the calling
// goroutine (tests; the button uses applyTapped). The node checks
// everything and applies all of it or nothing; a refusal is shown next to
// the field it names.
func (b *budgetForm) apply(ctx context.Context) {
	if c := b.prepare(); c != nil {
		c.send(ctx, b.api)
		b.finish(c)
	}
}

// applyTapped is the Apply button: the node is asked off the UI goroutine.
func (b *budgetForm) applyTapped() {
	c := b.prepare()
	if c == nil {
		return
	}
	inBackground(b.applyB, b.result, "Applying…", func() { c.send(context.Background(), b.api) }, func() { b.finish(c) })
}

func (b *budgetForm) showError(err error) {
	if noAnswer(err) {
		b.general.SetText(noAnswerText + err.Error())
		b.result.SetText("")
		return
	}
	key, msg := splitFieldError(err)
	for prefix, l := range b.errs {
		if key == prefix || strings.HasPrefix(key, prefix+".") || strings.HasPrefix(key, prefix+"[") {
			l.SetText(msg)
			b.result.SetText("Not applied: see the message above.")
			return
		}
	}
	b.result.SetText("")
	b.general.SetText("Not applied: " + err.Error())
}

// setPaused pauses or resumes at once (the tray's item; any goroutine but
// the UI's); pausedIs shows the answer.
func (b *budgetForm) setPaused(ctx context.Context, paused bool) (settingsDoc, error) {
	var doc settingsDoc
	raw, err := b.api.UpdateSettings(ctx, json.RawMessage(fmt.Sprintf(`{"paused":%t}`, paused)))
	if err != nil {
		return doc, err
	}
	return doc, json.Unmarshal(raw, &doc)
}

// pausedIs shows the node's paused state (UI goroutine).
func (b *budgetForm) pausedIs(paused bool) {
	b.loaded.Paused = paused
	b.paused.SetChecked(paused)
	if b.onPaused != nil {
		b.onPaused(paused)
	}
}
