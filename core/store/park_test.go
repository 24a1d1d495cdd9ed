package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mustPark parks s now, whatever its idle time.
func mustPark(t testing.TB, s *Store) {
	t.Helper()
	if !s.park(true) {
		t.Fatal("park: the store did not park")
	}
	if parked, _, _ := s.parkState(); !parked {
		t.Fatal("park reported parking but the database is open")
	}
}

func assertParked(t testing.TB, s *Store, want bool) {
	t.Helper()
	if parked, _, _ := s.parkState(); parked != want {
		t.Fatalf("parked = %v, want %v", parked, want)
	}
}

// Everything written before parking is there after the reopen, and after a
// Close of the parked store and a fresh Open.
func TestParkKeepsData(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	sizes := map[string]int{"empty": 0, "small": 100, "inline": inlineMax, "file": inlineMax + 1, "large": 3*unit + 17}
	for key, size := range sizes {
		put(t, s, key, body(key, 1, size), Meta{Status: 200})
	}
	put(t, s, "gone", body("gone", 1, unit), Meta{Status: 200})
	if err := s.UpdateMeta("file", func(m *Meta) error { m.Extra = map[string]string{"revalidated": "1"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("gone"); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		for key, size := range sizes {
			m := mustGet(t, s, key, body(key, 1, size))
			if key == "file" && m.Extra["revalidated"] != "1" {
				t.Fatalf("meta update lost over parking: %+v", m)
			}
		}
		mustMissing(t, s, "gone")
		if u := s.Usage(); u.Objects != len(sizes) {
			t.Fatalf("Usage().Objects = %d, want %d", u.Objects, len(sizes))
		}
	}
	for round := range 3 {
		mustPark(t, s)
		check(s) // reopens
		if _, _, reopens := s.parkState(); reopens != round+1 {
			t.Fatalf("reopens = %d after %d parks", reopens, round+1)
		}
	}
	assertNoOrphans(t, s)

	// Parked, then closed: Close succeeds and leaves a clean store.
	mustPark(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close of a parked store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarker)); err != nil {
		t.Fatalf("Close of a parked store left no clean marker: %v", err)
	}
	if _, err := s.Stat("small"); !errors.Is(err, errClosed) {
		t.Fatalf("Stat after Close: err = %v, want errClosed (no reopen after Close)", err)
	}
	check(openStore(t, dir, Options{}))
}

// Parking waits until the store was unused for parkAfter (injected clock).
func TestParkOnlyWhenIdle(t *testing.T) {
	cases := []struct {
		name string
		idle time.Duration
		want bool
	}{
		{"just used", 0, false},
		{"idle a little less", defaultParkAfter - time.Second, false},
		{"idle exactly", defaultParkAfter, true},
		{"idle long", time.Hour, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), Options{})
			clock := time.Unix(1_000_000, 0)
			s.gmu.Lock()
			s.now = func() time.Time { return clock }
			s.gmu.Unlock()
			put(t, s, "k", body("k", 1, 100), Meta{})
			clock = clock.Add(c.idle)
			if got := s.park(false); got != c.want {
				t.Fatalf("park after %v idle = %v, want %v", c.idle, got, c.want)
			}
			assertParked(t, s, c.want)
			mustGet(t, s, "k", body("k", 1, 100))
		})
	}
}

// The real timer parks an idle store, and parks it again after a reopen.
func TestParkTimer(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	put(t, s, "k", body("k", 1, 2*unit), Meta{})
	s.setParkAfter(20 * time.Millisecond)
	waitParked := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if parked, _, _ := s.parkState(); parked {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the idle store did not park within 20 s")
			}
			time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
		}
	}
	waitParked()
	mustGet(t, s, "k", body("k", 1, 2*unit))
	waitParked()
	if _, parks, reopens := s.parkState(); parks < 2 || reopens < 1 {
		t.Fatalf("parks = %d, reopens = %d", parks, reopens)
	}
}

// Background work leaves a parked store parked: the scrub, value-log GC and
// an access-time flush with nothing to write.
func TestBackgroundLeavesParked(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	for i := range 4 {
		put(t, s, fmt.Sprint("f", i), body("f", i, 2*unit), Meta{})
	}
	mustGet(t, s, "f0", body("f", 0, 2*unit)) // an access time to save at parking
	mustPark(t, s)
	if checked, dropped := s.Scrub(1 << 30); checked != 0 || dropped != 0 {
		t.Fatalf("Scrub of a parked store checked %d, dropped %d", checked, dropped)
	}
	s.runGC()
	s.flushAccess()
	s.space.check()
	_ = s.Usage()
	_ = s.Space()
	assertParked(t, s, true)
	if _, _, reopens := s.parkState(); reopens != 0 {
		t.Fatalf("background work reopened the store %d times", reopens)
	}
	// Once traffic reopens it, the scrub resumes.
	mustGet(t, s, "f1", body("f", 1, 2*unit))
	if checked, _ := s.Scrub(1 << 30); checked != 4 {
		t.Fatalf("Scrub after the reopen checked %d of 4", checked)
	}
}

// A reopen that fails returns a clear error to the operation, crashes
// nothing, and the next operation after the fault is fixed works.
func TestParkReopenFails(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(meta, aside string) error
	}{
		{"directory removed", func(meta, aside string) error { return os.Rename(meta, aside) }},
		{"directory replaced by a file", func(meta, aside string) error {
			if err := os.Rename(meta, aside); err != nil {
				return err
			}
			return os.WriteFile(meta, []byte("not a database"), 0o600)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			data := body("k", 1, 2*unit)
			put(t, s, "k", data, Meta{})
			mustPark(t, s)
			meta, aside := filepath.Join(dir, "meta"), filepath.Join(dir, "meta-aside")
			if err := c.spoil(meta, aside); err != nil {
				t.Fatal(err)
			}
			for range 2 { // every operation tries again
				_, _, err := s.Get("k")
				if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "cannot reopen the cache database") {
					t.Fatalf("Get with the database gone: err = %v, want the reopen failure", err)
				}
			}
			w := s.Create("new", 0)
			_, werr := w.Write([]byte("x"))
			if werr == nil {
				t.Fatal("Write with the database gone succeeded")
			}
			w.Abort()
			if s.Usage().Objects != 1 {
				t.Fatalf("Usage changed by failed operations: %+v", s.Usage())
			}
			if err := os.RemoveAll(meta); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(aside, meta); err != nil {
				t.Fatal(err)
			}
			mustGet(t, s, "k", data)
			put(t, s, "new", body("new", 1, 10), Meta{})
			mustGet(t, s, "new", body("new", 1, 10))
		})
	}
}

// Gets, Creates, UpdateMetas and Deletes run while the store parks and
// reopens over and over; none sees a closed database and nothing is lost
// (run with -race).
func TestParkConcurrent(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	const workers, rounds = 4, 60
	state := make([]map[string]int, workers) // key -> generation; 0: deleted
	var stop atomic.Bool
	var parks atomic.Int64
	var parker sync.WaitGroup
	parker.Add(1)
	go func() {
		defer parker.Done()
		for !stop.Load() {
			if s.park(true) {
				parks.Add(1)
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		state[w] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- parkWorker(s, w, rounds, state[w])
		}()
	}
	wg.Wait()
	stop.Store(true)
	parker.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if parks.Load() < 5 {
		t.Fatalf("only %d parks happened during the run; the test did not exercise parking", parks.Load())
	}
	t.Logf("%d parks during %d operations", parks.Load(), workers*rounds*4)
	verify := func(s *Store) {
		t.Helper()
		for w := range workers {
			for key, gen := range state[w] {
				if gen == 0 {
					mustMissing(t, s, key)
				} else {
					mustGet(t, s, key, body(key, gen, parkBodySize(gen)))
				}
			}
		}
	}
	verify(s)
	assertNoOrphans(t, s)
	mustPark(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	verify(openStore(t, dir, Options{}))
}

func parkBodySize(gen int) int { return []int{0, 10, 3000, inlineMax + 1, 2 * unit}[gen%5] }

// parkWorker replaces, reads, updates and deletes its own keys, recording
// in state what each key should hold.
func parkWorker(s *Store, w, rounds int, state map[string]int) error {
	for i := 1; i <= rounds; i++ {
		key := fmt.Sprintf("w%d-k%d", w, i%5)
		data := body(key, i, parkBodySize(i))
		wr := s.Create(key, 0)
		if _, err := wr.Write(data); err != nil {
			return fmt.Errorf("Write %s: %w", key, err)
		}
		if _, err := wr.Commit(Meta{Status: 200, Size: int64(len(data))}); err != nil {
			return fmt.Errorf("Commit %s: %w", key, err)
		}
		state[key] = i
		m, b, err := s.Get(key)
		if err != nil {
			return fmt.Errorf("Get %s: %w", key, err)
		}
		b.Close()
		if m.Size != int64(len(data)) {
			return fmt.Errorf("Get %s: size %d, want %d", key, m.Size, len(data))
		}
		if err := s.UpdateMeta(key, func(m *Meta) error { m.Status = 203; return nil }); err != nil {
			return fmt.Errorf("UpdateMeta %s: %w", key, err)
		}
		if i%7 == 0 {
			if err := s.Delete(key); err != nil {
				return fmt.Errorf("Delete %s: %w", key, err)
			}
			state[key] = 0
		}
	}
	return nil
}

// parkChildEnv makes the test binary, re-executed by TestParkedKill, write
// objects into the store in the directory it names, park, say so and wait
// to be killed.
const parkChildEnv = "CORAL_STORE_PARK_CHILD"

func TestParkChild(t *testing.T) {
	dir := os.Getenv(parkChildEnv)
	if dir == "" {
		t.Skip("helper process for TestParkedKill")
	}
	s, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	for i, size := range parkKillSizes {
		key := fmt.Sprint("k", i)
		put(t, s, key, body(key, 1, size), Meta{Status: 200})
	}
	if err := s.UpdateMeta("k1", func(m *Meta) error { m.Status = 203; return nil }); err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	if !s.park(true) {
		fmt.Println("ERR did not park")
		os.Exit(2)
	}
	fmt.Println("PARKED")
	select {} // until killed
}

var parkKillSizes = []int{0, 100, inlineMax, inlineMax + 1, 3 * unit}

// A store killed (SIGKILL) while parked loses nothing.
func TestParkedKill(t *testing.T) {
	if os.Getenv(parkChildEnv) != "" {
		t.Skip("running as the child")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(exe, "-test.run=^TestParkChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), parkChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "PARKED" {
		t.Fatalf("child said %q (%v), want PARKED", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	s := openStore(t, dir, Options{})
	for i, size := range parkKillSizes {
		key := fmt.Sprint("k", i)
		m := mustGet(t, s, key, body(key, 1, size))
		if key == "k1" && m.Status != 203 {
			t.Fatalf("meta update lost: status %d", m.Status)
		}
	}
	assertNoOrphans(t, s)
}

// Parking and a full disk: an in-memory stand-in (opened on a full disk)
// never parks, since closing it would lose it; an open store does not park
// below the watermark (closing needs room to flush); a parked one is not reopened without Badger's room
// (that would crash) but says so, and reopens once there is room.
func TestParkAndTheDisk(t *testing.T) {
	disk := newFakeDisk(10 << 30)
	opts := Options{MinFreeBytes: testMinFree, FreeBytes: disk.FreeBytes}
	dir := t.TempDir()
	s := openStore(t, dir, opts)
	data := body("k", 1, 2*unit)
	put(t, s, "k", data, Meta{Status: 200})

	for _, free := range []int64{4096, BadgerRoom - 1, testMinFree - 1} {
		disk.free.Store(free)
		if s.park(true) {
			t.Fatalf("parked with %d bytes free (below the watermark)", free)
		}
	}
	disk.free.Store(10 << 30)
	mustPark(t, s)
	disk.free.Store(BadgerRoom - 1)
	if _, _, err := s.Get("k"); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Get of a parked store on a full disk: err = %v, want ErrDiskFull", err)
	}
	assertParked(t, s, true)
	disk.free.Store(10 << 30)
	mustGet(t, s, "k", data)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	disk.free.Store(4096)
	offline := openStore(t, dir, opts)
	if offline.park(true) {
		t.Fatal("the in-memory stand-in of a full disk parked")
	}
}
