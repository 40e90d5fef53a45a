package streams

import "sync/atomic"

// dropReason says why the engine turned away a stream, a connection or an
// ICE session; each has a counter (Counters).
type dropReason int

const (
	dropClosing          dropReason = iota // the engine is closing (not counted)
	dropQueueFull                          // stream: the accept queue was full
	dropPeerQueueFull                      // stream: its peer had Config.AcceptQueuePerPeer streams waiting
	dropUnaccepted                         // stream: it waited Config.UnacceptedTimeout without an Accept
	dropBadVersion                         // stream: its first byte was not the version, or did not come in time
	dropNoService                          // stream: to a named service that does not listen
	dropConnIP                             // connection: its IP had Config.MaxConnsPerIP connections
	dropConnSubnet                         // connection: its subnet had Config.MaxConnsPerSubnet connections
	dropConnFull                           // connection: Config.MaxConns were up and none could be evicted
	dropConnEvicted                        // connection: closed to make room for a newcomer (a peer without history)
	dropConnReplaced                       // connection: the same peer opened a newer one
	dropOfferEmpty                         // offer: it carried no usable candidate
	dropOfferPeer                          // offer: its origin had maxSessionsPerPeer sessions in progress
	dropOfferSubnet                        // offer: its origin's subnet had maxSessionsPerSubnet sessions in progress
	dropOfferFull                          // offer: maxIncomingSessions were in progress and none could be evicted
	dropSessionEvicted                     // session: an incoming session without progress gave way to a newer offer
	dropCandidates                         // candidate: past maxRemoteCandidates of its session
	dropCircuitMalformed                   // circuit frame: it did not parse
	dropCircuitUnknown                     // circuit frame: no such circuit here, or its second end has not joined
	dropCircuitStranger                    // circuit frame: it came from an address that is no end of the circuit
	dropCircuitBudget                      // circuit frame: past Config.RelayRate
	dropCircuitQueue                       // circuit frame: this end's reader fell behind
	dropCircuitNoRelay                     // circuit join: this node does not relay (Config.NoRelaying, or not public)
	dropCircuitNoLink                      // circuit join: its sender has no direct link with this node
	dropCircuitBusy                        // circuit join: the circuit ID belongs to other nodes
	dropCircuitFull                        // circuit join: Config.MaxRelayedConns circuits were up
	dropCircuitEvicted                     // circuit: an end's oldest circuit, dropped for its newest past maxCircuitsPerPeer
	numDropReasons
)

// drops counts the engine's drops by reason.
type drops [numDropReasons]atomic.Uint64

func (d *drops) add(r dropReason) {
	if r != dropClosing {
		d[r].Add(1)
	}
}

func (d *drops) get(r dropReason) uint64 { return d[r].Load() }
