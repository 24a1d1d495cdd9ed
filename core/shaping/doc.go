// Package shaping is the volunteer's budget: how much of a home line Coral
// may use and when. It parses rates and sizes ("2MiB/s", "0", "off"), holds
// the token buckets that cap upload and download, the weekly schedule of
// local-time windows, the monthly quota, the max-min fair share of the
// upload cap between origin sites by weight, and the usage record (bytes
// per 5 minutes, per site and in total) the quota and the status page read.
//
// It knows nothing of libp2p, Badger or Fyne: callers hand it byte counts
// and wrap their own readers, writers and connections with it.
package shaping
