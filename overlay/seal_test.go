package overlay

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/wire"
)

// sealNet is three in-memory overlays that seal to each other: no link is
// needed to seal or open.
func sealNet(t *testing.T) (a, b, c *Overlay) {
	t.Helper()
	n := newFakeNet()
	t.Cleanup(n.closeAll)
	return n.add(t, keyA, addrA, 0), n.add(t, keyB, addrB, 0), n.add(t, keyC, addrC, 0)
}

// sealedHeader returns the header of a data message from o to dest.
func sealedHeader(o *Overlay, dest ID) wire.MsgHeader {
	h := wire.MsgHeader{Kind: wire.KindData, Mode: wire.ModeID, Service: wire.ServiceDHT, Origin: o.self, Dest: dest.Key(),
		Timestamp: time.Now().UnixMilli()}
	rand.Read(h.MsgID[:])
	return h
}

func TestSealKeysMatch(t *testing.T) {
	// The X25519 public key mapped from an ID is the public key of the
	// private key derived from the identity.
	for range 50 {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		fromID, err := x25519Public(ID(pub))
		require.NoError(t, err)
		k, err := x25519Private(priv)
		require.NoError(t, err)
		require.Equal(t, k.PublicKey().Bytes(), fromID.Bytes())
	}
	t.Run("libsodium vector", func(t *testing.T) {
		// libsodium test/default/ed25519_convert.c
		seed, _ := hex.DecodeString("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee")
		priv := ed25519.NewKeyFromSeed(seed)
		pub, err := x25519Public(ID(priv.Public().(ed25519.PublicKey)))
		require.NoError(t, err)
		require.Equal(t, "f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50", hex.EncodeToString(pub.Bytes()))
		k, err := x25519Private(priv)
		require.NoError(t, err)
		require.Equal(t, "8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166", hex.EncodeToString(k.Bytes()))
	})
	t.Run("no key for the neutral point", func(t *testing.T) {
		_, err := x25519Public(ID{1}) // y = 1
		require.ErrorIs(t, err, errBadSealKey)
	})
}

func TestSealOpen(t *testing.T) {
	a, b, c := sealNet(t)
	plain := []byte("a payload only b may read")
	h := sealedHeader(a, b.self)
	ct, err := a.seal(&h, plain)
	require.NoError(t, err)
	require.True(t, h.Sealed)
	require.Equal(t, len(plain)+wire.SealOverhead, int(h.Length))
	require.Len(t, ct, int(h.Length))
	require.False(t, bytes.Contains(ct, plain[:8]))

	got, ok := b.open(h, ct)
	require.True(t, ok)
	require.Equal(t, plain, got)
	require.Zero(t, b.counters().DroppedUndecryptable)

	t.Run("another recipient", func(t *testing.T) {
		hc := h
		hc.Dest = c.self.Key() // as if it had been routed to c
		_, ok := c.open(hc, ct)
		require.False(t, ok)
		_, ok = c.open(h, ct)
		require.False(t, ok, "a node does not open what is not addressed to it")
		require.Equal(t, uint64(2), c.counters().DroppedUndecryptable)
	})
	t.Run("bound to the header", func(t *testing.T) {
		for name, mod := range map[string]func(*wire.MsgHeader){
			"origin":    func(h *wire.MsgHeader) { h.Origin = c.self }, // re-signed by another node
			"msgID":     func(h *wire.MsgHeader) { h.MsgID[0] ^= 1 },
			"timestamp": func(h *wire.MsgHeader) { h.Timestamp++ },
			"service":   func(h *wire.MsgHeader) { h.Service = wire.ServiceApp },
			"kind":      func(h *wire.MsgHeader) { h.Kind = wire.KindAck },
		} {
			m := h
			mod(&m)
			before := b.counters().DroppedUndecryptable
			_, ok := b.open(m, ct)
			require.False(t, ok, name)
			require.Equal(t, before+1, b.counters().DroppedUndecryptable, name)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x10
			_, ok := b.open(h, bad)
			require.False(t, ok, "byte %d", i)
		}
	})
	t.Run("clear messages pass", func(t *testing.T) {
		hk := h
		hk.Sealed = false
		got, ok := b.open(hk, plain)
		require.True(t, ok)
		require.Equal(t, plain, got)
	})
}

func TestSealPolicy(t *testing.T) {
	a, b, _ := sealNet(t)
	tests := []struct {
		name   string
		mod    func(*wire.MsgHeader)
		data   []byte
		sealed bool
	}{
		{"data by ID", nil, []byte("x"), true},
		{"empty data by ID", nil, nil, true},
		{"ack with a reply", func(h *wire.MsgHeader) { h.Kind = wire.KindAck }, []byte("reply"), true},
		{"empty ack", func(h *wire.MsgHeader) { h.Kind = wire.KindAck }, nil, false},
		{"nack", func(h *wire.MsgHeader) { h.Kind = wire.KindNack }, []byte{wire.NackNoRoute}, false},
		{"data by key", func(h *wire.MsgHeader) { h.Mode = wire.ModeKey }, []byte("x"), false},
		{"data to itself", func(h *wire.MsgHeader) { h.Dest = a.self.Key() }, []byte("x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sealedHeader(a, b.self)
			if tt.mod != nil {
				tt.mod(&h)
			}
			out, err := a.seal(&h, tt.data)
			require.NoError(t, err)
			require.Equal(t, tt.sealed, h.Sealed)
			require.Equal(t, len(out), int(h.Length))
			if !tt.sealed {
				require.Equal(t, tt.data, out)
			}
		})
	}
	t.Run("no key", func(t *testing.T) {
		for _, id := range []ID{{1}, {}} { // y = 1; y = 0, which maps to a point of small order
			h := sealedHeader(a, id)
			_, err := a.seal(&h, []byte("x"))
			require.ErrorIs(t, err, errBadSealKey, "%x", id)
		}
	})
	t.Run("off", func(t *testing.T) {
		a.sealer.off.Store(true)
		defer a.sealer.off.Store(false)
		h := sealedHeader(a, b.self)
		out, err := a.seal(&h, []byte("x"))
		require.NoError(t, err)
		require.False(t, h.Sealed)
		require.Equal(t, []byte("x"), out)
	})
}

func TestSealKeyCacheBounded(t *testing.T) {
	a, _, _ := sealNet(t)
	for i := range maxSealKeys + 100 {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		_, err = a.sealKey(ID(pub))
		require.NoError(t, err)
		require.LessOrEqual(t, a.sealedKeys(), maxSealKeys, "after %d keys", i+1)
	}
	require.Equal(t, maxSealKeys, a.sealedKeys())
}

// FuzzOpen opens fuzzed sealed messages at B: nothing panics, nothing but
// what A sealed for B under that very header opens, and what A sealed opens
// to its plaintext.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("hello"), []byte{}, byte(0), uint16(0), false)
	f.Add([]byte{}, bytes.Repeat([]byte{7}, wire.SealOverhead), byte(1), uint16(3), true)
	f.Add(bytes.Repeat([]byte("p"), 2000), bytes.Repeat([]byte{1}, 100), byte(2), uint16(1999), true)
	n := newFakeNet()
	defer n.closeAll()
	a, b := n.add(f, keyA, addrA, 0), n.add(f, keyB, addrB, 0)
	f.Fuzz(func(t *testing.T, plain, junk []byte, service byte, flip uint16, sealedJunk bool) {
		if len(plain) > 4096 || len(junk) > 4096 {
			return
		}
		h := sealedHeader(a, b.self)
		h.Service = service
		ct, err := a.seal(&h, plain)
		require.NoError(t, err)
		got, ok := b.open(h, ct)
		require.True(t, ok)
		require.Equal(t, string(plain), string(got))

		bad := bytes.Clone(ct)
		bad[int(flip)%len(bad)] ^= 1 << (flip % 8)
		_, ok = b.open(h, bad)
		require.False(t, ok, "a spoiled ciphertext does not open")

		j := h
		j.Sealed, j.Length = sealedJunk, uint32(len(junk))
		got, ok = b.open(j, junk)
		if sealedJunk {
			require.False(t, ok, "junk does not open")
		} else {
			require.True(t, ok)
			require.Equal(t, junk, got)
		}
	})
}

// BenchmarkSealOpen measures sealing a 100-byte payload at the origin and
// opening it at the destination, the CPU sealing adds to a message by ID
// (the recipient's key cached).
func BenchmarkSealOpen(b *testing.B) {
	n := newFakeNet()
	defer n.closeAll()
	a, r := n.add(b, keyA, addrA, 0), n.add(b, keyB, addrB, 0)
	plain := make([]byte, 100)
	h := sealedHeader(a, r.self)
	for b.Loop() {
		m := h
		ct, err := a.seal(&m, plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := r.open(m, ct); !ok {
			b.Fatal("does not open")
		}
	}
}
