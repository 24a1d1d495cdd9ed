package gui

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

var weekDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// scheduleEditor lists the weekly windows with add, edit and remove.
type scheduleEditor struct {
	list    []windowDoc
	rows    *fyne.Container
	err     *widget.Label
	win     func() fyne.Window
	editing *windowDialog // the open dialog, for tests
	content fyne.CanvasObject
}

func newScheduleEditor(win func() fyne.Window) *scheduleEditor {
	s := &scheduleEditor{rows: container.NewVBox(), err: errLabel(), win: win}
	add := widget.NewButtonWithIcon("Add a window", theme.ContentAddIcon(), func() { s.open(-1) })
	s.content = container.NewVBox(s.rows, container.NewHBox(add), s.err)
	return s
}

func (s *scheduleEditor) set(ws []windowDoc) {
	s.list = append([]windowDoc(nil), ws...)
	s.render()
}

func (s *scheduleEditor) windows() []windowDoc { return append([]windowDoc(nil), s.list...) }

func (s *scheduleEditor) render() {
	s.rows.RemoveAll()
	if len(s.list) == 0 {
		s.rows.Add(widget.NewLabel("No windows: the caps above apply all week."))
	}
	for i, w := range s.list {
		s.rows.Add(container.NewBorder(nil, nil, nil, container.NewHBox(
			widget.NewButtonWithIcon("", theme.DocumentCreateIcon(), func() { s.open(i) }),
			widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { s.remove(i) }),
		), widget.NewLabel(w.String())))
	}
}

func (s *scheduleEditor) remove(i int) {
	s.list = append(s.list[:i:i], s.list[i+1:]...)
	s.render()
}

// windowDialog edits one window; index -1 adds.
type windowDialog struct {
	index            int
	days             *widget.CheckGroup
	from, to, up, dn *widget.Entry
	err              *widget.Label
	dlg              dialog.Dialog
}

var clockText = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$|^24:00$`)

func (s *scheduleEditor) open(i int) {
	d := &windowDialog{index: i, days: widget.NewCheckGroup(weekDays, nil), from: widget.NewEntry(), to: widget.NewEntry(),
		up: widget.NewEntry(), dn: widget.NewEntry(), err: errLabel()}
	d.days.Horizontal = true
	d.from.SetPlaceHolder("HH:MM")
	d.to.SetPlaceHolder("HH:MM")
	d.up.SetPlaceHolder("empty: keep the cap; 0: none; off")
	d.dn.SetPlaceHolder("empty: keep the cap; 0: none; off")
	if i >= 0 {
		w := s.list[i]
		d.days.SetSelected(w.Days)
		d.from.SetText(w.From)
		d.to.SetText(w.To)
		d.up.SetText(deref(w.Upload))
		d.dn.SetText(deref(w.Download))
	}
	form := widget.NewForm(widget.NewFormItem("Days", d.days), widget.NewFormItem("From", d.from),
		widget.NewFormItem("To", d.to), widget.NewFormItem("Upload", d.up), widget.NewFormItem("Download", d.dn))
	s.editing = d
	if s.win == nil || s.win() == nil {
		return
	}
	d.dlg = dialog.NewCustomConfirm("Schedule window", "Keep", "Cancel", container.NewVBox(form, d.err),
		func(ok bool) {
			if ok && !s.save(d) {
				d.dlg.Show() // keep it open with the message
			}
		}, s.win())
	d.dlg.Resize(fyne.NewSize(560, 0))
	d.dlg.Show()
}

// save checks the dialog and puts its window in the list; false and a
// message in the dialog when something is missing.
func (s *scheduleEditor) save(d *windowDialog) bool {
	w := windowDoc{Days: orderedDays(d.days.Selected), From: strings.TrimSpace(d.from.Text), To: strings.TrimSpace(d.to.Text)}
	if up := strings.TrimSpace(d.up.Text); up != "" {
		w.Upload = &up
	}
	if dn := strings.TrimSpace(d.dn.Text); dn != "" {
		w.Download = &dn
	}
	switch {
	case len(w.Days) == 0:
		d.err.SetText("Pick at least one day.")
	case !clockText.MatchString(w.From) || !clockText.MatchString(w.To):
		d.err.SetText("From and To are times such as 08:00 or 24:00.")
	case w.From == w.To:
		d.err.SetText("From and To are equal: the window would be empty.")
	case w.Upload == nil && w.Download == nil:
		d.err.SetText("Set an upload cap, a download cap or both.")
	default:
		if d.index < 0 {
			s.list = append(s.list, w)
		} else {
			s.list[d.index] = w
		}
		s.editing = nil
		s.render()
		return true
	}
	return false
}

func orderedDays(sel []string) []string {
	var out []string
	for _, d := range weekDays {
		for _, s := range sel {
			if s == d {
				out = append(out, d)
			}
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// sitesEditor edits the site weights.
type sitesEditor struct {
	hosts, weights []*widget.Entry
	rows           *fyne.Container
	err            *widget.Label
	content        fyne.CanvasObject
}

func newSitesEditor() *sitesEditor {
	e := &sitesEditor{rows: container.NewVBox(), err: errLabel()}
	add := widget.NewButtonWithIcon("Add a site", theme.ContentAddIcon(), func() { e.addRow("", "1"); e.render() })
	e.content = container.NewVBox(e.rows, container.NewHBox(add), e.err)
	return e
}

func (e *sitesEditor) set(sites []siteDoc) {
	e.hosts, e.weights = nil, nil
	for _, s := range sites {
		e.addRow(s.Host, strconv.FormatFloat(s.Weight, 'g', -1, 64))
	}
	e.render()
}

func (e *sitesEditor) addRow(host, weight string) {
	h, w := widget.NewEntry(), widget.NewEntry()
	h.SetPlaceHolder("www.example.com")
	h.SetText(host)
	w.SetText(weight)
	e.hosts, e.weights = append(e.hosts, h), append(e.weights, w)
}

func (e *sitesEditor) remove(i int) {
	e.hosts = append(e.hosts[:i:i], e.hosts[i+1:]...)
	e.weights = append(e.weights[:i:i], e.weights[i+1:]...)
	e.render()
}

func (e *sitesEditor) render() {
	e.rows.RemoveAll()
	if len(e.hosts) == 0 {
		e.rows.Add(widget.NewLabel("No weights: every site weighs 1."))
	}
	for i := range e.hosts {
		del := widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { e.remove(i) })
		e.rows.Add(container.NewBorder(nil, nil, nil, del, container.NewGridWithColumns(2, e.hosts[i], e.weights[i])))
	}
}

// list reads the rows; a weight that is not a number is refused here.
func (e *sitesEditor) list() ([]siteDoc, error) {
	out := []siteDoc{}
	for i := range e.hosts {
		w, err := strconv.ParseFloat(strings.TrimSpace(e.weights[i].Text), 64)
		if err != nil {
			return nil, fmt.Errorf("sites[%d].weight: want a number such as 1 or 2.5, got %q", i, e.weights[i].Text)
		}
		out = append(out, siteDoc{Host: strings.TrimSpace(e.hosts[i].Text), Weight: w})
	}
	return out, nil
}
