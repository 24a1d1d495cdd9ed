package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/object"
)

// crashChildEnv makes the test binary, re-executed by TestCrashRecovery, run
// TestCrashChild as a writer that is killed mid-write. Value: "<dir>|<run>".
const crashChildEnv = "CORAL_STORE_CRASH_CHILD"

var (
	crashKeys  = []string{"k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11"}
	crashSizes = []int{0, 1, 1000, inlineMax, inlineMax + 1, unit, 3*unit + 17, 700 << 10, 1536 << 10}
)

// TestCrashChild is the writer process of TestCrashRecovery. It replaces,
// aborts, fails and deletes objects until killed, announcing each step on
// stdout before ("B" begin write, "d" begin delete), during ("W" bytes
// written so far, "P" about to commit) and after ("C" committed, "A"
// aborted, "I" refused as incomplete, "D" deleted) it happens. After each
// line it waits for the parent's go-ahead on stdin, so the parent knows
// exactly where the child is when it kills it.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	dir, runStr, _ := strings.Cut(spec, "|")
	run, _ := strconv.Atoi(runStr)
	in := bufio.NewReader(os.Stdin)
	say := func(format string, args ...any) {
		fmt.Printf(format+"\n", args...)
		if _, err := in.ReadString('\n'); err != nil {
			os.Exit(3) // parent gone
		}
	}
	fail := func(format string, args ...any) {
		fmt.Printf("ERR "+format+"\n", args...)
		os.Exit(2)
	}
	s, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		fail("open: %v", err)
	}
	rng := rand.New(rand.NewPCG(uint64(run), 1))
	var open []object.Body // readers kept open across replaces, so some versions are retired when the kill lands
	for i := 0; i < 200_000; i++ {
		key := crashKeys[rng.IntN(len(crashKeys))]
		gen := run*1_000_000 + i
		switch op := rng.IntN(20); {
		case op == 0:
			say("d %s", key)
			if err := s.Delete(key); err != nil {
				fail("delete: %v", err)
			}
			say("D %s", key)
		case op == 1:
			if m, b, err := s.Get(key); err == nil {
				_, _ = io.CopyN(io.Discard, b, m.Size/2)
				open = append(open, b)
				if len(open) > 3 {
					crashCheckRest(open[0])
					open = open[1:]
				}
			}
		default:
			size := crashSizes[rng.IntN(len(crashSizes))]
			data := body(key, gen, size)
			say("B %s %d %d", key, gen, size)
			w := s.Create(key, 0)
			for p := data; len(p) > 0; {
				n := min(1+rng.IntN(100_000), len(p))
				if _, err := w.Write(p[:n]); err != nil {
					fail("write: %v", err)
				}
				p = p[n:]
				say("W %s %d %d", key, gen, len(data)-len(p))
			}
			say("P %s %d", key, gen)
			switch op {
			case 2:
				w.Abort()
				say("A %s %d", key, gen)
			case 3:
				if _, err := w.Commit(Meta{Size: int64(size) + 1}); !errors.Is(err, ErrIncomplete) {
					fail("incomplete commit gave %v", err)
				}
				say("I %s %d", key, gen)
			default:
				if _, err := w.Commit(Meta{Size: int64(size), Extra: map[string]string{"gen": strconv.Itoa(gen)}}); err != nil {
					fail("commit: %v", err)
				}
				say("C %s %d", key, gen)
			}
		}
	}
	fail("never killed")
}

// crashCheckRest finishes a reader the child kept open and reports ("X")
// if it did not get a whole, intact generation.
func crashCheckRest(b object.Body) {
	defer b.Close()
	if _, err := io.Copy(io.Discard, b); err != nil {
		fmt.Printf("X %s old reader: %v\n", b.(*Body).key, err)
	}
}

// crashOp is the step the child announced but had not finished when killed.
type crashOp struct {
	kind byte // 'B' write, 'd' delete
	key  string
	gen  int
}

// crashKill says where TestCrashRecovery kills the child: at the first
// line of kind at ('B' write begins, 'W' a replacement has passed 300 KiB
// of a larger body, 'P' about to commit, 'C' just committed) once commits
// commits were seen. With running the child is let go first and dies a few
// microseconds into its next step (inside a flush, inside a commit);
// otherwise it dies exactly at the line.
type crashKill struct {
	commits int
	at      byte
	running bool
}

// TestCrashRecovery kills (SIGKILL) a real writer process at different
// points, reopens the store each time, and checks that every object is one
// the child wrote, whole and intact, and that no committed object was lost.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("running as the child")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kills := []crashKill{
		{commits: 3, at: 'B', running: true},
		{commits: 2, at: 'W'},
		{commits: 40, at: 'C', running: true},
		{commits: 15, at: 'W', running: true},
		{commits: 8, at: 'P', running: true},
		{commits: 25, at: 'P'},
	}
	state := map[string]int{} // key -> generation stored; absent = no object
	sizes := map[int]int{}    // generation -> size
	for i, kill := range kills {
		run := i + 1
		commits, op := crashRun(t, exe, dir, run, kill, state, sizes)
		if commits < kill.commits {
			t.Fatalf("run %d: killed after %d commits, want %d", run, commits, kill.commits)
		}
		verifyAfterCrash(t, dir, run, state, sizes, op)
	}
}

// crashRun runs the child once, kills it where kill says, and applies the
// steps it finished to state. It returns the commits seen and the step the
// child was in when it died (nil if none).
func crashRun(t *testing.T, exe, dir string, run int, kill crashKill, state map[string]int, sizes map[int]int) (int, *crashOp) {
	cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d", crashChildEnv, dir, run))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	killChild := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
		}
	}
	defer killChild()

	var inflight *crashOp
	commits := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() { // after the kill, lines already written still count: read to EOF
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var gen int
		if len(f) >= 3 {
			gen, _ = strconv.Atoi(f[2])
		}
		here := false // this line is the kill point
		switch f[0] {
		case "B":
			size, _ := strconv.Atoi(f[3])
			sizes[gen] = size
			inflight = &crashOp{kind: 'B', key: f[1], gen: gen}
			here = kill.at == 'B'
		case "W":
			written, _ := strconv.Atoi(f[3])
			_, replacing := state[f[1]]
			here = kill.at == 'W' && replacing && written >= 300<<10 && written < sizes[gen]
		case "P":
			here = kill.at == 'P'
		case "d":
			inflight = &crashOp{kind: 'd', key: f[1]}
		case "C":
			state[f[1]] = gen
			inflight = nil
			commits++
			here = kill.at == 'C'
		case "A", "I":
			inflight = nil
		case "D":
			delete(state, f[1])
			inflight = nil
		case "X", "ERR":
			t.Errorf("run %d: child: %s", run, sc.Text())
		}
		if killed {
			continue
		}
		if here && commits >= kill.commits {
			if kill.running {
				_, _ = io.WriteString(stdin, "\n")
			}
			killChild()
			continue
		}
		if _, err := io.WriteString(stdin, "\n"); err != nil {
			t.Fatalf("run %d: child stopped: %v; stderr:\n%s", run, err, stderr.String())
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("run %d: child exited on its own (%v) after %d commits; stderr:\n%s", run, err, commits, stderr.String())
	}
	return commits, inflight
}

// verifyAfterCrash reopens the store and checks each key against what the
// child had finished (state) plus the one step it may have been in (op).
// state is updated to what is actually stored, for the next run.
func verifyAfterCrash(t *testing.T, dir string, run int, state map[string]int, sizes map[int]int, op *crashOp) {
	t.Helper()
	var logs bytes.Buffer
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("run %d: reopening after kill: %v", run, err)
	}
	opened := logs.String()
	if i := strings.Index(opened, "orphans_removed="); i >= 0 {
		opened = strings.Fields(opened[i:])[0]
	}
	defer s.Close()
	assertNoOrphans(t, s)
	objects := 0
	for _, key := range crashKeys {
		want, ok := state[key]
		allowed := map[int]bool{}
		if ok {
			allowed[want] = true
		} else {
			allowed[-1] = true
		}
		if op != nil && op.key == key {
			if op.kind == 'B' {
				allowed[op.gen] = true
			} else {
				allowed[-1] = true
			}
		}
		m, data, err := get(t, s, key) // checks length and hash against the meta
		if errors.Is(err, ErrNotFound) {
			if !allowed[-1] {
				t.Fatalf("run %d: %s missing, want generation %d", run, key, want)
			}
			delete(state, key)
			continue
		}
		if err != nil {
			t.Fatalf("run %d: Get %s: %v", run, key, err)
		}
		objects++
		gen, err := strconv.Atoi(m.Extra["gen"])
		if err != nil || !allowed[gen] {
			t.Fatalf("run %d: %s holds generation %q, allowed %v", run, key, m.Extra["gen"], allowed)
		}
		if len(data) != sizes[gen] || !bytes.Equal(data, body(key, gen, sizes[gen])) {
			t.Fatalf("run %d: %s: %d bytes that are not generation %d (%d bytes)", run, key, len(data), gen, sizes[gen])
		}
		state[key] = gen
	}
	if u := s.Usage(); u.Objects != objects {
		t.Fatalf("run %d: Usage counts %d objects, %d readable", run, u.Objects, objects)
	}
	t.Logf("run %d: %d objects intact after kill, %s, in flight: %+v", run, objects, opened, op)
}
