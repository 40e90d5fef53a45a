package sim_test

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/p2psock/p2psock/internal/sim"
	"github.com/p2psock/p2psock/internal/simhook"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// seed fills the routing tables of nodes (on hosts 0..len(nodes)-1 of nw)
// from the global view, the way PeerSim and similar simulators initialise:
// for every bucket of a node's table, up to k nodes drawn at random from
// the nodes whose IDs share exactly that many leading bits with its own
// (all of them in the deep buckets, so a node knows its closest nodes),
// with the RTT of the latency model, last heard from at a random moment of
// the node's liveness interval (simhook.Peer.Heard). Each node's own code
// runs from there.
func seed(nw *sim.Network, nodes []*ovnet.Node, k int, rng *rand.Rand) {
	type entry struct {
		key  overlay.Key
		node int
	}
	sorted := make([]entry, len(nodes))
	for i, nd := range nodes {
		sorted[i] = entry{nd.ID().Key(), i}
	}
	slices.SortFunc(sorted, func(a, b entry) int { return bytes.Compare(a.key[:], b.key[:]) })
	// span is the range of sorted whose keys start with the first bits of
	// prefix.
	span := func(prefix overlay.Key, bits int) (int, int) {
		lo, hi := prefix, prefix
		for i := bits; i < 256; i++ {
			lo[i/8] &^= 0x80 >> (i % 8)
			hi[i/8] |= 0x80 >> (i % 8)
		}
		from, _ := slices.BinarySearchFunc(sorted, lo, func(e entry, t overlay.Key) int { return bytes.Compare(e.key[:], t[:]) })
		to, found := slices.BinarySearchFunc(sorted, hi, func(e entry, t overlay.Key) int { return bytes.Compare(e.key[:], t[:]) })
		if found {
			to++
		}
		return from, to
	}
	var peers []simhook.Peer
	for i, nd := range nodes {
		self := nd.ID().Key()
		peers = peers[:0]
		for b := 0; b < 256; b++ {
			if from, to := span(self, b); to-from <= 1 {
				break // no other node shares b bits with this one
			}
			other := self
			other[b/8] ^= 0x80 >> (b % 8)
			from, to := span(other, b+1)
			pick := func(j int) {
				e := sorted[j]
				peers = append(peers, simhook.Peer{ID: nodes[e.node].ID(), Addr: nodeAddr(e.node), RTT: nw.RTT(i, e.node)})
			}
			if to-from <= k {
				for j := from; j < to; j++ {
					pick(j)
				}
				continue
			}
			for _, j := range rng.Perm(to - from)[:k] {
				pick(from + j)
			}
		}
		for j := range peers {
			peers[j].Heard = rng.Float64()
		}
		simhook.Seed(nd.Overlay, nodeAddr(i), peers)
	}
}

// nodeAddr is the address of the node on host i (build's port).
func nodeAddr(i int) netip.AddrPort { return netip.AddrPortFrom(sim.Host(i), nodePort) }
