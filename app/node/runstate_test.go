package node

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/runstate"
	"github.com/coralcdn/coral/p2p"
	"github.com/miekg/dns"

	"github.com/coralcdn/coral/test/testkit"
)

func operatorKeys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func signDoc(t *testing.T, d runstate.Document, k ed25519.PrivateKey) []byte {
	t.Helper()
	raw, err := runstate.Sign(d, k)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// control sends a token-carrying request to n's control API.
func controlDo(t *testing.T, n *Node, method, path string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.Addrs().Control+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+n.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func dnsRcode(t *testing.T, n *Node) int {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.localhost.", dns.TypeA)
	r, _, err := new(dns.Client).Exchange(m, n.Addrs().DNS)
	if err != nil {
		t.Fatal(err)
	}
	return r.Rcode
}

// The operator pauses the proxy and DNS with a signed document: visitors
// get 503 saying why, DNS answers REFUSED, the status page shows the
// message. The node keeps that state across a restart without any network,
// refuses every bad document through the API, and resumes with a newer one.
func TestRunStatePauseKeptAcrossRestart(t *testing.T) {
	pub, priv := operatorKeys(t)
	_, stranger := operatorKeys(t)
	cfg := testConfig(t)
	cfg.Operator.Key = runstate.FormatPublicKey(pub)
	n := startNode(t, cfg)
	if dnsRcode(t, n) == dns.RcodeRefused {
		t.Fatal("DNS refused before any pause")
	}
	pause := signDoc(t, runstate.Document{Serial: 3, Paused: []string{runstate.Proxy, runstate.DNS}, Message: "maintenance until 14:00"}, priv)
	if code, body := controlDo(t, n, "POST", "/api/runstate", pause); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	checkPaused := func(n *Node) {
		t.Helper()
		resp, body := coralGet(t, n, "example.com.localhost", "/")
		if resp.StatusCode != 503 || !strings.Contains(body, "paused by the network's operator: proxy, dns") || !strings.Contains(body, "maintenance until 14:00") {
			t.Errorf("paused proxy: %d %q", resp.StatusCode, body)
		}
		if rc := dnsRcode(t, n); rc != dns.RcodeRefused {
			t.Errorf("paused DNS answered %s", dns.RcodeToString[rc])
		}
		page, _ := http.Get("http://" + n.Addrs().Control + "/")
		b, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if !strings.Contains(string(b), "maintenance until 14:00") {
			t.Error("status page lacks the operator's message")
		}
	}
	checkPaused(n)

	for _, tc := range []struct {
		name string
		raw  []byte
		code int
	}{
		{"older serial", signDoc(t, runstate.Document{Serial: 2}, priv), http.StatusConflict},
		{"wrong key", signDoc(t, runstate.Document{Serial: 9}, stranger), http.StatusBadRequest},
		{"unsigned", []byte(`{"document":"eyJzZXJpYWwiOjl9"}`), http.StatusBadRequest},
		{"truncated", pause[:40], http.StatusBadRequest},
		{"garbage", []byte("\xff\xfe garbage"), http.StatusBadRequest},
	} {
		if code, body := controlDo(t, n, "POST", "/api/runstate", tc.raw); code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.code)
		}
	}
	n.Close()

	// Restart with the network gone: no bootstrap, nobody to ask.
	again := startNode(t, cfg)
	checkPaused(again)

	resume := signDoc(t, runstate.Document{Serial: 4}, priv)
	if code, body := controlDo(t, again, "POST", "/api/runstate", resume); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	if resp, _ := coralGet(t, again, "localhost", "/"); resp.StatusCode != 200 {
		t.Errorf("resumed proxy: %d", resp.StatusCode)
	}
	if dnsRcode(t, again) == dns.RcodeRefused {
		t.Error("resumed DNS still refuses")
	}
}

// A node older than the network's minimum version stops serving and says
// why; a node that trusts no operator refuses documents.
func TestRunStateMinVersionAndNoOperator(t *testing.T) {
	pub, priv := operatorKeys(t)
	cfg := testConfig(t)
	cfg.Operator.Key = runstate.FormatPublicKey(pub)
	n, err := New(cfg, Options{Version: "0.1.0+git1234", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code, body := controlDo(t, n, "POST", "/api/runstate", signDoc(t, runstate.Document{Serial: 1, MinVersion: "0.2.0"}, priv)); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	resp, body := coralGet(t, n, "localhost", "/")
	if resp.StatusCode != 503 || !strings.Contains(body, "requires 0.2.0 or newer: upgrade coral") {
		t.Errorf("too old a node: %d %q", resp.StatusCode, body)
	}
	st, _ := n.Status(t.Context())
	if st.RunState == nil || st.RunState.Serving["proxy"] || !strings.Contains(st.RunState.Why, "upgrade") {
		t.Errorf("status: %+v", st.RunState)
	}

	plain := startNode(t, testConfig(t))
	if code, body := controlDo(t, plain, "POST", "/api/runstate", signDoc(t, runstate.Document{Serial: 1}, priv)); code != 400 || !strings.Contains(body, "trusts no operator") {
		t.Errorf("node without an operator: %d %s", code, body)
	}
}

// `coral invite` on a member, `coral join` on a new node: the new node has
// the network's secret, reaches the member through the invite's bootstrap
// addresses, follows the operator key, and receives the operator's next
// document by gossip.
func TestInviteJoinAndGossip(t *testing.T) {
	pub, priv := operatorKeys(t)
	cfgA := testConfig(t)
	cfgA.Operator.Key = runstate.FormatPublicKey(pub)
	a := startNode(t, cfgA)
	code, body := controlDo(t, a, "GET", "/api/invite", nil)
	if code != 200 || !strings.HasPrefix(body, "coral1:") {
		t.Fatalf("invite: %d %q", code, body)
	}
	if resp, err := http.Get("http://" + a.Addrs().Control + "/api/invite"); err != nil || resp.StatusCode != 401 {
		t.Errorf("invite without the token: %v %v", resp.StatusCode, err)
	}

	cfgB := testConfig(t)
	inv, err := Join(cfgB, strings.TrimSpace(body))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Operator != cfgA.Operator.Key {
		t.Errorf("invite carries operator %q", inv.Operator)
	}
	secretA, _ := p2p.LoadSecret(cfgA.Path(cfgA.P2P.SecretFile))
	secretB, _ := p2p.LoadSecret(cfgB.Path(cfgB.P2P.SecretFile))
	if !bytes.Equal(secretA, secretB) {
		t.Fatal("joined node has another secret")
	}
	b, err := New(cfgB, Options{Version: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the joined node to connect", func() bool { return b.host.IsConnected(a.nodeID) })
	testkit.Eventually(t, 20*time.Second, "the run-state topic to link them", func() bool { return a.runStateCh.Peers() > 0 })

	if code, body := controlDo(t, a, "POST", "/api/runstate", signDoc(t, runstate.Document{Serial: 1, Paused: []string{runstate.Proxy}, Message: "network paused"}, priv)); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	testkit.Eventually(t, 20*time.Second, "the document at the joined node", func() bool {
		st, _ := b.Status(t.Context())
		return st.RunState != nil && st.RunState.Serial == 1
	})
	if resp, body := coralGet(t, b, "localhost", "/"); resp.StatusCode != 503 || !strings.Contains(body, "network paused") {
		t.Errorf("joined node's proxy: %d %q", resp.StatusCode, body)
	}
}

// The operator rotates the network secret: the node keeps the old one
// until the announced time, then writes the new one (old kept as .old) and
// asks to be restarted, which a restart applies.
func TestSecretRotation(t *testing.T) {
	pub, priv := operatorKeys(t)
	cfg := testConfig(t)
	cfg.Operator.Key = runstate.FormatPublicKey(pub)
	n := startNode(t, cfg)
	secretFile := cfg.Path(cfg.P2P.SecretFile)
	old, _ := p2p.LoadSecret(secretFile)
	newKey := make([]byte, 32)
	rand.Read(newKey)
	at := time.Now().Add(1500 * time.Millisecond)
	doc := runstate.Document{Serial: 1, Rotation: &runstate.Rotation{Secret: hex.EncodeToString(newKey), From: at}}
	if code, body := controlDo(t, n, "POST", "/api/runstate", signDoc(t, doc, priv)); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	if cur, _ := p2p.LoadSecret(secretFile); !bytes.Equal(cur, old) {
		t.Fatal("secret replaced before its time")
	}
	expectRotationRestart(t, n, at, secretFile, newKey, "the rotation")
	if kept, _ := p2p.LoadSecret(secretFile + ".old"); !bytes.Equal(kept, old) {
		t.Error("old secret not kept")
	}
}

// The operator re-publishes a rotation that is in force already (its
// secret is the one in the file) and then adds a message to it: nothing
// changes, so the node asks for no restart (`coral serve` would restart
// every node of the network at once) and shows the message. A later real
// rotation still restarts it, at its own time and not before.
func TestRotationAlreadyInForceRestartsNothing(t *testing.T) {
	pub, priv := operatorKeys(t)
	cfg := testConfig(t)
	cfg.Operator.Key = runstate.FormatPublicKey(pub)
	n := startNode(t, cfg)
	secretFile := cfg.Path(cfg.P2P.SecretFile)
	inForce, err := p2p.LoadSecret(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	applied := &runstate.Rotation{Secret: hex.EncodeToString(inForce), From: time.Now().Add(-time.Hour)}
	for _, doc := range []runstate.Document{
		{Serial: 2, Rotation: applied},
		{Serial: 3, Rotation: applied, Message: "rotation done, thanks"},
	} {
		if code, body := controlDo(t, n, "POST", "/api/runstate", signDoc(t, doc, priv)); code != 200 {
			t.Fatalf("publish serial %d: %d %s", doc.Serial, code, body)
		}
		if why := n.RestartReason(); why != "" {
			t.Fatalf("serial %d: restart requested though the secret did not change: %q", doc.Serial, why)
		}
	}
	page, err := http.Get("http://" + n.Addrs().Control + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(b), "rotation done, thanks") {
		t.Error("status page lacks the operator's message")
	}

	// A rotation scheduled by serial 2 or 3 would have fired by now (its
	// time is past); the only restart must be serial 4's, at its time.
	newKey := make([]byte, 32)
	rand.Read(newKey)
	at := time.Now().Add(1500 * time.Millisecond)
	next := runstate.Document{Serial: 4, Rotation: &runstate.Rotation{Secret: hex.EncodeToString(newKey), From: at}}
	if code, body := controlDo(t, n, "POST", "/api/runstate", signDoc(t, next, priv)); code != 200 {
		t.Fatalf("publish serial 4: %d %s", code, body)
	}
	expectRotationRestart(t, n, at, secretFile, newKey, "the real rotation")
}

// expectRotationRestart waits for n's restart request, which must come
// at the rotation's time at, not before, with the new secret in place.
func expectRotationRestart(t *testing.T, n *Node, at time.Time, secretFile string, newKey []byte, which string) {
	t.Helper()
	select {
	case <-n.RestartRequested():
	case <-time.After(30 * time.Second):
		t.Fatalf("no restart requested at %s's time", which)
	}
	if time.Now().Before(at) {
		t.Errorf("restart requested before %s's time", which)
	}
	if cur, _ := p2p.LoadSecret(secretFile); !bytes.Equal(cur, newKey) {
		t.Error("new secret not in place")
	}
}

func TestParseInvite(t *testing.T) {
	pub, _ := operatorKeys(t)
	good := Invite{Secret: strings.Repeat("ab", 32), Bootstrap: []string{"/ip4/192.0.2.1/tcp/4100/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}, Operator: runstate.FormatPublicKey(pub)}
	if got, err := ParseInvite(" " + good.Encode() + "\n"); err != nil || got.Secret != good.Secret || got.Operator != good.Operator {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	mod := func(f func(*Invite)) string { i := good; f(&i); return i.Encode() }
	for _, tc := range []struct{ name, code, want string }{
		{"empty", "", "starting with"},
		{"other prefix", "coral2:abc", "starting with"},
		{"not base64", "coral1:!!!", "not base64url"},
		{"not JSON", "coral1:Z2FyYmFnZQ", "bad content"},
		{"truncated", good.Encode()[:40], "damaged"},
		{"short secret", mod(func(i *Invite) { i.Secret = "abcd" }), "not 32 bytes"},
		{"no bootstrap", mod(func(i *Invite) { i.Bootstrap = nil }), "no bootstrap"},
		{"bootstrap without id", mod(func(i *Invite) { i.Bootstrap = []string{"/ip4/192.0.2.1/tcp/4100"} }), "lacks /p2p/"},
		{"bad multiaddr", mod(func(i *Invite) { i.Bootstrap = []string{"/ipx/1"} }), "bootstrap address"},
		{"bad operator", mod(func(i *Invite) { i.Operator = "ed25519:xyz" }), "operator key"},
		{"huge", "coral1:" + strings.Repeat("A", maxInviteLen), "more than"},
	} {
		if _, err := ParseInvite(tc.code); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParseInvite: no code crashes the parser; an accepted one is valid.
func FuzzParseInvite(f *testing.F) {
	f.Add(Invite{Secret: strings.Repeat("ab", 32), Bootstrap: []string{"/ip4/192.0.2.1/tcp/4100/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}}.Encode())
	f.Add("coral1:")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, code string) {
		if inv, err := ParseInvite(code); err == nil {
			if verr := inv.validate(); verr != nil {
				t.Fatalf("accepted an invalid invite: %v", verr)
			}
		}
	})
}

// A join code pasted on a node that is not running yet works from the
// data dir alone, and `coral invite` of a stopped node reads its data dir.
func TestOfflineInvite(t *testing.T) {
	cfg := testConfig(t)
	if _, err := OfflineInvite(cfg); err == nil {
		t.Error("invite of a node that never ran")
	}
	n := startNode(t, cfg)
	id := n.nodeID
	n.Close()
	code, err := OfflineInvite(cfg)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ParseInvite(code)
	if err != nil || !strings.HasSuffix(inv.Bootstrap[0], "/p2p/"+id) {
		t.Errorf("offline invite: %+v %v", inv, err)
	}
}

// A paused DSHT answers no RPCs: a member's put finds nobody to store at,
// and resumes when the operator resumes it.
func TestRunStatePausesDSHT(t *testing.T) {
	pub, priv := operatorKeys(t)
	cfgA := testConfig(t)
	cfgA.Operator.Key = runstate.FormatPublicKey(pub)
	a := startNode(t, cfgA)
	_, code := controlDo(t, a, "GET", "/api/invite", nil)
	cfgB := testConfig(t)
	if _, err := Join(cfgB, strings.TrimSpace(code)); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, cfgB)
	testkit.Eventually(t, 20*time.Second, "the joined node to connect", func() bool { return b.host.IsConnected(a.nodeID) })
	put := func() int {
		status, _ := controlDo(t, b, "POST", "/api/dsht/put", []byte(`{"key":"k","value":"v","ttl":"1m"}`))
		return status
	}
	testkit.Eventually(t, 20*time.Second, "a put stored at the other member", func() bool { return put() == http.StatusNoContent })

	if status, body := controlDo(t, a, "POST", "/api/runstate", signDoc(t, runstate.Document{Serial: 1, Paused: []string{runstate.DSHT}}, priv)); status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	if status := put(); status == http.StatusNoContent {
		t.Error("a paused DSHT stored a value")
	}
	if status, body := controlDo(t, a, "POST", "/api/runstate", signDoc(t, runstate.Document{Serial: 2}, priv)); status != 200 {
		t.Fatalf("resume: %d %s", status, body)
	}
	testkit.Eventually(t, 20*time.Second, "puts to work again", func() bool { return put() == http.StatusNoContent })
}

// The desktop app's settings use the control client: the invite code of
// one node joins another through its API (token), bad codes are refused.
func TestJoinThroughControlAPI(t *testing.T) {
	a, b := startNode(t, testConfig(t)), startNode(t, testConfig(t))
	ca := &control.Client{BaseURL: "http://" + a.Addrs().Control, Token: a.Token()}
	cb := &control.Client{BaseURL: "http://" + b.Addrs().Control, Token: b.Token()}
	code, err := ca.Invite(t.Context())
	if err != nil || !strings.HasPrefix(code, "coral1:") {
		t.Fatalf("invite: %q %v", code, err)
	}
	if _, err := cb.Join(t.Context(), "coral1:garbage"); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("bad code: %v", err)
	}
	if msg, err := cb.Join(t.Context(), code); err != nil || !strings.Contains(msg, "restart") {
		t.Fatalf("join: %q %v", msg, err)
	}
	sa, _ := p2p.LoadSecret(a.cfg.Path(a.cfg.P2P.SecretFile))
	sb, _ := p2p.LoadSecret(b.cfg.Path(b.cfg.P2P.SecretFile))
	if !bytes.Equal(sa, sb) {
		t.Error("secret not joined")
	}
	if _, err := (&control.Client{BaseURL: cb.BaseURL}).Join(t.Context(), code); err == nil {
		t.Error("join without the token accepted")
	}
}

// Documents arriving together (gossip and the operator's command) leave the
// node in the newest one's state, and the status never shows a document
// whose effect is not yet in force: a status that says "paused" while the
// proxy still serves is what a volunteer, or a test, would act on.
func TestRunStateStatusMatchesWhatIsInForce(t *testing.T) {
	pub, priv := operatorKeys(t)
	cfg := testConfig(t)
	cfg.Operator.Key = runstate.FormatPublicKey(pub)
	n := startNode(t, cfg)

	const docs = 60
	signed := make([][]byte, docs+1)
	for s := 1; s <= docs; s++ {
		d := runstate.Document{Serial: uint64(s)}
		if s%2 == 1 {
			d.Paused = []string{runstate.Proxy}
		}
		signed[s] = signDoc(t, d, priv)
	}
	done := make(chan struct{})
	offer := func(order func(i int) int) {
		for i := 1; i <= docs; i++ {
			n.offerRunState(signed[order(i)]) // older ones are refused: fine
		}
	}
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Go(func() { offer(func(i int) int { return i }) })
		wg.Go(func() { offer(func(i int) int { return i }) })
		wg.Wait()
	}()
	inconsistent := 0
	readUntil(done, func() {
		st := n.runStateStatus()
		if st.Serial > 0 && st.Serving[runstate.Proxy] != (st.Serial%2 == 0) {
			inconsistent++
		}
	})
	if inconsistent > 0 {
		t.Errorf("%d status reads showed a document with another document's effect", inconsistent)
	}
	st := n.runStateStatus()
	if st.Serial != docs || !st.Serving[runstate.Proxy] {
		t.Errorf("after all offers: serial %d, proxy serving %v; want %d, serving", st.Serial, st.Serving[runstate.Proxy], docs)
	}
	if resp, body := coralGet(t, n, "localhost", "/"); resp.StatusCode == 503 {
		t.Errorf("newest document lets the proxy serve, the proxy answered %d %q", resp.StatusCode, body)
	}
}
