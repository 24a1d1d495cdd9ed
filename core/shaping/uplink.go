package shaping

import "context"

// Senders that count what they actually wrote (a visitor's connection:
// a write may end early) hold bytes back with Allow and count them with
// CountSent; Send does both at once.

// Allow waits until n bytes of site may be sent under the upload cap,
// in the sites' fair shares, without counting them.
func (b *Budget) Allow(ctx context.Context, site string, n int) error {
	return b.up.Wait(ctx, site, n)
}

// UploadCapped says whether Allow and Send may hold bytes back now: the
// upload shaper has a cap (the one in force, or the base cap transfers
// finish under during an "off" window). A sender that bypasses them for
// speed (sendfile) checks it again between chunks.
func (b *Budget) UploadCapped() bool { return b.up.capped.Load() }
