package p2p

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// FuzzHandlePeers feeds arbitrary bytes, as a stranger could send them on
// the address-lookup protocol, to a real host's handler. It must never
// panic; it either refuses the input as malformed (or cut short) or answers
// with at most maxLookupAddrs+1 valid multiaddrs in a reply that fits the
// asker's read limit.
func FuzzHandlePeers(f *testing.F) {
	h := newTestHost(f, testSecret(f))
	other := newTestHost(f, testSecret(f))
	h.host.Peerstore().AddAddrs(other.ID(), other.listenAddrs(), learnedAddrTTL)
	seed := func(v any) {
		var buf bytes.Buffer
		_ = WriteMsg(&buf, v)
		f.Add(buf.Bytes())
	}
	seed(&peersRequest{Peer: []byte(other.ID())}) // a known peer: its addresses
	seed(&peersRequest{Peer: []byte(h.ID())})     // the host itself
	seed(&peersRequest{Peer: []byte("not a peer id")})
	seed(&peersRequest{})
	seed(&fetchRequest{Key: "k"}) // another protocol's message
	var known bytes.Buffer
	_ = WriteMsg(&known, &peersRequest{Peer: []byte(other.ID())})
	if resp, err := h.answerPeers(bufio.NewReader(&known)); err != nil || len(resp.Addrs) == 0 {
		f.Fatalf("lookup of a known peer: %d addresses, %v", len(resp.Addrs), err)
	}
	f.Add([]byte{})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{0x03, 0xa1, 0x01, 0x01})

	f.Fuzz(func(t *testing.T, in []byte) {
		resp, err := h.answerPeers(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error neither malformed nor cut short: %v", err)
			}
			return
		}
		if len(resp.Addrs) > maxLookupAddrs+1 {
			t.Fatalf("%d addresses in a reply", len(resp.Addrs))
		}
		for _, b := range resp.Addrs {
			if _, err := ma.NewMultiaddrBytes(b); err != nil {
				t.Fatalf("reply holds an invalid multiaddr: %v", err)
			}
		}
		var buf bytes.Buffer
		if err := WriteMsg(&buf, &resp); err != nil {
			t.Fatal(err)
		}
		var back peersResponse
		if err := ReadMsg(bufio.NewReader(&buf), &back, maxPeersMsg); err != nil {
			t.Fatalf("the reply does not fit the asker's limit: %v", err)
		}
	})
}
