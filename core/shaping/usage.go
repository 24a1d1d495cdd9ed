package shaping

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// BucketSize is the width of one usage bucket.
const BucketSize = 5 * time.Minute

// Retention is how long buckets are kept: a whole month (31 days) of quota
// period plus margin.
const Retention = 35 * 24 * time.Hour

// maxSites bounds the sites tracked separately; the rest count as
// OtherSite so a stranger inventing host names cannot grow the record.
const maxSites = 512

// OtherSite collects the traffic of sites beyond maxSites.
const OtherSite = "(other)"

// Counts are bytes sent and received.
type Counts struct {
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
}

func (c *Counts) add(o Counts) { c.Sent += o.Sent; c.Received += o.Received }

// Usage is the record of bytes per 5-minute bucket, per site and in total.
// It is safe for concurrent use and saved to its file by Flush.
type Usage struct {
	mu    sync.Mutex
	path  string
	total map[int64]*Counts            // bucket start (unix s) → counts
	sites map[string]map[int64]*Counts // site → bucket → counts
	dirty bool
}

type usageFile struct {
	Version int                         `json:"version"`
	Total   map[int64]Counts            `json:"total"`
	Sites   map[string]map[int64]Counts `json:"sites"`
}

// OpenUsage loads the record at path ("" keeps it in memory only). A
// missing file is an empty record; a damaged one is an error naming it.
func OpenUsage(path string) (*Usage, error) {
	u := &Usage{path: path, total: map[int64]*Counts{}, sites: map[string]map[int64]*Counts{}}
	if path == "" {
		return u, nil
	}
	removeStaleTemps(path)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("shaping: usage: %w", err)
	}
	var f usageFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("shaping: usage file %s is damaged (move it away to start counting afresh): %w", path, err)
	}
	for k, c := range f.Total {
		u.total[k] = &Counts{c.Sent, c.Received}
	}
	for site, m := range f.Sites {
		u.sites[site] = map[int64]*Counts{}
		for k, c := range m {
			u.sites[site][k] = &Counts{c.Sent, c.Received}
		}
	}
	return u, nil
}

func bucketOf(t time.Time) int64 { return t.Unix() - t.Unix()%int64(BucketSize/time.Second) }

// Add counts bytes of site at time t ("" site: traffic of no origin site,
// such as DSHT and DNS messages, counted in the total only).
func (u *Usage) Add(t time.Time, site string, c Counts) {
	if c == (Counts{}) {
		return
	}
	b := bucketOf(t)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.dirty = true
	addTo(u.total, b, c)
	if site == "" {
		return
	}
	m := u.sites[site]
	if m == nil {
		if len(u.sites) >= maxSites {
			site = OtherSite
			m = u.sites[site]
		}
		if m == nil {
			m = map[int64]*Counts{}
			u.sites[site] = m
		}
	}
	addTo(m, b, c)
}

func addTo(m map[int64]*Counts, b int64, c Counts) {
	if m[b] == nil {
		m[b] = &Counts{}
	}
	m[b].add(c)
}

// SentSince sums the bytes sent from since on, in total.
func (u *Usage) SentSince(since time.Time) int64 {
	from := bucketOf(since)
	u.mu.Lock()
	defer u.mu.Unlock()
	var n int64
	for b, c := range u.total {
		if b >= from {
			n += c.Sent
		}
	}
	return n
}

// Bucket is one 5-minute bucket of a series.
type Bucket struct {
	Start time.Time `json:"start"`
	Counts
}

// Series returns the buckets of site ("" for the total) from since on,
// oldest first; empty buckets are left out.
func (u *Usage) Series(site string, since time.Time) []Bucket {
	from := bucketOf(since)
	u.mu.Lock()
	defer u.mu.Unlock()
	m := u.total
	if site != "" {
		m = u.sites[site]
	}
	out := []Bucket{}
	for b, c := range m {
		if b >= from {
			out = append(out, Bucket{Start: time.Unix(b, 0).UTC(), Counts: *c})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// SiteTotals sums each site's traffic from since on.
func (u *Usage) SiteTotals(since time.Time) map[string]Counts {
	from := bucketOf(since)
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]Counts{}
	for site, m := range u.sites {
		var sum Counts
		for b, c := range m {
			if b >= from {
				sum.add(*c)
			}
		}
		if sum != (Counts{}) {
			out[site] = sum
		}
	}
	return out
}

// Flush drops buckets older than Retention and writes the record to its
// file atomically (a crash leaves the old or the new file, never half).
func (u *Usage) Flush(now time.Time) error {
	u.mu.Lock()
	cut := bucketOf(now.Add(-Retention))
	prune(u.total, cut)
	for site, m := range u.sites {
		if prune(m, cut); len(m) == 0 {
			delete(u.sites, site)
		}
	}
	if u.path == "" || !u.dirty {
		u.mu.Unlock()
		return nil
	}
	f := usageFile{Version: 1, Total: flat(u.total), Sites: map[string]map[int64]Counts{}}
	for site, m := range u.sites {
		f.Sites[site] = flat(m)
	}
	u.dirty = false
	u.mu.Unlock()
	b, err := json.Marshal(f)
	if err != nil {
		err = fmt.Errorf("shaping: usage: %w", err)
	} else {
		err = writeAtomic(u.path, b)
	}
	if err != nil {
		// Not saved (a full disk): the next flush tries again, even if no
		// traffic comes in between, or these counts die with the process.
		u.mu.Lock()
		u.dirty = true
		u.mu.Unlock()
	}
	return err
}

func prune(m map[int64]*Counts, cut int64) {
	for b := range m {
		if b < cut {
			delete(m, b)
		}
	}
}

func flat(m map[int64]*Counts) map[int64]Counts {
	out := make(map[int64]Counts, len(m))
	for k, c := range m {
		out[k] = *c
	}
	return out
}

// removeStaleTemps deletes the temporary files of saves a crash cut short
// (writeAtomic's, named after path): each is as large as the record, and
// nothing else would ever remove them.
func removeStaleTemps(path string) {
	stale, _ := filepath.Glob(path + ".tmp*")
	for _, f := range stale {
		_ = os.Remove(f)
	}
}

// writeAtomic writes b to path through a temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("shaping: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("shaping: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("shaping: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("shaping: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("shaping: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("shaping: %w", err)
	}
	return nil
}
