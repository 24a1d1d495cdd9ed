package gui

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// capSteps are the slider's stops; the entry beside it takes any rate.
var capSteps = []string{"0", "256KiB/s", "512KiB/s", "1MiB/s", "2MiB/s", "5MiB/s", "10MiB/s", "20MiB/s", "50MiB/s", "100MiB/s"}

// capField is a bandwidth cap: a slider for the usual stops and an entry
// for the exact value, with its own error line.
type capField struct {
	slider *widget.Slider
	entry  *widget.Entry
	err    *widget.Label
	box    fyne.CanvasObject
}

func newCapField(label string) *capField {
	f := &capField{slider: widget.NewSlider(0, float64(len(capSteps)-1)), entry: widget.NewEntry(), err: errLabel()}
	f.slider.Step = 1
	f.slider.OnChanged = func(v float64) { f.entry.SetText(capSteps[int(v)]) }
	f.entry.SetPlaceHolder(`e.g. 2MiB/s; 0: no cap; off`)
	f.box = container.NewVBox(widget.NewLabel(label),
		container.NewGridWithColumns(2, f.slider, f.entry), f.err)
	return f
}

func (f *capField) set(rate string) {
	f.entry.SetText(rate)
	for i, s := range capSteps {
		if strings.EqualFold(s, rate) {
			f.slider.Value = float64(i)
			f.slider.Refresh()
		}
	}
}

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
	apply := widget.NewButton("Apply", func() { b.apply(context.Background()) })
	apply.Importance = widget.HighImportance
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

// apply sends what changed. The node checks everything and applies all of
// it or nothing; a refusal is shown next to the field it names.
func (b *budgetForm) apply(ctx context.Context) {
	for _, l := range b.errs {
		l.SetText("")
	}
	b.result.SetText("")
	cur, err := b.form()
	if err == nil {
		patch := patchFrom(b.loaded, cur)
		if len(patch) == 0 {
			b.result.SetText("Nothing changed.")
			return
		}
		var raw, body []byte
		body, _ = json.Marshal(patch)
		if raw, err = b.api.UpdateSettings(ctx, body); err == nil {
			var doc settingsDoc
			if err = json.Unmarshal(raw, &doc); err == nil {
				b.show(doc)
				b.result.SetText("Applied and saved.")
				return
			}
		}
	}
	b.showError(err)
}

func (b *budgetForm) showError(err error) {
	key, msg := splitFieldError(err)
	for prefix, l := range b.errs {
		if key == prefix || strings.HasPrefix(key, prefix+".") || strings.HasPrefix(key, prefix+"[") {
			l.SetText(msg)
			b.result.SetText("Not applied: see the message above.")
			return
		}
	}
	b.general.SetText("Not applied: " + err.Error())
}

// setPaused pauses or resumes at once (the tray's item).
func (b *budgetForm) setPaused(ctx context.Context, paused bool) error {
	raw, err := b.api.UpdateSettings(ctx, json.RawMessage(fmt.Sprintf(`{"paused":%t}`, paused)))
	if err != nil {
		return err
	}
	var doc settingsDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	b.loaded.Paused = doc.Paused
	b.paused.SetChecked(doc.Paused)
	if b.onPaused != nil {
		b.onPaused(doc.Paused)
	}
	return nil
}
