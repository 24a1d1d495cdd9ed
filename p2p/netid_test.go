package p2p

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

func operatorPub(t testing.TB) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// The network key depends on the secret and on the operator key, and on
// nothing else: the same pair gives the same key on every node.
func TestNetworkPSKDerivation(t *testing.T) {
	secret, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	op, op2 := operatorPub(t), operatorPub(t)
	base := NetworkPSK(secret, op)
	if len(base) != 32 {
		t.Fatalf("key of %d bytes", len(base))
	}
	if !bytes.Equal(base, NetworkPSK(bytes.Clone(secret), bytes.Clone(op))) {
		t.Error("the same secret and operator key give another network key")
	}
	if !bytes.Equal(NetworkPSK(secret, nil), NetworkPSK(secret, ed25519.PublicKey{})) {
		t.Error("no operator and an empty operator key differ")
	}
	for name, k := range map[string][]byte{
		"raw secret":     secret,
		"other operator": NetworkPSK(secret, op2),
		"no operator":    NetworkPSK(secret, nil),
		"other secret":   NetworkPSK(other, op),
	} {
		if bytes.Equal(base, k) {
			t.Errorf("%s: same network key", name)
		}
	}
}

// The operator key is part of the network's identity: over real TCP, two
// hosts join only when they hold the same secret AND the same operator key
// (or both none); otherwise the dial fails with ErrNotTheNetwork, never
// with a connection. ConnectDirect's context outlasts the swarm's dial
// timeout, so a dial that stalls in the handshake (the peer reads our
// noise as a long message; about 3 in 10) also ends with the reason.
func TestOperatorKeyIsPartOfTheNetwork(t *testing.T) {
	psk := testSecret(t)
	op, rogue := operatorPub(t), operatorPub(t)
	withOp := func(k ed25519.PublicKey) func(*Config) { return func(c *Config) { c.Operator = k } }
	member := newTestHost(t, psk, withOp(op))
	noOperator := newTestHost(t, psk)
	for _, tc := range []struct {
		name   string
		to     *Host
		secret []byte
		op     ed25519.PublicKey
		joins  bool
	}{
		{"same secret and operator", member, psk, op, true},
		{"both without operator", noOperator, psk, nil, true},
		{"swapped operator key", member, psk, rogue, false},
		{"operator key dropped", member, psk, nil, false},
		{"operator key added", noOperator, psk, op, false},
		{"other secret", member, testSecret(t), op, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t, tc.secret, withOp(tc.op))
			var err error
			if tc.joins {
				err = h.Connect(testCtx(t), addrInfo(tc.to))
			} else {
				err = h.ConnectDirect(testCtx(t), addrInfo(tc.to))
			}
			if tc.joins && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.joins && !errors.Is(err, ErrNotTheNetwork) {
				t.Fatalf("got %v, want ErrNotTheNetwork", err)
			}
			if !tc.joins && (h.IsConnected(tc.to.ID().String()) || tc.to.IsConnected(h.ID().String())) {
				t.Error("connected to a network it is not part of")
			}
		})
	}
}

// A node whose every bootstrap member refuses it says why on its status,
// in words that tell its volunteer what to do; the words go once it joins.
func TestJoinRefusedSaysWhy(t *testing.T) {
	psk := testSecret(t)
	op := operatorPub(t)
	member := newTestHost(t, psk, func(c *Config) { c.Operator = op })
	boot := member.P2PAddrs()[0].String()
	forged := newTestHost(t, psk, func(c *Config) { c.Operator = operatorPub(t); c.Bootstrap = []string{boot} })
	testkit.Eventually(t, 20*time.Second, "the refused node to say why", func() bool {
		return forged.Status().JoinProblem == ErrNotTheNetwork.Error()
	})
	if len(forged.Status().Peers) != 0 {
		t.Error("the refused node has peers")
	}

	genuine := newTestHost(t, psk, func(c *Config) { c.Operator = op; c.Bootstrap = []string{boot} })
	testkit.Eventually(t, 20*time.Second, "the genuine node to join", func() bool { return genuine.IsConnected(member.ID().String()) })
	if p := genuine.Status().JoinProblem; p != "" {
		t.Errorf("a joined node reports %q", p)
	}
}
