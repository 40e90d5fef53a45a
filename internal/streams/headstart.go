package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Relay first, upgrade later (docs/PROTOCOL.md, §12.5): when a public node
// can relay a circuit for the pair, ICE gets a head start rather than its
// full time. If no pair of its checks has worked by then, or if both nodes'
// NATs map per destination (no ICE check between them can work), the
// attempt gives way to a circuit at once, and the circuit's own probes
// (circuitpath.go) move the connection to a direct path when one appears.
// There is never more than one QUIC connection for the pair: the ICE
// attempt ends before the circuit's starts.

// iceHeadStart is the time ICE has to make one check work before a circuit
// takes over, on top of twice the round trip of the offer (the checks need
// a round trip or two, and the offer's, routed through the overlay, is
// longer than the direct one).
const iceHeadStart = 500 * time.Millisecond

// errGiveWay ends an ICE attempt that gives way to a circuit.
var errGiveWay = errors.New("p2psock: ICE gives way to a circuit")

// mappingDependent reports whether this node's NAT maps per destination (a
// symmetric NAT), as its contacts see it, and the router granted it no
// port mapping (which peers reach from anywhere).
func (e *Engine) mappingDependent() bool {
	if _, ok := e.mappedCandidate(); ok {
		return false
	}
	if e.hardNAT != nil {
		return e.hardNAT()
	}
	return e.ov.Info().Symmetric
}

// answerFlags are the flags of this node's Answer that describe it: HardNAT
// if its NAT maps per destination.
func (e *Engine) answerFlags() byte {
	if e.mappingDependent() {
		return wire.SignalFlagHardNAT
	}
	return 0
}

// mayGiveWay reports whether an attempt to remote may give way to a
// circuit: only when there is a relay to offer for one, and the node knows
// no TURN server (configured relays keep their own fallback: the attempt
// gathers relay candidates, or the next one does) and does not use relays
// only.
func (e *Engine) mayGiveWay(ctx context.Context, remote overlay.ID) bool {
	if e.cfg.ForceRelay || len(e.circuitRelays(remote)) == 0 {
		return false
	}
	return len(e.turnServers(ctx)) == 0
}

// headStart arranges for the ICE attempt of session s (agent a) to give
// way after its head start: cancel ends the attempt if, by then, ICE has
// not connected and no check of a has worked, or, if one has, after a
// second head start without ICE connecting. rtt is the offer's round trip. It returns whether the
// attempt gave way, and a function that disarms the timer. If both ends'
// NATs map per destination (ans has HardNAT), the attempt gives way at
// once: now reports it.
func (e *Engine) headStart(s *session, a *ice.Agent, ans wire.Signal, rtt time.Duration, cancel context.CancelFunc) (gaveWay *atomic.Bool, now bool, stop func()) {
	gaveWay = new(atomic.Bool)
	if ans.Flags&wire.SignalFlagHardNAT != 0 && e.mappingDependent() {
		gaveWay.Store(true)
		return gaveWay, true, func() {}
	}
	var mu sync.Mutex
	var t *time.Timer
	extended := false
	check := func() {
		if s.progress.Load() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !extended && anyPairWorks(a) {
			// A check worked: one more head start for the pair to be
			// nominated, and no more (a working pair that ICE does not
			// select in that time is not worth the wait).
			extended = true
			t.Reset(iceHeadStart + 2*rtt)
			return
		}
		gaveWay.Store(true)
		e.cfg.Logger.Debug("ICE gives way", "peer", shortID(s.peer), "extended", extended, "throttled", e.ice.ChecksThrottled(), "pairs", pairSummary(a))
		cancel()
	}
	mu.Lock()
	t = time.AfterFunc(iceHeadStart+2*rtt, check)
	mu.Unlock()
	return gaveWay, false, func() { t.Stop() }
}

// anyPairWorks reports whether a check of one of a's pairs has succeeded.
func anyPairWorks(a *ice.Agent) bool {
	for _, p := range a.GetCandidatePairsStats() {
		if p.State == ice.CandidatePairStateSucceeded {
			return true
		}
	}
	return false
}

// pairSummary describes a's candidate pairs for the debug log: local and
// remote candidate types and the pair's state.
func pairSummary(a *ice.Agent) string {
	var b strings.Builder
	locals := map[string]string{}
	for _, c := range a.GetLocalCandidatesStats() {
		locals[c.ID] = c.CandidateType.String() + " " + c.IP + ":" + strconv.Itoa(c.Port)
	}
	remotes := map[string]string{}
	for _, c := range a.GetRemoteCandidatesStats() {
		remotes[c.ID] = c.CandidateType.String() + " " + c.IP + ":" + strconv.Itoa(c.Port)
	}
	for _, p := range a.GetCandidatePairsStats() {
		fmt.Fprintf(&b, "[%s -> %s %s nominated=%v responses=%d] ", locals[p.LocalCandidateID], remotes[p.RemoteCandidateID], p.State, p.Nominated, p.ResponsesReceived)
	}
	return b.String()
}
