package group

import (
	"bytes"
	"crypto/ed25519"
	"net"
	"net/netip"
	"testing"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
	"github.com/stretchr/testify/require"
)

// nowhere is a transport that sends nothing: the fuzzed node has no
// contacts, so whatever it starts in the background fails at once.
type nowhere struct{}

func (nowhere) WriteTo(b []byte, addr net.Addr) error { return nil }
func (nowhere) LocalAddr() net.Addr                   { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000} }

var netipLoopback = netip.MustParseAddrPort("127.0.0.1:5000")

func key(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func newFuzzGroups(t testing.TB) (*Groups, *overlay.Overlay) {
	ov, err := overlay.New(overlay.Config{Identity: key(1), Network: "fuzz", Difficulty: -1}, nowhere{})
	require.NoError(t, err)
	return New(ov, Config{}), ov
}

// sealBy is an envelope of kind for group k with data, signed by priv in
// network "fuzz".
func sealBy(priv ed25519.PrivateKey, kind byte, k overlay.Key, data []byte) *wire.Envelope {
	e := &wire.Envelope{Kind: kind, Group: k, Origin: [32]byte(priv.Public().(ed25519.PublicKey)), MsgID: [16]byte{byte(kind), 7}, Data: data}
	e.Sig = ed25519.Sign(priv, wire.EnvelopeSigned(wire.NetworkTag("fuzz"), e.AppendUnsigned(nil)))
	return e
}

// FuzzHandle feeds one group message, from another node, to the group
// service: whatever the bytes, it must not panic, and the service closes.
func FuzzHandle(f *testing.F) {
	other := key(2)
	k := overlay.Key{9}
	self := overlay.ID(key(1).Public().(ed25519.PublicKey))
	mc := sealBy(other, wire.EnvMulticast, k, []byte("multicast")).Append(nil)
	ac := sealBy(other, wire.EnvAnycast, k, []byte("anycast"))
	bc := sealBy(other, wire.EnvBroadcast, overlay.Key{}, []byte("all")).Append(nil)
	forged := bytes.Clone(mc)
	forged[len(forged)-1] ^= 1
	// A Redirect naming a node closer to k than this one (all zeros but the
	// first byte of k: XOR distance 0 in the first byte).
	closer := overlay.ID(k)
	for _, m := range []wire.GroupMsg{
		{Type: wire.GroupJoin, Group: k},
		{Type: wire.GroupJoin, Group: k, Flags: wire.GroupFlagMember},
		{Type: wire.GroupLeave, Group: k},
		{Type: wire.GroupPublish, Envelope: mc},
		{Type: wire.GroupData, Envelope: mc},
		{Type: wire.GroupData, Envelope: forged},
		{Type: wire.GroupData, Envelope: bc}, // the wrong kind
		{Type: wire.GroupAny, Envelope: ac.Append(nil)},
		{Type: wire.GroupAny, Down: 1, Envelope: ac.Append(nil)},
		{Type: wire.GroupAnyResult, MsgID: ac.MsgID, Status: wire.AnyEmpty},
		{Type: wire.GroupBcast, Height: 3, Envelope: bc},
		{Type: wire.GroupRoot, Group: k},
		{Type: wire.GroupRedirect, Group: k, Target: closer, Flags: wire.GroupFlagPublic, Addr: netipLoopback},
		{Type: wire.GroupRedirect, Group: k, Target: closer},
		{Type: wire.GroupRedirect, Group: k, Target: self, Flags: wire.GroupFlagPublic},
	} {
		f.Add(m.Append(nil))
	}
	for _, seed := range [][]byte{{wire.GroupJoin}, {0}, {}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, ov := newFuzzGroups(t)
		from := overlay.ID(other.Public().(ed25519.PublicKey))
		g.handle(overlay.Message{Data: data, From: from, To: self.Key(), Service: wire.ServiceGroup})
		// The link path hands the same bytes to the same handler.
		g.handle(overlay.Message{Data: data, From: from, To: self.Key(), Service: wire.ServiceGroup})
		ov.Close() // background sends end at once
		g.Close()
	})
}
