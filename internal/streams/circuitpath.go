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
	probeSlow      = 15 * time.Second // then this often, for the connection's life
	probeDirect    = 5 * time.Second  // probes on a direct path, to see that it still works
	probeLost      = 16 * time.Second // a direct path unacknowledged this long is given up
	probeRejoinGap = 3                // ask the relay for the peer's address every this many probes
)

// isProbe reports whether a circuit payload is a probe or its answer: QUIC
// packets always have bit 0x40 of their first byte set.
func isProbe(p []byte) bool {
	return len(p) == probeLen && (p[0] == probeKind || p[0] == probeAckKind)
}

// probeState is one circuit end's search for a direct path.
type probeState struct {
	mu      sync.Mutex
	nonce   [8]byte        // of the latest probe sent
	lastAck time.Time      // when a probe was last acknowledged
	inbound netip.AddrPort // the latest source of a probe: its frames are taken too
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

// onProbe handles a probe or an acknowledgement that came from src.
func (e *Engine) onProbe(end *circuitEnd, p []byte, src netip.AddrPort) {
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
		_ = e.sock.WriteTo(wire.AppendCircuitFrame(nil, end.conn.ID(), ack[:]), to) // best effort: the prober sends again
		end.probes.mu.Lock()
		end.probes.inbound = src
		end.probes.mu.Unlock()
		// The peer found a way here: probe back, so that this end sends
		// there too once it is acknowledged.
		if d := end.direct.Load(); d == nil || *d != src {
			e.sendProbe(end, src)
		}
	case probeAckKind:
		end.probes.mu.Lock()
		ok := [8]byte(p[1:]) == end.probes.nonce && end.probes.nonce != [8]byte{}
		if ok {
			end.probes.lastAck = time.Now()
		}
		end.probes.mu.Unlock()
		if !ok {
			e.drops.add(dropCircuitStranger)
			return
		}
		if d := end.direct.Load(); d == nil || *d != src {
			end.direct.Store(&src)
			end.conn.SendTo(to)
			e.cfg.Logger.Debug("circuit: direct path", "to", src.String())
		}
	}
}

// sendProbe sends a probe of end's circuit to addr.
func (e *Engine) sendProbe(end *circuitEnd, addr netip.AddrPort) {
	var p [probeLen]byte
	p[0] = probeKind
	rand.Read(p[1:])
	end.probes.mu.Lock()
	end.probes.nonce = [8]byte(p[1:])
	end.probes.mu.Unlock()
	_ = e.sock.WriteTo(wire.AppendCircuitFrame(nil, end.conn.ID(), p[:]), net.UDPAddrFromAddrPort(addr)) // best effort: probes repeat
}

// upgradePath probes for a direct path for the connection pc over the
// circuit end, whose relay is relay and whose other end is peer (at
// peerAddr as the relay sees it, if known), until the connection ends.
func (e *Engine) upgradePath(life context.Context, pc *peerConn, end *circuitEnd, relay, peer overlay.ID, peerAddr netip.AddrPort) {
	done := pc.qc.Context().Done()
	wait := probeFirst
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
				end.conn.SendTo(end.conn.Relay())
				e.cfg.Logger.Debug("circuit: direct path lost, back to the relay", "peer", shortID(peer))
			} else {
				e.sendProbe(end, *d)
				wait = probeDirect
				continue
			}
		}
		if !peerAddr.IsValid() || n%probeRejoinGap == 0 {
			if a, err := e.joinCircuit(life, end, relay, peer, false); err == nil && a.IsValid() {
				peerAddr = a
			}
		}
		if peerAddr.IsValid() {
			e.sendProbe(end, peerAddr)
		}
		wait = probeEvery
		if n >= probeFast {
			wait = probeSlow
		}
	}
}
