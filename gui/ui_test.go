package gui

import (
	"testing"
	"time"
)

// uiLoop stands in for the app's UI goroutine: Fyne's test driver runs
// fyne.Do on the calling goroutine, so a test would race the window's
// background calls. Here what the window posts waits until the test
// goroutine runs it, as the app's loop would.
type uiLoop struct {
	q    chan func()
	done chan struct{}
}

func newUILoop(t *testing.T) *uiLoop {
	l := &uiLoop{q: make(chan func(), 64), done: make(chan struct{})}
	do := func(f func()) {
		select {
		case l.q <- f:
		case <-l.done:
		}
	}
	old := uiDo.Swap(&do)
	t.Cleanup(func() { close(l.done); uiDo.Store(old) })
	return l
}

// until runs what the window posts until cond holds; the test fails after
// 20 s.
func (l *uiLoop) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case f := <-l.q:
			f()
		case <-deadline.C:
			t.Fatalf("waited 20 s for %s", what)
		}
	}
}
