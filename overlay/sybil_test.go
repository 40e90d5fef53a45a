package overlay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// The Sybil and eclipse tests: honest nodes each on an address of their own
// (127.0.0.N), attackers with many identities on one address.

// sybilAddr is the one address every Sybil of these tests uses; the honest
// nodes' addresses (testnet.LoopbackAddr) are others.
const sybilAddr = "127.0.3.1"

// prover proves the keys of many identities to a victim from one UDP
// socket, as an attacker's program would: for each identity it pings the
// victim, and answers the victim's challenge with a signed Pong.
type prover struct {
	pc     net.PacketConn
	to     net.Addr
	victim overlay.ID
	net    [8]byte
	buf    []byte
}

func newProver(t *testing.T, victim *ovnet.Node) *prover {
	pc, err := net.ListenPacket("udp", sybilAddr+":0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	return &prover{pc: pc, to: victim.Sock.LocalAddr(), victim: victim.ID(), net: wire.NetworkTag(victim.Network()),
		buf: make([]byte, 2048)}
}

// prove pings the victim as priv and answers its challenge; it reports
// whether a challenge came within a second.
func (p *prover) prove(priv ed25519.PrivateKey) bool {
	id := [32]byte(priv.Public().(ed25519.PublicKey))
	hdr := func(typ byte) []byte {
		return wire.AppendHeader(nil, wire.Header{Type: typ, Net: p.net, Sender: id})
	}
	p.pc.WriteTo(wire.Ping{Nonce: 1, Pad: wire.ProbeLen - wire.PingLen}.Append(hdr(wire.TypePing)), p.to) // padded: a stranger's Ping is answered within its size
	p.pc.SetReadDeadline(time.Now().Add(time.Second))
	for {
		n, _, err := p.pc.ReadFrom(p.buf)
		if err != nil {
			return false
		}
		h, body, err := wire.ParseHeader(p.buf[:n])
		if err != nil || h.Type != wire.TypePing {
			continue // the victim's Pong
		}
		// The challenge is the one Ping that asks for proof unpadded; the
		// victim's own padded Pings with proof (of the Sybils it holds or
		// caches, once they fall silent) are for earlier identities:
		// answering one as this identity would take the place of its
		// challenge, which the next identity would then answer, and so on.
		pg, err := wire.ParsePing(body)
		if err != nil || pg.Flags&wire.FlagWantProof == 0 || pg.Pad != 0 {
			continue
		}
		b := wire.Pong{Nonce: pg.Nonce}.Append(hdr(wire.TypePong))
		b = append(b, ed25519.Sign(priv, wire.PongSigned(b, p.victim))...)
		p.pc.WriteTo(b, p.to)
		return true
	}
}

// keyNear returns a key whose ID shares at least bits leading bits with k
// (2^bits key generations on average).
func keyNear(t testing.TB, k overlay.Key, bits int) ed25519.PrivateKey {
	t.Helper()
	for {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		if sharedBits(overlay.ID(priv.Public().(ed25519.PublicKey)).Key(), k) >= bits {
			return priv
		}
	}
}

func sharedBits(a, b overlay.Key) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			n := i * 8
			for m := byte(0x80); m != 0 && x&m == 0; m >>= 1 {
				n++
			}
			return n
		}
	}
	return 256
}

// TestEclipseFromOneAddressIsBounded: thousands of identities, a tenth of
// them ground next to the victim's ID, prove their keys to the victim from
// one address. Its routing table takes at most Config.SubnetPerTable of
// them, keeps every honest contact, its nearest neighbours stay honest but
// for Config.SubnetPerBucket, and honest messages still reach it.
func TestEclipseFromOneAddressIsBounded(t *testing.T) {
	testnet.CheckLeaks(t)
	const honest, sybils, near = 8, 2000, 200
	// The strangers' rate limit (Config.StrangerRate) is lifted: this test is about
	// what the table takes, not how fast proofs come.
	tn := loopback(t, honest, overlay.Config{StrangerRate: 1 << 20, StrangerRateTotal: 1 << 20})
	victim := tn.Nodes[0]
	before := victim.Contacts()
	require.NotEmpty(t, before)

	p := newProver(t, victim)
	proved := 0
	for i := range sybils {
		priv := keyNear(t, victim.ID().Key(), 0)
		if i < near {
			priv = keyNear(t, victim.ID().Key(), 8)
		}
		if p.prove(priv) {
			proved++
		}
	}
	t.Logf("%d of %d identities proved their keys", proved, sybils)
	require.Greater(t, proved, sybils/2)
	testnet.Eventually(t, 5*time.Second, "the victim refuses the rest", func() bool {
		c := victim.Info().Counters
		return c.RefusedSubnetBucket+c.RefusedSubnetTable >= uint64(proved/2)
	})

	isSybil := func(a netip.AddrPort) bool { return a.Addr().String() == sybilAddr }
	fromSybils := 0
	for _, c := range victim.DirectContacts(1 << 20) {
		if isSybil(c.Addr) {
			fromSybils++
		}
	}
	t.Logf("table: %d contacts, %d from the Sybils' address", len(victim.Contacts()), fromSybils)
	require.LessOrEqual(t, fromSybils, 8, "contacts from one address beyond Config.SubnetPerTable")
	contacts := victim.Contacts()
	for _, id := range before {
		require.Contains(t, contacts, id, "an honest contact was pushed out")
	}
	honestIDs := map[overlay.ID]bool{}
	for _, nd := range tn.Nodes {
		honestIDs[nd.ID()] = true
	}
	nearest := victim.Closest(victim.ID().Key(), 20)
	bad := 0
	for _, id := range nearest {
		if !honestIDs[id] {
			bad++
		}
	}
	require.LessOrEqual(t, bad, 2, "Sybils among the victim's nearest beyond Config.SubnetPerBucket")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, tn.Nodes[honest-1].Send(ctx, []byte("still reachable"), victim.ID().Key(), false))
	require.Equal(t, victim.ID(), tn.expect([]byte("still reachable")).at)
}

// TestSybilsNearKeyFromOneAddress: 50 identities ground next to a key join
// a network of 30 honest nodes from one address. The nodes an honest
// lookup of the key returns, and the nearest an honest node knows, hold at
// most Config.SubnetPerBucket of them.
func TestSybilsNearKeyFromOneAddress(t *testing.T) {
	testnet.CheckLeaks(t)
	if testing.Short() {
		t.Skip("starts 80 nodes")
	}
	const honest, sybils = 30, 50
	key := overlay.KeyOf([]byte("room:lobby"))
	tn := ovnet.Loopback(t, honest, overlay.Config{}, nil)

	keys := make([]ed25519.PrivateKey, sybils)
	ids := map[overlay.ID]bool{}
	for i := range keys {
		keys[i] = keyNear(t, key, 9)
		ids[overlay.ID(keys[i].Public().(ed25519.PublicKey))] = true
	}
	var (
		mu    sync.Mutex
		nodes []*ovnet.Node
		errs  []error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 10)
	)
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Close()
		}
	})
	for i, priv := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cfg := overlay.Config{Identity: priv, SendTimeout: 3 * time.Second, Logger: testnet.Logger(t)}
			nd, err := ovnet.Open(cfg, sybilAddr+":0", nil, nil)
			if err == nil {
				err = nd.Bind([]string{tn.Nodes[i%honest].Addr()})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			nodes = append(nodes, nd)
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))

	for i := range 10 {
		nd := tn.Nodes[(i*3)%honest]
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		found, err := nd.Lookup(ctx, key)
		cancel()
		require.NoError(t, err)
		n := 0
		for _, id := range found {
			if ids[id] {
				n++
			}
		}
		t.Logf("lookup %d: %d nodes, %d Sybils", i, len(found), n)
		require.LessOrEqual(t, n, 2, "Sybils of one address in a lookup's result beyond Config.SubnetPerBucket")
		require.Greater(t, len(found)-n, 10, "a lookup found too few honest nodes")
		n = 0
		for _, id := range nd.Closest(key, 20) {
			if ids[id] {
				n++
			}
		}
		require.LessOrEqual(t, n, 2, "Sybils of one address among the nearest an honest node knows")
	}
}

// TestIdentityWithoutWorkIsRefused: in a network that requires 8 bits of
// work, a node whose ID lacks them cannot start, frames from such an ID are
// dropped and counted, and an ID with the work is taken as a contact.
func TestIdentityWithoutWorkIsRefused(t *testing.T) {
	testnet.CheckLeaks(t)
	const d = 8
	lazy := keyNear(t, overlay.Key{}, 0)
	for overlay.HasWork(overlay.ID(lazy.Public().(ed25519.PublicKey)), d) {
		lazy = keyNear(t, overlay.Key{}, 0)
	}
	_, err := overlay.New(overlay.Config{Identity: lazy, Difficulty: d}, nil)
	require.ErrorIs(t, err, overlay.ErrDifficulty)

	tn := loopback(t, 3, overlay.Config{Difficulty: d})
	victim := tn.Nodes[0]
	for _, nd := range tn.Nodes {
		require.GreaterOrEqual(t, overlay.Work(nd.ID()), d)
	}
	p := newProver(t, victim)
	require.False(t, p.prove(lazy), "the victim challenged an ID without the work")
	require.Positive(t, victim.Info().Counters.DroppedNoWork)
	require.NotContains(t, victim.Contacts(), overlay.ID(lazy.Public().(ed25519.PublicKey)))

	worker, err := overlay.NewIdentityKey(context.Background(), d)
	require.NoError(t, err)
	require.True(t, p.prove(worker))
	testnet.Eventually(t, 5*time.Second, "the ID with the work is a contact", func() bool {
		return slices.Contains(victim.Contacts(), overlay.ID(worker.Public().(ed25519.PublicKey)))
	})
}
