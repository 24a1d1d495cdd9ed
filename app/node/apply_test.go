package node

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coralcdn/coral/core/group"
)

// Manifests arriving together (gossip, the directory, the API) leave the
// node answering by the newest, and the status never shows a manifest the
// proxy and DNS do not answer by yet: a group's status read, then its site
// looked up, finds that manifest's origin or a newer one's.
func TestGroupStatusNeverAheadOfTheSiteIndex(t *testing.T) {
	pub, priv := operatorKeys(t)
	cfg := testConfig(t)
	cfg.Groups = append(cfg.Groups, configGroup(group.FormatPublicKey(pub), ""))
	n := startNode(t, cfg)
	g := n.groupList()[0]

	const manifests = 40
	signed := make([][]byte, manifests+1)
	for s := 1; s <= manifests; s++ {
		signed[s] = signManifest(t, siteManifest(t, uint64(s), fmt.Sprintf("http://o%d.example.com", s)), priv)
	}
	indexSerial := func() int {
		o, ok := n.siteOrigin("www.site.org")
		if !ok {
			return 0
		}
		s, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(o.Host, "o"), ".example.com"))
		return s
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for s := 1; s <= manifests; s++ {
					n.offerManifest(g, signed[s]) // older ones are refused: fine
					n.reindexSites()              // as a directory change does
				}
			})
		}
		wg.Wait()
	}()
	ahead := 0
	readUntil(done, func() {
		st := n.groupsStatus()[0]
		if idx := indexSerial(); int(st.Serial) > idx {
			ahead++
		}
	})
	if ahead > 0 {
		t.Errorf("%d status reads showed a manifest the site index did not answer by yet", ahead)
	}
	if st, idx := n.groupsStatus()[0], indexSerial(); st.Serial != manifests || idx != manifests {
		t.Errorf("after all offers: status serial %d, index from serial %d; want %d", st.Serial, idx, manifests)
	}
}

// A group change that applies the budget's policy while the volunteer
// pauses the node must not undo the pause: whichever applies last builds
// its policy from the settings in force.
func TestGroupChangeNeverUndoesASettingsChange(t *testing.T) {
	n := startNode(t, testConfig(t))
	for round := range 150 {
		paused := round%2 == 0
		stop := make(chan struct{})
		var spinner sync.WaitGroup
		spinner.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					n.refreshBudget() // as a group manifest or membership change does
				}
			}
		})
		if _, err := n.settings.Update([]byte(fmt.Sprintf(`{"paused": %v}`, paused))); err != nil {
			t.Fatal(err)
		}
		close(stop)
		spinner.Wait()
		if st := n.budget.State(); st.Serving == paused {
			t.Fatalf("round %d: settings say paused=%v, the budget is serving=%v (%s)", round, paused, st.Serving, st.Reason)
		}
	}
}

// The status's budget figures all come from what the budget enforces: read
// while the volunteer changes pause and quota together, it never shows one
// change's quota with the other's serving decision.
func TestBudgetStatusIsOneSettingsChange(t *testing.T) {
	n := startNode(t, testConfig(t))
	changes := []string{
		`{"paused": true, "bandwidth": {"monthly_quota": "10GiB"}}`,
		`{"paused": false, "bandwidth": {"monthly_quota": "20GiB"}}`,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range 300 {
			if _, err := n.settings.Update([]byte(changes[round%2])); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	mixed := 0
	readUntil(done, func() {
		b := n.budgetStatus()
		if b.QuotaBytes != 0 && (b.Reason == "paused") != (b.QuotaBytes == 10<<30) {
			mixed++
		}
	})
	if mixed > 0 {
		t.Errorf("%d status reads showed one change's quota with another's serving decision", mixed)
	}
}

// readUntil calls read over and over while the writers run, and once more
// after done is closed.
func readUntil(done <-chan struct{}, read func()) {
	for {
		select {
		case <-done:
			read()
			return
		default:
			read()
		}
	}
}
