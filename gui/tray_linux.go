package gui

import "github.com/godbus/dbus/v5"

// trayAvailable reports whether the desktop shows tray icons: on Linux, a
// StatusNotifierItem watcher on the session bus (what Fyne's tray uses).
func trayAvailable() bool {
	conn, err := dbus.SessionBusPrivate()
	if err != nil {
		return false
	}
	defer conn.Close()
	if conn.Auth(nil) != nil || conn.Hello() != nil {
		return false
	}
	var has bool
	err = conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.kde.StatusNotifierWatcher").Store(&has)
	return err == nil && has
}
