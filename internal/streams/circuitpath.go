package streams

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Path upgrade (docs/PROTOCOL.md, §12.12): a connection over a circuit keeps
// looking for a direct path. Each end learns from the relay where it sees
// the other end (the Active reply to a Join, asked again from time to time)
// and sends a probe there, straight from its socket, inside a Circuit frame
// of the circuit; an end answers a probe with an acknowledgement to the
// probe's source. An end that gets an acknowledgement of its latest probe
// sends the circuit's frames to that address from then on: QUIC sees no
// change (the conn still reports the relay's address), so the connection
// and its streams carry on. Without acknowledgements for probeLost, the end
// goes back to the relay.

const (
	probeKind    byte = 0x00 // a probe: answer it
	probeAckKind byte = 0x01 // the answer to a probe
	probeLen          = 1 + 8

	probeFirst     = 300 * time.Millisecond // the first probe, after the connection is up
	probeEvery     = 2 * time.Second        // probes while no direct path is known, probeFast times
	probeFast      = 15
	probeSlow      = 15 * time.Second       // then this often, for the connection's life
	probeDirect    = 5 * time.Second        // probes on a direct path, to see that it still works
	probeLost      = 16 * time.Second       // a direct path unacknowledged this long is given up
	probeRejoinGap = 3                      // ask the relay for the peer's address every this many probes
	probeNonces    = 4                      // the latest probes whose acknowledgements count
	probeBackGap   = 100 * time.Millisecond // at most one probe back (answering a probe) this often
)

// isProbe reports whether a circuit payload is a probe or its answer: QUIC
// packets always have bit 0x40 of their first byte set.
func isProbe(p []byte) bool {
	return len(p) == probeLen && (p[0] == probeKind || p[0] == probeAckKind)
}

// probeState is one circuit end's search for a direct path.
type probeState struct {
	mu sync.Mutex
	// nonces are those of the latest probes sent (next is the slot of the
	// next one): an acknowledgement of any of them counts. With only the
	// latest, two ends that probed each other at once livelocked: each
	// probe made the other end probe back, with a new nonce, before the
	// acknowledgement of its previous one arrived, which then matched
	// nothing, and so on (a storm of probes, never a direct path).
	nonces     [probeNonces][8]byte
	next       int
	spray      [8]byte        // of the probes of the latest hard-NAT round (hardnat.go)
	lastAck    time.Time      // when a probe was last acknowledged
	inbound    netip.AddrPort // the latest source of a probe: its frames are taken too
	probedBack time.Time      // when this end last probed back (at most one every probeBackGap)
}

// sent reports whether n is the nonce of one of the latest probes.
func (ps *probeState) sent(n [8]byte) bool {
	for _, x := range ps.nonces {
		if x == n {
			return true
		}
	}
	return false
}

// accepts reports whether frames of the circuit from src are taken: from
// the relay, the direct path, or the latest address the peer probed from.
func (end *circuitEnd) accepts(src netip.AddrPort) bool {
	if src == end.relay {
		return true
	}
	if d := end.direct.Load(); d != nil && *d == src {
		return true
	}
	end.probes.mu.Lock()
	defer end.probes.mu.Unlock()
	return end.probes.inbound == src
}

// writeVia sends b to addr out of via, or out of the node's socket if via
// is nil.
func (e *Engine) writeVia(via *hardPort, b []byte, addr *net.UDPAddr) error {
	if via != nil {
		_, err := via.pc.WriteTo(b, addr)
		return err
	}
	return e.sock.WriteTo(b, addr)
}

// onProbe handles a probe or an acknowledgement that came from src, on
// the node's socket (via nil) or on one of its extra hard-NAT sockets
// (hardnat.go): the answers go out the way the probe came in, and a direct
// path found through via sends through it.
func (e *Engine) onProbe(end *circuitEnd, p []byte, src netip.AddrPort, via *hardPort) {
	if !src.IsValid() {
		return
	}
	to := net.UDPAddrFromAddrPort(src)
	switch p[0] {
	case probeKind:
		// The answer is the probe's size, to its source: no amplification.
		var ack [probeLen]byte
		ack[0] = probeAckKind
		copy(ack[1:], p[1:])
		_ = e.writeVia(via, wire.AppendCircuitFrame(nil, end.conn.ID(), ack[:]), to) // best effort: the prober sends again
		end.probes.mu.Lock()
		end.probes.inbound = src
		end.probes.mu.Unlock()
		// The peer found a way here: probe back, so that this end sends
		// there too once it is acknowledged.
		if d := end.direct.Load(); d == nil || *d != src || end.via.Load() != via {
			end.probes.mu.Lock()
			back := time.Since(end.probes.probedBack) >= probeBackGap
			if back {
				end.probes.probedBack = time.Now()
			}
			end.probes.mu.Unlock()
			if back {
				e.sendProbe(end, src, via)
			}
		}
	case probeAckKind:
		end.probes.mu.Lock()
		n := [8]byte(p[1:])
		ok := n != [8]byte{} && (end.probes.sent(n) || n == end.probes.spray)
		if ok {
			end.probes.lastAck = time.Now()
		}
		end.probes.mu.Unlock()
		if !ok {
			e.drops.add(dropCircuitStranger)
			return
		}
		// A path to the same address out of another socket is not taken:
		// the first of a hard-NAT round's extra ports to be answered
		// carries the circuit (hardnat.go), and the round closes the rest.
		if d := end.direct.Load(); d == nil || *d != src {
			end.via.Store(via)
			end.direct.Store(&src)
			if via != nil {
				end.conn.SendVia(to, via.pc)
				// Tell the peer at once which port this is: it may have
				// heard from several of them.
				e.sendProbe(end, src, via)
			} else {
				end.conn.SendTo(to)
			}
			e.cfg.Logger.Debug("circuit: direct path", "to", src.String(), "extra port", via != nil)
		}
	}
}

// sendProbe sends a probe of end's circuit to addr, out of via (nil: the
// node's socket).
func (e *Engine) sendProbe(end *circuitEnd, addr netip.AddrPort, via *hardPort) {
	var p [probeLen]byte
	p[0] = probeKind
	rand.Read(p[1:])
	end.probes.mu.Lock()
	end.probes.nonces[end.probes.next] = [8]byte(p[1:])
	end.probes.next = (end.probes.next + 1) % probeNonces
	end.probes.mu.Unlock()
	_ = e.writeVia(via, wire.AppendCircuitFrame(nil, end.conn.ID(), p[:]), net.UDPAddrFromAddrPort(addr)) // best effort: probes repeat
}

// upgradePath probes for a direct path for the connection pc over the
// circuit end, whose relay is relay and whose other end is peer (at
// peerAddr as the relay sees it, if known), until the connection ends.
// pn is what the peer said of its NAT: where one side's NAT maps per
// destination and the other's does not, rounds of hard-NAT probing
// (hardnat.go) run beside the plain probes.
func (e *Engine) upgradePath(life context.Context, pc *peerConn, end *circuitEnd, relay, peer overlay.ID, peerAddr netip.AddrPort, pn peerNAT) {
	done := pc.qc.Context().Done()
	wait := probeFirst
	start, rounds := time.Now(), 0
	for n := 0; ; n++ {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			return
		case <-life.Done():
			t.Stop()
			return
		}
		if d := end.direct.Load(); d != nil {
			end.probes.mu.Lock()
			lost := time.Since(end.probes.lastAck) > probeLost
			end.probes.mu.Unlock()
			if lost {
				end.direct.Store(nil)
				end.via.Store(nil)
				end.conn.SendTo(end.conn.Relay())
				e.cfg.Logger.Debug("circuit: direct path lost, back to the relay", "peer", shortID(peer))
			} else {
				e.sendProbe(end, *d, end.via.Load())
				wait = probeDirect
				continue
			}
		}
		if !peerAddr.IsValid() || n%probeRejoinGap == 0 {
			if a, err := e.joinCircuit(life, end, relay, peer, false); err == nil && a.IsValid() {
				peerAddr = a
			}
		}
		if peerAddr.IsValid() && !e.noPlainProbes {
			e.sendProbe(end, peerAddr, nil)
		}
		if rounds < hardRounds && time.Since(start) >= time.Duration(rounds)*hardRoundGap {
			if role := hardRoleFor(e.mappingDependent(), pn, peerAddr); role != hardNone {
				rounds++
				e.hardRound(end, done, role, pn.addr)
			}
		}
		wait = probeEvery
		if n >= probeFast {
			wait = probeSlow
		}
	}
}
