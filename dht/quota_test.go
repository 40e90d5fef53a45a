package dht

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

// signer is an identity that signs operations: a node's, or one ground
// by an attacker that a node of its sends on.
type signer struct {
	id   overlay.ID
	sign func([]byte) []byte
}

func newSigner(t *testing.T) signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return signer{id: overlay.ID(pub), sign: func(b []byte) []byte { return ed25519.Sign(priv, b) }}
}

func nodeSigner(d *DHT) signer { return signer{id: d.ov.ID(), sign: d.ov.Sign} }

// storeReq is a Store request for an operation s signs.
func (s signer) storeReq(d *DHT, op byte, seq uint64, key string, value []byte) []byte {
	o := &signedOp{op: op, owner: s.id, seq: seq, expires: time.Now().Add(time.Hour).UnixMilli(), key: key, value: value}
	o.sign(s.sign, d.net)
	return append([]byte{reqStore}, o.raw...)
}

// storeAt hands replica a Store request as if the node from had sent it over
// the network, and returns the status.
func storeAt(t *testing.T, replica *DHT, from overlay.ID, req []byte) byte {
	t.Helper()
	reply, ok := replica.handle(overlay.Message{Data: req, From: from})
	require.True(t, ok)
	require.Len(t, reply, 1)
	return reply[0]
}

// One identity that writes as fast as it can takes its share of a
// replica (Config.OwnerPercent of the records), not the replica: the
// stores past it are refused and counted, and other owners still store.
func TestLoopbackDHTOwnerCannotFillReplica(t *testing.T) {
	testnet.CheckLeaks(t)
	const records = 1000
	tn := newLoopbackDHT(t, 3, Config{MaxRecords: records})
	replica, attacker, honest := tn.dhts[0], tn.dhts[1], tn.dhts[2]
	flood := nodeSigner(attacker)
	kept := 0
	for i := range records {
		if storeAt(t, replica, flood.id, flood.storeReq(replica, opAdd, uint64(i+1), fmt.Sprintf("k%d", i), []byte("x"))) == statusOK {
			kept++
		}
	}
	st := replica.Stats()
	t.Logf("one owner flooding %d adds: %d kept, stats %+v", records, kept, st)
	require.Equal(t, records*2/100, kept, "one owner holds its 2 %% share")
	require.Equal(t, uint64(records-kept), st.RefusedOwner, "the refusals are counted")
	me := nodeSigner(honest)
	for i := range 10 {
		require.Equal(t, statusOK, storeAt(t, replica, me.id, me.storeReq(replica, opAdd, uint64(i+1), fmt.Sprintf("h%d", i), []byte("v"))))
	}
}

// Identities ground by one machine (fresh keys, sent from one node) share
// the share of their subnet (Config.SubnetPercent); an owner on another
// network still stores.
func TestLoopbackDHTSybilsShareTheirSubnetsShare(t *testing.T) {
	testnet.CheckLeaks(t)
	const records = 1000
	tn := newLoopbackDHT(t, 3, Config{MaxRecords: records})
	replica, attacker, honest := tn.dhts[0], tn.dhts[1], tn.dhts[2]
	kept := 0
	for range 50 {
		sybil := newSigner(t)
		for i := range 20 {
			if storeAt(t, replica, attacker.ov.ID(), sybil.storeReq(replica, opAdd, uint64(i+1), fmt.Sprintf("k%d", i), []byte("x"))) == statusOK {
				kept++
			}
		}
	}
	st := replica.Stats()
	t.Logf("50 identities from one address, 1000 adds: %d kept, stats %+v", kept, st)
	require.Equal(t, records*10/100, kept, "the subnet holds its 10 %% share")
	require.Equal(t, uint64(1000-kept), st.RefusedSubnet)
	me := nodeSigner(honest)
	require.Equal(t, statusOK, storeAt(t, replica, me.id, me.storeReq(replica, opAdd, 1, "h", []byte("v"))))
}

// When a replica is full, a writer holding less than the heaviest one still
// stores: records of the heaviest are evicted for it, and the heaviest's
// own stores are refused. Bytes are bounded by MaxBytes throughout.
func TestLoopbackDHTFullReplicaEvictsTheHeaviest(t *testing.T) {
	testnet.CheckLeaks(t)
	const maxBytes = 1 << 20
	tn := newLoopbackDHT(t, 3, Config{MaxBytes: maxBytes, OwnerPercent: 100, SubnetPercent: 100})
	replica, attacker, honest := tn.dhts[0], tn.dhts[1], tn.dhts[2]
	flood := nodeSigner(attacker)
	value := make([]byte, 50<<10)
	for i := range 40 { // 2 MiB of values for a 1 MiB store
		storeAt(t, replica, flood.id, flood.storeReq(replica, opAdd, uint64(i+1), fmt.Sprintf("k%d", i), value))
		require.LessOrEqual(t, replica.Stats().Bytes, int64(maxBytes))
	}
	before := replica.Stats()
	require.Positive(t, before.RefusedOwner+before.RefusedFull, "the flood ran into the budget")
	me := nodeSigner(honest)
	for i := range 5 {
		require.Equal(t, statusOK, storeAt(t, replica, me.id, me.storeReq(replica, opAdd, uint64(i+1), fmt.Sprintf("h%d", i), value)),
			"an honest store into a full replica, %d", i)
	}
	after := replica.Stats()
	t.Logf("full replica: before %+v, after %+v", before, after)
	require.Equal(t, uint64(5), after.Evicted-before.Evicted, "each honest store evicted one record of the flood")
	require.LessOrEqual(t, after.Bytes, int64(maxBytes))
	require.Equal(t, statusQuota, storeAt(t, replica, flood.id, flood.storeReq(replica, opAdd, 100, "more", value)),
		"the heaviest writer cannot evict a lighter one")
	for i := range 5 {
		require.True(t, holds(replica, fmt.Sprintf("h%d", i), string(value)))
	}
}

// A tombstone keeps the removed value's hash, not the value, and counts
// against its owner's share: removals cannot grow a replica without bound.
func TestLoopbackDHTTombstonesAreSmallAndCounted(t *testing.T) {
	testnet.CheckLeaks(t)
	const records = 1000
	tn := newLoopbackDHT(t, 3, Config{MaxRecords: records})
	replica, attacker, honest := tn.dhts[0], tn.dhts[1], tn.dhts[2]
	flood := nodeSigner(attacker)
	big := make([]byte, 60<<10)
	require.Equal(t, statusInvalid, storeAt(t, replica, flood.id, flood.storeReq(replica, opRemove, 1, "k", big)),
		"a removal carrying a value rather than its hash is invalid")
	kept := 0
	for i := range records {
		v := fmt.Appendf(nil, "%d", i)
		if storeAt(t, replica, flood.id, flood.storeReq(replica, opRemove, uint64(i+1), "k", []byte(valueHash(v)))) == statusOK {
			kept++
		}
	}
	st := replica.Stats()
	t.Logf("%d removals: %+v", records, st)
	require.Equal(t, records*2/100, kept)
	require.Equal(t, kept, st.Tombstones)
	require.Less(t, st.Bytes, int64(kept*1024), "a tombstone costs well under 1 KiB")
	require.Equal(t, uint64(records-kept), st.RefusedOwner)

	// Remove through the API: the replicas keep a tombstone of ~400 bytes
	// for a 60 KiB value, and the value is gone.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, honest.Add(ctx, "big", big, 0))
	require.NoError(t, honest.Remove(ctx, "big", big))
	rs, err := tn.dhts[1].Get(ctx, "big")
	require.NoError(t, err)
	require.Empty(t, rs)
	for _, op := range replica.st.get("big", overlay.ID{}, time.Now()) {
		require.Less(t, len(op.raw), 1024, "what a replica holds after a removal of a 60 KiB value")
	}
}

// Watch registrations are bounded per replica and per watching node.
func TestLoopbackDHTWatchRegistrationsAreBounded(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 2, Config{MaxWatchers: 100})
	replica, watcher := tn.dhts[0], tn.dhts[1]
	refused := 0
	for i := range 50 {
		req := append([]byte{reqWatch}, 0, byte(len(fmt.Sprint(i))))
		req = append(req, fmt.Sprint(i)...)
		req = append(req, 0, 0, 0xea, 0x60)
		if reply, _ := replica.handle(overlay.Message{Data: req, From: watcher.ov.ID()}); reply[0] != statusOK {
			refused++
		}
	}
	st := replica.Stats()
	require.Equal(t, 2, st.Watchers, "one node holds 2 %% of MaxWatchers")
	require.Equal(t, uint64(48), st.RefusedWatches)
	require.Equal(t, 48, refused)
}

// Identities that write from nodes the replica has no direct path to (whose
// address it does not know) share one account of the subnet's size: writing
// from afar does not escape the subnet share.
func TestLoopbackDHTUnknownWritersShareOneAccount(t *testing.T) {
	testnet.CheckLeaks(t)
	const records = 1000
	tn := newLoopbackDHT(t, 2, Config{MaxRecords: records})
	replica, honest := tn.dhts[0], tn.dhts[1]
	kept := 0
	for range 50 {
		far := newSigner(t) // its own node, never linked with the replica
		for i := range 20 {
			if storeAt(t, replica, far.id, far.storeReq(replica, opAdd, uint64(i+1), fmt.Sprintf("k%d", i), []byte("x"))) == statusOK {
				kept++
			}
		}
	}
	st := replica.Stats()
	t.Logf("50 identities from unknown addresses, 1000 adds: %d kept, stats %+v", kept, st)
	require.Equal(t, records*10/100, kept)
	require.Equal(t, uint64(1000-kept), st.RefusedSubnet)
	me := nodeSigner(honest)
	require.Equal(t, statusOK, storeAt(t, replica, me.id, me.storeReq(replica, opAdd, 1, "h", []byte("v"))), "a linked writer has its own share")
}
