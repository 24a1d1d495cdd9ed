// Package store is Coral's on-disk object cache: whole HTTP responses (meta
// plus body), replaced atomically, streamed to readers from consistent
// snapshots, and held to a disk budget by evicting the least recently used.
//
// Metas, access times and small bodies live in an embedded Badger database
// (dir/meta); larger bodies are plain files (dir/bodies), one per body
// version:
//
//	m/<key>      meta record (format byte + CBOR) naming the body version
//	a/<key>      last access time (8 bytes, Unix nanoseconds), written lazily
//	c/<version>  body of at most inlineMax bytes
//	bodies/<vv>/<version>  any larger body (<vv> = low byte of the version, for fan-out)
//
// Large bodies stay out of Badger because its value log only reclaims space
// after compactions that a value-heavy, delete-heavy cache rarely triggers
// (measured: a 200 MiB budget grew to over 2 GiB on disk), and keeping them
// in the LSM tree instead multiplies writes and memory.
//
// The store keeps its filesystem from filling (Options.MinFreeBytes, see
// space.go): below the watermark it admits no new objects, closer to full it
// writes nothing to Badger, whose memory-mapped files turn ENOSPC into a
// crash, and on a full disk it opens without Badger at all.
//
// A body is written under a fresh version that no meta names; only the final
// Badger transaction points the meta at it. So a crash at any moment leaves
// at worst bodies no meta refers to, which Open deletes. A replaced version
// is deleted once no reader holds it.
//
// A store unused for two minutes closes Badger and reopens it on the next
// use (park.go), so an idle node is not woken by Badger's compactors.
package store

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/coralcdn/coral/core/object"
)

// Errors returned by the store (declared in core/object, so the store's
// users test for them without linking Badger).
var (
	ErrNotFound   = object.ErrNotFound
	ErrIncomplete = object.ErrIncomplete
	ErrTooLarge   = object.ErrTooLarge
)

var errClosed = errors.New("store: closed")

// Options configures a Store.
type Options struct {
	MaxBytes int64            // disk budget; least recently used objects are evicted beyond it (0 = unlimited)
	Logger   *slog.Logger     // nil: slog.Default()
	OnEvict  func(key string) // called (outside locks) after an object is evicted for space (not on Delete)
	// MinFreeBytes is the free space on the store's filesystem below which
	// no new object is stored (Create's Writers fail with ErrDiskFull);
	// below BadgerRoom nothing is written to Badger, and Open runs without
	// the store (see Space). 0: no watermark.
	MinFreeBytes int64
	// FreeBytes reports the free space of the store's filesystem; nil
	// means statfs of the store's directory. Tests plant a fake disk.
	FreeBytes func() (int64, error)
}

// Usage is the store's accounted size.
type Usage struct {
	Bytes    int64 // body bytes (file bodies rounded up to whole disk blocks) plus meta record bytes
	Objects  int
	MaxBytes int64
}

const (
	prefixMeta   = "m/"
	prefixAccess = "a/"
	prefixInline = "c/"

	// cleanMarker exists in the store directory only between a Close and
	// the next Open; without it Open also checks body file sizes, which a
	// power cut (unlike a killed process) can leave short.
	cleanMarker = "CLEAN"

	// inlineMax is the largest body kept inside Badger; larger ones get a
	// file, whose block-sized slack would otherwise dominate small objects.
	inlineMax = 16 << 10
	// diskBlock is what a body file's size is rounded up to in Usage.
	diskBlock = 4 << 10
	// batchOps and batchBytes bound the operations and bytes per Badger
	// transaction, well inside Badger's limit (15 % of the memtable).
	batchOps   = 1000
	batchBytes = 512 << 10

	// accessFlushEvery is how often access times reach disk; each key's
	// a/ record is thus written at most once per interval.
	accessFlushEvery = time.Minute
	// gcEvery is how often the value log is garbage-collected.
	gcEvery = 10 * time.Minute
	// gcRounds bounds the value-log files rewritten per GC run.
	gcRounds = 4
	// spaceEvery is how often free space is checked without any traffic,
	// so the status page follows the disk.
	spaceEvery = 5 * time.Second
)

// entry is the in-memory index record of one stored object: just enough for
// LRU eviction and version bookkeeping, never the meta itself.
type entry struct {
	key   string
	body  bodyRef
	bytes int64  // accounted size: body + meta record
	gen   uint64 // bumped on every meta write, for UpdateMeta's optimistic check
	atime int64  // last access, Unix nanoseconds (strictly increasing store-wide)
	saved int64  // atime last written to a/<key>
	elem  *list.Element

	verified bool  // file body hashed whole by this process (written or read) and found intact
	checked  int64 // when the scrub last hashed it, Unix nanoseconds (0: never)
}

// bodyRef names one stored body version. An empty body is inline with no
// record at all.
type bodyRef struct {
	ver    uint64
	inline bool
	size   int64
}

// Store is a Badger-backed object store. It is safe for concurrent use.
type Store struct {
	db      *badger.DB
	dir     string
	bodies  string // directory of body files
	log     *slog.Logger
	opts    Options
	codec   codec
	lastVer atomic.Uint64
	space   *spaceGuard
	// offline: opened on a full disk, so Badger runs in memory and the
	// store on disk is left untouched; nothing is admitted until restart.
	offline bool

	// wmu serialises every change to meta records, so Badger and the index
	// below change in the same order.
	wmu sync.Mutex

	mu      sync.Mutex // guards the fields below
	index   map[string]*entry
	lru     *list.List // of *entry; front = most recently used
	bytes   int64
	clock   int64
	gen     uint64
	dirty   map[*entry]struct{} // access time newer than its a/ record
	refs    map[uint64]int      // file body version -> open readers
	retired map[uint64]bool     // replaced file bodies kept until their last reader closes

	// The gate keeps Close and parking from closing Badger under a running
	// operation: every database access counts itself in active, and once
	// closing is set none starts. db is nil while parked (park.go).
	gmu           sync.Mutex
	gcond         sync.Cond
	active        int
	closing       bool
	lastUse       time.Time
	parkAfter     time.Duration
	parkTimer     *time.Timer
	now           func() time.Time // the clock parking reads; tests inject one
	reopenFailing bool
	parks         int
	reopens       int

	stop      chan struct{}
	bgDone    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the store in dir, removes whatever an interrupted
// run left half-written, and evicts down to opts.MaxBytes.
func Open(dir string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "store")
	c, err := newCodec()
	if err != nil {
		return nil, err
	}
	bodies := filepath.Join(dir, "bodies")
	if err := os.MkdirAll(bodies, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", bodies, err)
	}
	space := newSpaceGuard(dir, opts, log)
	offline := space.check() >= diskFull
	bopts := badgerOptions(filepath.Join(dir, "meta"), log)
	if offline {
		// Badger writes its new log files through memory mappings as it
		// opens, which on a full disk crashes the process. Leave the store
		// on disk as it is and run with an empty one in memory.
		log.Warn("disk full at start: running without the cache, passing every object through; free some space and restart",
			"dir", dir, "free_bytes", space.last.Load(), "badger_room_bytes", BadgerRoom)
		space.state.Store(int32(diskOffline))
		bopts = bopts.WithDir("").WithValueDir("").WithInMemory(true)
	}
	if !offline {
		if err := checkTables(bopts.Dir, bopts); err != nil {
			return nil, damaged(dir, err)
		}
	}
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, openError(dir, err)
	}
	s := &Store{
		db:      db,
		dir:     dir,
		bodies:  bodies,
		log:     log,
		opts:    opts,
		codec:   c,
		space:   space,
		offline: offline,
		index:   make(map[string]*entry),
		lru:     list.New(),
		dirty:   make(map[*entry]struct{}),
		refs:    make(map[uint64]int),
		retired: make(map[uint64]bool),
		stop:    make(chan struct{}),
		bgDone:  make(chan struct{}),

		parkAfter: defaultParkAfter,
		now:       time.Now,
	}
	s.gcond.L = &s.gmu
	if offline {
		go s.background()
		return s, nil
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.wmu.Lock()
	evicted, drops := s.evictLocked()
	s.wmu.Unlock()
	s.dropBodies(drops)
	s.notifyEvicted(evicted)
	s.gmu.Lock()
	s.lastUse = s.now()
	s.armParkLocked(s.parkAfter)
	s.gmu.Unlock()
	go s.background()
	return s, nil
}

// badgerOptions tunes Badger for a home machine and for what it holds here
// (metas and small bodies): small memtables and caches, two compactors, and
// every value in the LSM tree so compaction alone reclaims space.
//
// A memtable is an arena Badger allocates whole, so its size is resident
// memory from the start: 4 MiB (21 MiB of the heap at 16 MiB, a third of an
// idle node's RSS; issue 17). It still holds hundreds of inline bodies
// (at most inlineMax each) or thousands of metas; the cost is more, smaller
// flushes and level-0 compactions under a stream of new objects.
func badgerOptions(dir string, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log: log}).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(512 << 10). // below the 4 MiB memtable's largest batch (15 %); far above a meta or an inline body
		WithMetricsEnabled(false).
		WithDetectConflicts(false). // writers are serialised by the store itself
		WithSyncWrites(false)       // kill -9 keeps the page cache; only power loss can drop recent commits
}

func metaKey(key string) []byte   { return append([]byte(prefixMeta), key...) }
func accessKey(key string) []byte { return append([]byte(prefixAccess), key...) }

func inlineKey(ver uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixInline), ver)
}

func encodeAccess(t int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t)) }

// accounted is what an object adds to Usage().Bytes.
func accounted(size int64, inline bool, metaLen int) int64 {
	if !inline {
		size = (size + diskBlock - 1) / diskBlock * diskBlock
	}
	return size + int64(metaLen)
}

// decodeFor decodes the meta record stored under key.
func (s *Store) decodeFor(key string, v []byte) (Meta, record, error) {
	m, r, err := s.codec.decode(v)
	if err == nil && r.Key != key {
		err = fmt.Errorf("%w: record names key %q", errCorrupt, r.Key)
	}
	return m, r, err
}

// load rebuilds the index from disk and removes what a crash or an abort left
// behind: bodies no meta refers to, metas whose body is missing, corrupt
// metas, and access records without a meta.
func (s *Store) load() error {
	var (
		entries []*entry
		byVer   = make(map[uint64]*entry)
		present = make(map[uint64]bool)
		garbage [][]byte
		atimes  = make(map[string]int64)
		maxVer  uint64
		orphans int
	)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixMeta), PrefetchValues: true, PrefetchSize: 64})
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := string(item.Key()[len(prefixMeta):])
			var (
				rec  record
				size int
			)
			err := item.Value(func(v []byte) error {
				var err error
				_, rec, err = s.decodeFor(key, v)
				size = len(v)
				return err
			})
			if errors.Is(err, errCorrupt) {
				s.log.Warn("dropping corrupt meta record", "key", key, "err", err)
				garbage = append(garbage, item.KeyCopy(nil), accessKey(key))
				continue
			}
			if err != nil {
				it.Close()
				return err
			}
			e := &entry{
				key:   key,
				body:  bodyRef{ver: rec.Version, inline: rec.Inline, size: rec.Size},
				bytes: accounted(rec.Size, rec.Inline, size),
			}
			entries = append(entries, e)
			byVer[e.body.ver] = e
			maxVer = max(maxVer, e.body.ver)
		}
		it.Close()

		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixAccess), PrefetchValues: true, PrefetchSize: 64})
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := string(item.Key()[len(prefixAccess):])
			err := item.Value(func(v []byte) error {
				if len(v) == 8 {
					atimes[key] = int64(binary.BigEndian.Uint64(v))
				}
				return nil
			})
			if err != nil {
				it.Close()
				return err
			}
		}
		it.Close()

		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixInline)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) == len(prefixInline)+8 {
				ver := binary.BigEndian.Uint64(k[len(prefixInline):])
				maxVer = max(maxVer, ver)
				if e := byVer[ver]; e != nil && e.body.inline {
					present[ver] = true
					continue
				}
			}
			garbage = append(garbage, it.Item().KeyCopy(nil))
			orphans++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: load index: %w", err)
	}

	files, err := s.listBodyFiles()
	if err != nil {
		return err
	}
	marker := filepath.Join(s.dir, cleanMarker)
	clean := os.Remove(marker) == nil
	for _, f := range files {
		maxVer = max(maxVer, f.ver)
		if e := byVer[f.ver]; f.ok && e != nil && !e.body.inline {
			if clean || fileSize(f.path) == e.body.size {
				present[f.ver] = true
				continue
			}
			s.log.Warn("body file has the wrong size after an unclean shutdown", "key", e.key)
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cannot remove stray body file", "path", f.path, "err", err)
			continue
		}
		orphans++
	}
	s.lastVer.Store(maxVer)

	kept := entries[:0]
	for _, e := range entries {
		if e.body.size > 0 && !present[e.body.ver] {
			// The commit order never leaves this; damage does (a power
			// cut, a file deleted by hand). Never serve such a meta.
			s.log.Warn("dropping object whose body is missing", "key", e.key)
			garbage = append(garbage, metaKey(e.key), accessKey(e.key))
			continue
		}
		e.atime = atimes[e.key]
		e.saved = e.atime
		delete(atimes, e.key)
		kept = append(kept, e)
	}
	for key := range atimes {
		garbage = append(garbage, accessKey(key))
	}
	if err := s.deleteKeys(garbage); err != nil {
		return fmt.Errorf("store: clean up: %w", err)
	}

	sort.SliceStable(kept, func(i, j int) bool { return kept[i].atime < kept[j].atime })
	for _, e := range kept {
		s.gen++
		e.gen = s.gen
		e.elem = s.lru.PushFront(e)
		s.index[e.key] = e
		s.bytes += e.bytes
		s.clock = max(s.clock, e.atime)
	}
	s.log.Debug("store opened", "objects", len(kept), "bytes", s.bytes, "orphans_removed", orphans)
	return nil
}

// batchLen is how many of the next n operations, the i-th of size(i)
// bytes, go into one transaction.
func batchLen(n int, size func(i int) int) int {
	total := 0
	for i := range n {
		total += size(i) + 32 // plus Badger's per-entry overhead, roughly
		if i > 0 && (i >= batchOps || total > batchBytes) {
			return i
		}
	}
	return n
}

// deleteKeys deletes keys in bounded transactions.
func (s *Store) deleteKeys(keys [][]byte) error {
	for len(keys) > 0 {
		n := batchLen(len(keys), func(i int) int { return len(keys[i]) })
		batch := keys[:n]
		keys = keys[n:]
		err := s.update(func(txn *badger.Txn) error {
			for _, k := range batch {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// dropBodies deletes body versions nobody refers to any more. Failures only
// leave orphans, which the next Open removes.
func (s *Store) dropBodies(refs []bodyRef) {
	var keys [][]byte
	for _, r := range refs {
		if r.inline {
			if r.size > 0 {
				keys = append(keys, inlineKey(r.ver))
			}
			continue
		}
		if err := os.Remove(s.bodyPath(r.ver)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Debug("removing body file failed; Open will retry", "version", r.ver, "err", err)
		}
	}
	if err := s.deleteKeys(keys); err != nil {
		s.log.Debug("deleting inline bodies failed; Open will retry", "err", err)
	}
}

// tickLocked returns a fresh access time, strictly increasing so the LRU
// order survives a restart even when the clock is coarse.
func (s *Store) tickLocked() int64 {
	now := time.Now().UnixNano()
	if now <= s.clock {
		now = s.clock + 1
	}
	s.clock = now
	return now
}

func (s *Store) touchLocked(e *entry) {
	e.atime = s.tickLocked()
	s.lru.MoveToFront(e.elem)
	s.dirty[e] = struct{}{}
}

// unindexLocked forgets e and returns its body if no reader still needs it.
func (s *Store) unindexLocked(e *entry) (bodyRef, bool) {
	delete(s.index, e.key)
	delete(s.dirty, e)
	s.lru.Remove(e.elem)
	s.bytes -= e.bytes
	if !e.body.inline && s.refs[e.body.ver] > 0 {
		s.retired[e.body.ver] = true
		return bodyRef{}, false
	}
	return e.body, true
}

// unref drops a reader's hold on a file body.
func (s *Store) unref(ver uint64) {
	s.mu.Lock()
	s.refs[ver]--
	drop := false
	if s.refs[ver] <= 0 {
		delete(s.refs, ver)
		drop = s.retired[ver]
		delete(s.retired, ver)
	}
	s.mu.Unlock()
	if drop {
		s.dropBodies([]bodyRef{{ver: ver, size: 1}})
	}
}

// removeLocked deletes the records of victims and unindexes them. wmu must
// be held.
func (s *Store) removeLocked(victims []*entry) ([]bodyRef, error) {
	keys := make([][]byte, 0, 2*len(victims))
	for _, e := range victims {
		keys = append(keys, metaKey(e.key), accessKey(e.key))
	}
	if err := s.deleteKeys(keys); err != nil {
		return nil, err
	}
	var drops []bodyRef
	s.mu.Lock()
	for _, e := range victims {
		if s.index[e.key] == e {
			if r, ok := s.unindexLocked(e); ok {
				drops = append(drops, r)
			}
		}
	}
	s.mu.Unlock()
	return drops, nil
}

// evictLocked removes least recently used objects until the store is within
// its budget. wmu must be held; the caller drops the bodies and notifies
// OnEvict after releasing it.
func (s *Store) evictLocked() ([]string, []bodyRef) {
	if s.opts.MaxBytes <= 0 {
		return nil, nil
	}
	var victims []*entry
	s.mu.Lock()
	over := s.bytes - s.opts.MaxBytes
	for el := s.lru.Back(); el != nil && over > 0; el = el.Prev() {
		e := el.Value.(*entry)
		victims = append(victims, e)
		over -= e.bytes
	}
	s.mu.Unlock()
	if len(victims) == 0 {
		return nil, nil
	}
	drops, err := s.removeLocked(victims)
	if err != nil {
		s.log.Warn("eviction failed", "err", err)
		return nil, nil
	}
	keys := make([]string, len(victims))
	for i, e := range victims {
		keys[i] = e.key
	}
	s.log.Debug("evicted for space", "objects", len(keys))
	return keys, drops
}

func (s *Store) notifyEvicted(keys []string) {
	if s.opts.OnEvict == nil {
		return
	}
	for _, k := range keys {
		s.opts.OnEvict(k)
	}
}

// install makes body (already in its file, or given as inline) the body of
// key, in one transaction with its meta record rec.
func (s *Store) install(key string, body bodyRef, rec []byte, inline []byte) error {
	s.wmu.Lock()
	s.mu.Lock()
	atime := s.tickLocked()
	old := s.index[key] // stable while wmu is held
	s.mu.Unlock()
	// An old inline body has no readers (they copy it), so it goes in the
	// same transaction.
	oldInline := old != nil && old.body.inline && old.body.size > 0
	err := s.update(func(txn *badger.Txn) error {
		if oldInline {
			if err := txn.Delete(inlineKey(old.body.ver)); err != nil {
				return err
			}
		}
		if len(inline) > 0 {
			if err := txn.Set(inlineKey(body.ver), inline); err != nil {
				return err
			}
		}
		if err := txn.Set(metaKey(key), rec); err != nil {
			return err
		}
		return txn.Set(accessKey(key), encodeAccess(atime))
	})
	if err != nil {
		s.wmu.Unlock()
		return fmt.Errorf("store: commit %q: %w", key, err)
	}
	var drops []bodyRef
	s.mu.Lock()
	if old != nil {
		if r, ok := s.unindexLocked(old); ok && !oldInline {
			drops = append(drops, r)
		}
	}
	s.gen++
	e := &entry{
		key:   key,
		body:  body,
		bytes: accounted(body.size, body.inline, len(rec)),
		gen:   s.gen,
		atime: atime,
		saved: atime,
	}
	e.elem = s.lru.PushFront(e)
	s.index[key] = e
	s.bytes += e.bytes
	s.mu.Unlock()
	evicted, more := s.evictLocked()
	s.wmu.Unlock()
	s.dropBodies(append(drops, more...))
	s.notifyEvicted(evicted)
	return nil
}

// readMeta reads the current meta record of key, dropping it if corrupt.
func (s *Store) readMeta(key string) (Meta, record, error) {
	m, rec, err := s.readMetaRaw(key)
	switch {
	case err == nil:
		return m, rec, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return Meta{}, record{}, ErrNotFound
	case errors.Is(err, errCorrupt):
		s.dropBroken(key, 0, err)
		return Meta{}, record{}, ErrNotFound
	default:
		return Meta{}, record{}, fmt.Errorf("store: read meta %q: %w", key, err)
	}
}

func (s *Store) readMetaRaw(key string) (Meta, record, error) {
	return s.readMetaWith(s.view, key)
}

// readMetaWith reads key's meta record through view (the gate's, or an
// already entered database's).
func (s *Store) readMetaWith(view func(func(*badger.Txn) error) error, key string) (Meta, record, error) {
	var (
		m   Meta
		rec record
	)
	err := view(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey(key))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			var err error
			m, rec, err = s.decodeFor(key, v)
			return err
		})
	})
	return m, rec, err
}

// dropBroken removes key because its stored data cannot be trusted. ver 0
// means the meta record itself failed to decode; otherwise only body version
// ver is condemned, so a concurrent replacement survives.
func (s *Store) dropBroken(key string, ver uint64, cause error) {
	s.wmu.Lock()
	if ver == 0 {
		if _, _, err := s.readMetaRaw(key); !errors.Is(err, errCorrupt) {
			s.wmu.Unlock()
			return
		}
	}
	s.mu.Lock()
	e := s.index[key]
	s.mu.Unlock()
	if ver != 0 && (e == nil || e.body.ver != ver) {
		s.wmu.Unlock()
		return
	}
	s.log.Warn("dropping corrupt object", "key", key, "err", cause)
	var (
		drops []bodyRef
		err   error
	)
	if e != nil {
		drops, err = s.removeLocked([]*entry{e})
	} else {
		err = s.deleteKeys([][]byte{metaKey(key), accessKey(key)})
	}
	s.wmu.Unlock()
	if err != nil {
		s.log.Warn("dropping corrupt object failed", "key", key, "err", err)
	}
	s.dropBodies(drops)
}

// Stat returns the meta of key without counting as an access.
func (s *Store) Stat(key string) (Meta, error) {
	m, _, err := s.readMeta(key)
	return m, err
}

// UpdateMeta atomically replaces the meta of key (not its body) with what fn
// makes of it, e.g. merging the headers of a 304. fn runs outside the store's
// locks and may run more than once if key changes concurrently; Key, Size
// and SHA256 stay tied to the body whatever fn does. An error from fn is
// returned unchanged and nothing is written.
func (s *Store) UpdateMeta(key string, fn func(*Meta) error) error {
	for {
		s.mu.Lock()
		e := s.index[key]
		var gen uint64
		if e != nil {
			gen = e.gen
		}
		s.mu.Unlock()
		m, rec, err := s.readMeta(key)
		if err != nil {
			return err
		}
		if e == nil {
			return ErrNotFound
		}
		if err := fn(&m); err != nil {
			return err
		}
		m.Key, m.Size = key, rec.Size
		copy(m.SHA256[:], rec.SHA256)
		b, err := s.codec.encode(m, rec.Version, rec.Inline)
		if err != nil {
			return err
		}

		s.wmu.Lock()
		s.mu.Lock()
		cur := s.index[key]
		s.mu.Unlock()
		if cur == nil {
			s.wmu.Unlock()
			return ErrNotFound
		}
		if cur.gen != gen || cur.body.ver != rec.Version {
			s.wmu.Unlock()
			continue // changed since we read it: apply fn to the new meta
		}
		if err := s.update(func(txn *badger.Txn) error { return txn.Set(metaKey(key), b) }); err != nil {
			s.wmu.Unlock()
			return fmt.Errorf("store: update meta %q: %w", key, err)
		}
		s.mu.Lock()
		nb := accounted(rec.Size, rec.Inline, len(b))
		s.bytes += nb - cur.bytes
		cur.bytes = nb
		s.gen++
		cur.gen = s.gen
		s.mu.Unlock()
		evicted, drops := s.evictLocked()
		s.wmu.Unlock()
		s.dropBodies(drops)
		s.notifyEvicted(evicted)
		return nil
	}
}

// Delete removes key. Deleting a missing key is not an error. Readers that
// already hold the body keep reading it.
func (s *Store) Delete(key string) error {
	if _, err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	s.wmu.Lock()
	s.mu.Lock()
	e := s.index[key]
	s.mu.Unlock()
	if e == nil {
		s.wmu.Unlock()
		return nil
	}
	drops, err := s.removeLocked([]*entry{e})
	s.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("store: delete %q: %w", key, err)
	}
	s.dropBodies(drops)
	return nil
}

// Each calls fn with the meta of every stored object, in key order, until fn
// returns false. fn may call other Store methods, but not Close.
func (s *Store) Each(fn func(Meta) bool) error {
	var broken []string
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixMeta), PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := string(item.Key()[len(prefixMeta):])
			var m Meta
			err := item.Value(func(v []byte) error {
				var err error
				m, _, err = s.decodeFor(key, v)
				return err
			})
			if errors.Is(err, errCorrupt) {
				broken = append(broken, key)
				continue
			}
			if err != nil {
				return err
			}
			if !fn(m) {
				return nil
			}
		}
		return nil
	})
	for _, key := range broken {
		s.dropBroken(key, 0, errCorrupt)
	}
	if err != nil {
		return fmt.Errorf("store: iterate: %w", err)
	}
	return nil
}

// Usage reports the accounted size of the store.
func (s *Store) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Usage{Bytes: s.bytes, Objects: len(s.index), MaxBytes: s.opts.MaxBytes}
}

// Space reports the free space of the store's filesystem as last checked
// and whether new objects are being stored.
func (s *Store) Space() Space { return s.space.space() }

// Admit returns ErrDiskFull when a new object would not be stored now (the
// disk is below the watermark); the proxy then passes the object through
// without spooling it to disk either.
func (s *Store) Admit() error { return s.space.admit() }

// flushAccess writes the access times that changed since they were last
// written, so the LRU order survives a restart.
func (s *Store) flushAccess() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.writeAccess(s.update)
}

// writeAccess writes the changed access times through update; the caller
// holds wmu. With none changed it does not touch (or reopen) the database.
func (s *Store) writeAccess(update func(func(*badger.Txn) error) error) {
	type rec struct {
		key   string
		atime int64
	}
	s.mu.Lock()
	recs := make([]rec, 0, len(s.dirty))
	for e := range s.dirty {
		if e.atime != e.saved {
			recs = append(recs, rec{e.key, e.atime})
			e.saved = e.atime
		}
	}
	clear(s.dirty)
	s.mu.Unlock()
	for len(recs) > 0 {
		n := batchLen(len(recs), func(i int) int { return len(prefixAccess) + len(recs[i].key) + 8 })
		batch := recs[:n]
		recs = recs[n:]
		err := update(func(txn *badger.Txn) error {
			for _, r := range batch {
				if err := txn.Set(accessKey(r.key), encodeAccess(r.atime)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.log.Debug("saving access times failed", "err", err)
			return
		}
	}
}

// background saves access times, garbage-collects the value log and scrubs
// file bodies until Close.
func (s *Store) background() {
	defer close(s.bgDone)
	flush := time.NewTicker(accessFlushEvery)
	defer flush.Stop()
	gc := time.NewTicker(gcEvery)
	defer gc.Stop()
	scrub := time.NewTicker(scrubEvery)
	defer scrub.Stop()
	space := time.NewTicker(spaceEvery)
	defer space.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-flush.C:
			s.flushAccess()
		case <-gc.C:
			s.runGC()
		case <-scrub.C:
			s.Scrub(scrubBytes)
		case <-space.C:
			s.space.check()
		}
	}
}

// runGC rewrites at most a few value-log files that are mostly garbage.
// Values normally stay in the LSM tree, so this rarely finds work.
func (s *Store) runGC() {
	for range gcRounds {
		select {
		case <-s.stop:
			return
		default:
		}
		if s.space.writable() != nil {
			return // rewriting needs room first
		}
		db, ok := s.enterIfOpen() // only while open: GC never wakes a parked store
		if !ok {
			return
		}
		err := db.RunValueLogGC(0.5)
		s.leave()
		if err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.Debug("value log GC failed", "err", err)
			}
			return
		}
	}
}

// Close saves access times and closes the database, after waiting for
// operations in progress. Afterwards every method and Writer fails; Bodies
// opened before remain readable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.bgDone
		s.flushAccess()
		s.gmu.Lock()
		s.closing = true
		for s.active > 0 {
			s.gcond.Wait()
		}
		if s.parkTimer != nil {
			s.parkTimer.Stop()
		}
		db := s.db
		s.db = nil
		s.gmu.Unlock()
		if db == nil {
			s.writeCleanMarker() // parked: Badger was closed cleanly
			return
		}
		if !s.offline && !s.space.roomToFlush(filepath.Join(s.dir, "meta")) {
			// Closing flushes the memtable into a new table through a
			// memory mapping: on a full disk, a crash. Leave the log for
			// the next Open to replay (it opens Badger only with room).
			s.log.Warn("disk full: leaving the store's log unflushed; it is replayed at the next start")
			return
		}
		if err := db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
			return
		}
		if s.offline {
			return // the store on disk was never opened
		}
		s.writeCleanMarker()
	})
	return s.closeErr
}

func (s *Store) writeCleanMarker() {
	if err := os.WriteFile(filepath.Join(s.dir, cleanMarker), nil, 0o600); err != nil {
		s.log.Debug("writing clean marker failed", "err", err)
	}
}

// SetMaxBytes changes the disk budget while the store is open (0 =
// unlimited) and evicts down to it at once, so a smaller cache size set in
// the settings frees the space without a restart.
func (s *Store) SetMaxBytes(n int64) {
	s.wmu.Lock()
	s.mu.Lock()
	s.opts.MaxBytes = n
	s.mu.Unlock()
	evicted, drops := s.evictLocked()
	s.wmu.Unlock()
	s.dropBodies(drops)
	s.notifyEvicted(evicted)
}

// openError says what to do when Badger does not open. A store in use by
// another process, not readable for this user, or on a disk with no room is
// not damaged and is left alone; anything else is damage (a truncated or
// overwritten file), and the way back is an empty cache, refilled from the
// origins. The node's identity, network key and settings live outside dir.
func openError(dir string, err error) error {
	// Badger's lock error does not wrap the errno: its text is matched.
	inUse := strings.Contains(err.Error(), "Another process is using")
	if inUse || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("store: open %s: %w", dir, err)
	}
	return damaged(dir, err)
}

// damaged is the error for a store whose files are damaged, with the way back.
func damaged(dir string, err error) error {
	return fmt.Errorf("store: the cache in %s is damaged (%w): move %s aside (or delete it) and start again "+
		"with an empty cache, refilled from the origins; the node's identity, network key and settings are kept", dir, err, dir)
}
