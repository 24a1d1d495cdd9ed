package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/runstate"
	"github.com/coralcdn/coral/p2p"
)

// runStateFile keeps the last accepted run-state document in the data dir.
const runStateFile = "runstate.signed"

// openRunState finds the operator key the node trusts (config, else what
// `coral join` recorded), loads the document in force and, if it rotated
// the network secret already, puts the new secret in place before the p2p
// host reads it. A stored document that no longer verifies is dropped with
// a warning: the node then runs as if it had none (fail-same cannot keep a
// state it cannot trust).
func (n *Node) openRunState(j joined) error {
	keyText := n.cfg.Operator.Key
	if keyText == "" {
		keyText = j.Operator
	}
	if keyText != "" {
		k, err := runstate.ParsePublicKey(keyText)
		if err != nil {
			return fmt.Errorf("node: operator key: %w", err)
		}
		n.operatorKey = k
	}
	var err error
	n.runState, err = runstate.NewTracker(n.cfg.Path(runStateFile), n.operatorKey)
	if err != nil {
		n.log.Warn("run state not applied", "err", err)
	}
	n.applyRunState()
	_, err = n.rotateSecret() // before the host starts: no restart needed
	return err
}

// offerRunState considers a signed document from the network or the
// operator's command and applies it if accepted.
func (n *Node) offerRunState(raw []byte) error {
	doc, err := n.runState.Offer(raw)
	if err != nil {
		return err
	}
	n.log.Info("run state accepted", "serial", doc.Serial, "paused", doc.Paused, "min_version", doc.MinVersion, "message", doc.Message)
	n.applyRunState()
	if doc.Rotation != nil && !n.secretInForce(doc.Rotation) {
		n.scheduleRotation(doc.Rotation.From)
	}
	return nil
}

// secretInForce reports whether the secret file holds r's secret already
// (a later document keeping an applied rotation): there is nothing to
// rotate, and no restart to schedule.
func (n *Node) secretInForce(r *runstate.Rotation) bool {
	want, err := hex.DecodeString(r.Secret)
	if err != nil {
		return false
	}
	have, err := p2p.LoadSecret(n.cfg.Path(n.cfg.P2P.SecretFile))
	return err == nil && bytes.Equal(have, want)
}

// appliedRunState is the document in force together with what it means
// for this node. They are swapped together so the status never shows a
// document whose effect is not yet in force (a visitor served after the
// status said "paused").
type appliedRunState struct {
	runstate.Effect
	doc runstate.Document
	has bool // a document is in force (else every component serves)
}

// applyRunState recomputes what the document in force means for this node.
func (n *Node) applyRunState() {
	n.applyMu.Lock()
	defer n.applyMu.Unlock()
	a := appliedRunState{Effect: runstate.Effect{Serving: map[string]bool{runstate.Proxy: true, runstate.DNS: true, runstate.DSHT: true}}}
	a.doc, _, a.has = n.runState.Current()
	if a.has {
		a.Effect = runstate.EffectFor(a.doc, n.version)
	}
	if old := n.effect.Swap(&a); a.Why != "" && (old == nil || old.Why != a.Why) {
		n.log.Warn("run state: " + a.Why)
	}
}

// serving reports whether component c may serve under the run state.
func (n *Node) serving(c string) bool {
	e := n.effect.Load()
	return e == nil || e.Serving[c]
}

// rotateSecret puts the rotated network secret in the secret file once its
// time has come, and reports whether the file changed (false when there is
// nothing to do: no rotation, not yet due, or its secret in force already).
func (n *Node) rotateSecret() (changed bool, err error) {
	doc, _, ok := n.runState.Current()
	if !ok {
		return false, nil
	}
	key, due := doc.SecretAt(time.Now())
	if !due {
		return false, nil
	}
	changed, err = p2p.ReplaceSecret(n.cfg.Path(n.cfg.P2P.SecretFile), key)
	if err != nil {
		return false, fmt.Errorf("node: secret rotation: %w", err)
	}
	if changed {
		n.log.Warn("network secret rotated by the operator", "serial", doc.Serial, "old_secret_kept_in", n.cfg.Path(n.cfg.P2P.SecretFile)+".old")
	}
	return changed, nil
}

// scheduleRotation restarts the node when a rotation's time comes and its
// secret replaces the one in use: libp2p takes its secret at start only.
// Until then the old secret stays in use.
func (n *Node) scheduleRotation(at time.Time) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		changed, err := n.rotateSecret()
		if err != nil {
			n.log.Error("secret rotation failed", "err", err)
			return
		}
		if changed { // else the secret in use is the rotated one: a restart would change nothing
			n.requestRestart("the network secret rotates now")
		}
	}()
}

// requestRestart asks whoever runs the node to close it and start it again.
func (n *Node) requestRestart(why string) {
	n.restartOnce.Do(func() {
		n.restartWhy = why
		close(n.restart)
	})
}

// RestartRequested is closed when the node must be restarted to apply a
// change (a rotated network secret); RestartReason says why.
func (n *Node) RestartRequested() <-chan struct{} { return n.restart }

// RestartReason says why a restart was requested.
func (n *Node) RestartReason() string {
	select {
	case <-n.restart:
		return n.restartWhy
	default:
		return ""
	}
}

// joinRunStateTopic connects the tracker to the network.
func (n *Node) joinRunStateTopic() error {
	if !n.runState.Trusts() {
		return nil // nothing this node would accept; stay off the topic
	}
	var err error
	n.runStateCh, err = n.host.JoinRunState(p2p.RunStateConfig{
		Offer:             n.offerRunState,
		Current:           func() []byte { _, raw, _ := n.runState.Current(); return raw },
		RepublishInterval: n.runStateRepublish,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if doc, _, ok := n.runState.Current(); ok && doc.Rotation != nil && time.Now().Before(doc.Rotation.From) && !n.secretInForce(doc.Rotation) {
		n.scheduleRotation(doc.Rotation.From)
	}
	return nil
}

// runStateStatus is the status page's view of the run state.
func (n *Node) runStateStatus() *control.RunState {
	st := &control.RunState{Serving: map[string]bool{}}
	if n.operatorKey != nil {
		st.Operator = runstate.FormatPublicKey(n.operatorKey)
	}
	e := n.effect.Load()
	if e == nil {
		return st
	}
	st.Why = e.Why
	for c, on := range e.Serving {
		st.Serving[c] = on
	}
	if !e.has {
		return st
	}
	doc := e.doc
	st.Serial, st.Issued, st.Paused, st.MinVersion, st.Message = doc.Serial, doc.Issued, doc.Paused, doc.MinVersion, doc.Message
	if doc.Rotation != nil {
		at := doc.Rotation.From
		st.RotateAt = &at
	}
	return st
}

// postRunState is POST /api/runstate (token): a signed document from the
// operator's `coral operator publish`, applied here and sent to the network.
func (n *Node) postRunState(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, runstate.MaxSignedBytes+1))
	if err != nil {
		http.Error(w, "control: run state: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if err := n.offerRunState(raw); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, runstate.ErrNotNewer) {
			code = http.StatusConflict
		}
		http.Error(w, "control: "+err.Error(), code)
		return
	}
	peers := 0
	if n.runStateCh != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := n.runStateCh.Publish(ctx, raw); err != nil {
			http.Error(w, "control: accepted here, but "+err.Error(), http.StatusBadGateway)
			return
		}
		peers = n.runStateCh.Peers()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"accepted": true, "run_state": n.runStateStatus(), "sent_to_peers": peers})
}

// getInvite is GET /api/invite (token: the code holds the network secret).
func (n *Node) getInvite(w http.ResponseWriter, r *http.Request) {
	code, err := n.Invite()
	if err != nil {
		http.Error(w, "control: invite: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, code+"\n")
}

// postJoin is POST /api/join (token): the body is an invite code; the node
// records its network for the next start (the desktop app's settings).
func (n *Node) postJoin(w http.ResponseWriter, r *http.Request) {
	code, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInviteLen+1))
	if err != nil {
		http.Error(w, "control: join: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if _, err := Join(n.cfg, string(code)); err != nil {
		http.Error(w, "control: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "joined: restart coral to connect to the new network\n")
}

// gateProxy answers visitors with 503 while the run state stops the proxy,
// saying why, so a paused network fails politely and visibly.
func (n *Node) gateProxy(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := n.effect.Load() // once: the answer and its reason from one document
		if e == nil || e.Serving[runstate.Proxy] {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After", "300")
		w.Header().Set("Connection", "close") // one refusal per connection, as the visitor gate's
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "This Coral node is not serving: %s.\n", e.Why)
		if e.Message != "" {
			fmt.Fprintf(w, "From the network's operator: %s\n", e.Message)
		}
	})
}

// errDSHTPaused is what DSHT users and callers get while it is paused.
var errDSHTPaused = errors.New("node: the DSHT is paused by the network's run state")

// dshtGate serves DSHT RPCs only while the run state lets the DSHT run.
type dshtGate struct {
	n *Node
	h dsht.Handler
}

func (g dshtGate) HandleRPC(ctx context.Context, from dsht.NodeInfo, req *dsht.Request) (*dsht.Response, error) {
	if !g.n.serving(runstate.DSHT) {
		return nil, errDSHTPaused
	}
	return g.h.HandleRPC(ctx, from, req)
}

// gatedDSHT is the DSHT as the cooperating proxies see it: while paused,
// lookups fail at once and requests go to the origin.
type gatedDSHT struct {
	*dsht.Node
	n *Node
}

func (g gatedDSHT) Get(ctx context.Context, key dsht.ID, opts ...dsht.Option) ([]dsht.Value, error) {
	if !g.n.serving(runstate.DSHT) {
		return nil, errDSHTPaused
	}
	return g.Node.Get(ctx, key, opts...)
}

func (g gatedDSHT) Put(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, opts ...dsht.Option) error {
	if !g.n.serving(runstate.DSHT) {
		return errDSHTPaused
	}
	return g.Node.Put(ctx, key, value, ttl, opts...)
}

func (g gatedDSHT) PutGet(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, opts ...dsht.Option) ([]dsht.Value, error) {
	if !g.n.serving(runstate.DSHT) {
		return nil, errDSHTPaused
	}
	return g.Node.PutGet(ctx, key, value, ttl, opts...)
}
