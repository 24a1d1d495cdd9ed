package gui

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/go-gl/glfw/v3.3/glfw"
)

// ErrNoDisplay says why no window can be opened; its message is one line
// fit for a volunteer's terminal.
var ErrNoDisplay = errors.New("no usable display")

var probe struct {
	once sync.Once
	err  error
}

// CheckDisplay reports whether a window can be opened, and if not, why, as
// an error wrapping ErrNoDisplay. It asks GLFW, the library Fyne opens its
// windows with, so that a display that is set but dead (DISPLAY naming a
// stopped X server, an SSH session without forwarding) is found here
// rather than by a panic inside Fyne. Call it from the main goroutine:
// GLFW must be initialised on the main thread, which Fyne's driver locks.
func CheckDisplay() error {
	probe.once.Do(func() { probe.err = checkDisplay() })
	return probe.err
}

func checkDisplay() error {
	if runtime.GOOS == "linux" || strings.HasSuffix(runtime.GOOS, "bsd") {
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return fmt.Errorf("%w: neither DISPLAY nor WAYLAND_DISPLAY is set", ErrNoDisplay)
		}
	}
	// go-gl's glfw.Init logs a platform error through the standard logger
	// and returns nil; the next call then panics with NotInitialized.
	// Capture the log line to say why, and turn the panic into an answer.
	var logged bytes.Buffer
	prevOut, prevFlags := log.Writer(), log.Flags()
	log.SetOutput(&logged)
	log.SetFlags(0)
	defer func() {
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
	}()
	initErr := glfw.Init()
	if err := initialised(); err != nil || initErr != nil {
		why := strings.TrimSpace(logged.String())
		if initErr != nil {
			why = initErr.Error()
		}
		if why == "" {
			why = fmt.Sprint(err)
		}
		return fmt.Errorf("%w: %s (DISPLAY=%q)", ErrNoDisplay, oneLine(why), os.Getenv("DISPLAY"))
	}
	return nil
}

// initialised asks GLFW something only an initialised GLFW answers.
func initialised() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	glfw.GetTime()
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
