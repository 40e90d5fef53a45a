package group

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
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
	ov, err := overlay.New(overlay.Config{Identity: key(1), Network: "fuzz"}, nowhere{})
	require.NoError(t, err)
	priv := key(1)
	return New(ov, func(b []byte) []byte { return ed25519.Sign(priv, b) }, "fuzz", nil), ov
}

// FuzzHandle feeds one group message, from another node, to the group
// service: whatever the bytes, it must not panic, and the service closes.
func FuzzHandle(f *testing.F) {
	other := key(2)
	sign := func(b []byte) []byte { return ed25519.Sign(other, b) }
	tag := wire.NetworkTag("fuzz")
	k := overlay.Key{9}
	self := overlay.ID(key(1).Public().(ed25519.PublicKey))
	mc := seal(kindMulticast, k, overlay.ID(other.Public().(ed25519.PublicKey)), []byte("multicast"), sign, tag)
	ac := seal(kindAnycast, k, overlay.ID(other.Public().(ed25519.PublicKey)), []byte("anycast"), sign, tag)
	bc := seal(kindBroadcast, overlay.Key{}, overlay.ID(other.Public().(ed25519.PublicKey)), []byte("all"), sign, tag)
	forged := bytes.Clone(mc.raw)
	forged[len(forged)-1] ^= 1
	// A Redirect naming a node closer to k than this one (all zeros but the
	// first byte of k: XOR distance 0 in the first byte).
	closer := overlay.ID(k)
	redirect := append(append(append([]byte{msgRedirect}, k[:]...), closer[:]...), 1)
	for _, seed := range [][]byte{
		append([]byte{msgJoin}, k[:]...),
		append([]byte{msgLeave}, k[:]...),
		append([]byte{msgPublish}, mc.raw...),
		append([]byte{msgData}, mc.raw...),
		append([]byte{msgData}, forged...),
		append([]byte{msgAny, 0}, ac.raw...),
		append([]byte{msgAny, 1}, ac.raw...),
		append(append([]byte{msgAnyResult}, ac.msgID[:]...), anyEmpty),
		append(binary.BigEndian.AppendUint16([]byte{msgBcast}, 3), bc.raw...),
		append([]byte{msgRoot}, k[:]...),
		wire.AppendAddr(bytes.Clone(redirect), netipLoopback),
		append(bytes.Clone(redirect), 0),
		append(append(append([]byte{msgRedirect}, k[:]...), self[:]...), 1, 0),
		{msgJoin},
		{0},
		{},
	} {
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
