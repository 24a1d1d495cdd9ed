package gui

import (
	"math"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// capSteps are the slider's stops, from sending nothing (left) to no cap
// at all (right), so dragging left always throttles harder; the entry
// beside it takes any rate. "0" is how the node writes "no cap".
var capSteps = []string{"off", "256KiB/s", "512KiB/s", "1MiB/s", "2MiB/s", "5MiB/s", "10MiB/s", "20MiB/s", "50MiB/s", "100MiB/s", "0"}

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
	f.entry.OnChanged = f.follow
	f.entry.SetPlaceHolder(`e.g. 2MiB/s; 0: no cap; off`)
	ends := container.NewBorder(nil, nil, widget.NewLabel("off"), widget.NewLabel("no cap"))
	f.box = container.NewVBox(widget.NewLabel(label),
		container.NewGridWithColumns(2, container.NewVBox(f.slider, ends), f.entry), f.err)
	return f
}

// set shows the node's rate: the entry holds it exactly, the slider sits
// at the nearest stop.
func (f *capField) set(rate string) {
	f.entry.SetText(rate) // follow moves the slider
	f.follow(rate)
}

// follow moves the slider to the stop nearest what the entry says, without
// writing the entry back (a typed 3MiB/s stays 3MiB/s).
func (f *capField) follow(rate string) {
	if i, ok := nearestStop(rate); ok && f.slider.Value != float64(i) {
		f.slider.Value = float64(i)
		f.slider.Refresh()
	}
}

// nearestStop is the capSteps index closest to rate (on a log scale, as
// the stops are spaced); false when rate is not a rate this window reads.
func nearestStop(rate string) (int, bool) {
	want, ok := rateBytes(rate)
	if !ok {
		return 0, false
	}
	switch {
	case want < 0: // off
		return 0, true
	case want == 0: // no cap
		return len(capSteps) - 1, true
	}
	best, bestDist := 1, math.Inf(1)
	for i := 1; i < len(capSteps)-1; i++ {
		stop, _ := rateBytes(capSteps[i])
		if d := math.Abs(math.Log(want) - math.Log(stop)); d < bestDist {
			best, bestDist = i, d
		}
	}
	return best, true
}

// rateUnits are the units a rate is written in, longest first so "KiB"
// is not read as "B".
var rateUnits = []struct {
	name string
	size float64
}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1}}

// rateBytes reads "2MiB/s", "1.5 MB/s", "10Mbit/s" or "10Mbps" (bits, as
// the node reads them: a lowercase b is a bit), "0" (0: no cap) or "off"
// (-1) only to place the slider: the node parses and checks what is sent.
func rateBytes(s string) (float64, bool) {
	s, perByte := inBytes(strings.TrimSpace(s))
	s = strings.ToLower(s)
	if s == "off" {
		return -1, true
	}
	mult := 1.0 / perByte
	for _, u := range rateUnits {
		if strings.HasSuffix(s, u.name) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.name)), u.size/perByte
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, false
	}
	return n * mult, true
}

// inBytes drops a rate's "/s" or "ps" and turns a bit unit ("Mbit", "Mb")
// into its byte unit ("MB"), saying how many of the typed units make one.
func inBytes(s string) (string, float64) {
	if t := strings.TrimSuffix(s, "/s"); t != s {
		s = strings.TrimSpace(t)
	} else if strings.HasSuffix(s, "ps") {
		s = strings.TrimSpace(strings.TrimSuffix(s, "ps"))
	}
	lower := strings.ToLower(s)
	for _, bit := range []string{"bits", "bit", "b"} {
		if strings.HasSuffix(lower, bit) && (bit != "b" || strings.HasSuffix(s, "b")) {
			return s[:len(s)-len(bit)] + "B", 8
		}
	}
	return s, 1
}
