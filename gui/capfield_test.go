package gui

import (
	"testing"

	"fyne.io/fyne/v2/test"
)

// The slider runs from off (left) to no cap (right), and sits at the stop
// nearest the rate the node has or the volunteer types, which stays exact.
func TestCapSliderEndsAndNearestStop(t *testing.T) {
	test.NewTempApp(t)
	f := newCapField("Upload cap")
	test.NewTempWindow(t, f.box)
	f.slider.SetValue(3)
	f.slider.SetValue(0)
	if f.entry.Text != "off" {
		t.Errorf("fully left: %q, want off (throttle hardest)", f.entry.Text)
	}
	f.slider.SetValue(f.slider.Max)
	if f.entry.Text != "0" {
		t.Errorf("fully right: %q, want 0 (no cap)", f.entry.Text)
	}
	for _, c := range []struct{ rate, stop string }{
		{"3MiB/s", "2MiB/s"}, {"4MiB/s", "5MiB/s"}, {"0", "0"}, {"off", "off"}, {"OFF", "off"},
		{"1.5 GB/s", "100MiB/s"}, {"1kB/s", "256KiB/s"}, {"300KiB/s", "256KiB/s"}, {"50MiB/s", "50MiB/s"},
		// Bits are an eighth of a byte, as the node reads them.
		{"16Mbit/s", "2MiB/s"}, {"80Mbps", "10MiB/s"}, {"8 Mb/s", "1MiB/s"}, {"16MB/s", "20MiB/s"},
	} {
		f.set(c.rate)
		if got := capSteps[int(f.slider.Value)]; got != c.stop || f.entry.Text != c.rate {
			t.Errorf("set %q: slider at %q, entry %q; want %q", c.rate, got, f.entry.Text, c.stop)
		}
	}
	f.set("2MiB/s")
	f.entry.SetText("")
	test.Type(f.entry, "20MiB/s")
	if got := capSteps[int(f.slider.Value)]; got != "20MiB/s" || f.entry.Text != "20MiB/s" {
		t.Errorf("typed 20MiB/s: slider at %q, entry %q", got, f.entry.Text)
	}
	test.Type(f.entry, "x") // not a rate: the slider stays
	if got := capSteps[int(f.slider.Value)]; got != "20MiB/s" {
		t.Errorf("after a typo: slider at %q", got)
	}
}

// FuzzRateStop: whatever is typed, the slider gets a stop or none, and
// nothing panics.
func FuzzRateStop(f *testing.F) {
	for _, s := range []string{"2MiB/s", "0", "off", "1.5 GB/s", "", "-1", "1e400", "NaN", "Inf MiB/s", "5 k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if i, ok := nearestStop(s); ok && (i < 0 || i >= len(capSteps)) {
			t.Fatalf("%q: stop %d", s, i)
		}
	})
}
