package gui

import (
	"context"
	"errors"
	"net"
	"sync/atomic"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
)

// uiDo runs a function on the UI goroutine: fyne.Do in the app. Tests put
// their own loop here, because Fyne's test driver runs fyne.Do on the
// calling goroutine and so has no UI goroutine to wait for.
var uiDo atomic.Pointer[func(func())]

func init() {
	do := fyne.Do
	uiDo.Store(&do)
}

// onUI queues f for the UI goroutine (from any goroutine).
func onUI(f func()) { (*uiDo.Load())(f) }

// inBackground runs call off the UI goroutine, so a slow or hung node
// never freezes the window: btn is disabled and status says busy until
// call returns; then done runs on the UI goroutine. Call it on the UI
// goroutine.
func inBackground(btn *widget.Button, status *widget.Label, busy string, call func(), done func()) {
	if btn != nil {
		btn.Disable()
	}
	if status != nil {
		status.SetText(busy)
	}
	go func() {
		call()
		onUI(func() {
			if btn != nil {
				btn.Enable()
			}
			done()
		})
	}()
}

// noAnswer: the node did not answer in time, so a change may or may not
// have reached it (unlike a refusal, which applied nothing).
func noAnswer(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// noAnswerText is what the volunteer is told after noAnswer.
const noAnswerText = "No answer from the node: the change may or may not be applied. "
