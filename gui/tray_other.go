//go:build !linux

package gui

// trayAvailable: macOS and Windows always have a tray (menu bar, notification area).
func trayAvailable() bool { return true }
