// Package disk tests a real `coral serve` process whose data directory is on
// a small filesystem (a tmpfs mounted by the test, so it needs root): the
// node fills it through real HTTP requests to a local origin, stops storing
// at its free-space watermark while visitors keep getting complete bodies,
// survives the rest of the disk being filled by someone else, shuts down
// and restarts on the full disk (passing everything through), and finds
// every object it had stored once there is room again.
package disk
