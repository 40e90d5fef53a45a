package dht

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
	"github.com/stretchr/testify/require"
)

var fuzzNet = wire.NetworkTag("p2psock")

func fuzzOp(t testing.TB, op byte, key string, value []byte) *signedOp {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	s := &signedOp{op: op, owner: overlay.ID(priv.Public().(ed25519.PublicKey)), seq: 7, expires: time.Now().Add(time.Hour).UnixMilli(), key: key, value: value}
	s.sign(func(b []byte) []byte { return ed25519.Sign(priv, b) }, fuzzNet)
	return s
}

func getReply(total int, ops ...*signedOp) []byte {
	b := binary.BigEndian.AppendUint32([]byte{statusOK}, uint32(total))
	b = binary.BigEndian.AppendUint16(b, uint16(len(ops)))
	for _, op := range ops {
		b = binary.BigEndian.AppendUint32(b, uint32(len(op.raw)))
		b = append(b, op.raw...)
	}
	return b
}

// FuzzParseOp checks that parseOp never panics and that what it accepts is
// consistent: the encoding it was given, a known operation, a verified
// signature.
func FuzzParseOp(f *testing.F) {
	f.Add(fuzzOp(f, opAdd, "k", []byte("v")).raw)
	f.Add(fuzzOp(f, opRemove, "key", []byte(valueHash([]byte("value")))).raw)
	f.Add(fuzzOp(f, opDelete, "key", nil).raw)
	f.Add(fuzzOp(f, opAdd, "", nil).raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := parseOp(bytes.Clone(data), fuzzNet)
		if err != nil {
			return
		}
		require.Equal(t, data, op.raw)
		require.True(t, op.op >= opAdd && op.op <= opDelete)
		require.Equal(t, opOverhead+len(op.key)+len(op.value), len(data))
		require.True(t, overlay.Verify(op.owner, append(signedPrefix(fuzzNet), data[:len(data)-64]...), op.sig))
	})
}

// FuzzParseGetReply checks the decoding of a replica's Get reply: no panic,
// and only verified operations under the asked key come out.
func FuzzParseGetReply(f *testing.F) {
	a := fuzzOp(f, opAdd, "k", []byte("one"))
	b := fuzzOp(f, opAdd, "other", []byte("two"))
	f.Add(getReply(2, a, b))
	f.Add(getReply(0))
	f.Add(getReply(9, a)[:20])
	f.Add([]byte{statusInvalid})
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, count, _, err := parseGetReply(data, "k", fuzzNet)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(ops), count)
		for _, op := range ops {
			require.Equal(t, "k", op.key)
		}
	})
}

// FuzzHandle feeds requests from another node to a DHT node's handler: no
// panic, and an answer to every request type.
func FuzzHandle(f *testing.F) {
	nd, err := ovnet.Open(overlay.Config{}, "127.0.0.1:0", nil, nil)
	require.NoError(f, err)
	d, err := New(nd.Overlay, Config{})
	require.NoError(f, err)
	f.Cleanup(func() {
		d.Close()
		nd.Close()
	})
	key := func(k string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(k))), k...) }
	a := fuzzOp(f, opAdd, "k", []byte("v"))
	owner := a.owner
	f.Add(append([]byte{reqStore}, a.raw...))
	f.Add(append([]byte{reqStore}, fuzzOp(f, opDelete, "k", nil).raw...))
	f.Add(append([]byte{reqStore}, fuzzOp(f, opRemove, "k", []byte(valueHash([]byte("v")))).raw...))
	f.Add(binary.BigEndian.AppendUint32(append(append([]byte{reqGet}, key("k")...), owner[:]...), 0))
	f.Add(binary.BigEndian.AppendUint32(append([]byte{reqWatch}, key("k")...), 30000))
	f.Add(append([]byte{reqEvent, byte(EventAdded)}, a.raw...))
	f.Add([]byte{reqGet, 0xFF, 0xFF})
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return // refused unacknowledged: the sender retries
		}
		from := overlay.ID(owner)
		_, ok := d.handle(overlay.Message{Data: bytes.Clone(data), From: from, Service: wire.ServiceDHT})
		require.True(t, ok, "every request is answered")
	})
}
