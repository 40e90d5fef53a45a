package streams

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// Closing (docs/PROTOCOL.md, §12.9): like a TCP close, the engine lets the
// end of what its streams wrote reach the peers, and lets the peers read
// it, before its connections go.

const (
	// goodbyeWait bounds how long Close waits for the peers to acknowledge
	// that the node is closing.
	goodbyeWait = 500 * time.Millisecond
	// maxLinger bounds how long Close waits for streams that have just
	// closed their sending side.
	maxLinger = time.Second
)

// Close ends every stream, connection, ICE session and relay allocation,
// and returns once the engine's goroutines have exited. It runs in three
// phases: it stops (Dial, Accept and the offers of peers fail, no further
// stream is admitted, the engine's scope starts no goroutine); it flushes,
// within 1.5 s, while the engine's lifetime context is still live: it
// closes the streams the application has not closed, tells each peer it is
// closing and lingers until what the streams wrote has been acknowledged;
// then it cancels the lifetime context, waits for the goroutines, and
// releases the relayed paths, the ICE agents and the node's TURN relay. A
// peer that acknowledged the goodbye drops the connection itself once its
// application is done, so this side goes away silently (a QUIC
// CONNECTION_CLOSE would discard the peer's unread data). Close is
// idempotent.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	close(e.closing)
	if e.watchTimer != nil {
		e.watchTimer.Stop()
	}
	if e.portMapTimer != nil {
		e.portMapTimer.Stop()
	}
	peers := make([]*peerConn, 0, len(e.peers))
	for _, pc := range e.peers {
		peers = append(peers, pc)
	}
	sessions := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		sessions = append(sessions, s)
		s.fail()
	}
	for id, d := range e.dials {
		delete(e.dials, id)
		if d.cancel != nil {
			d.cancel()
		}
		d.completeLocked(nil, net.ErrClosed)
	}
	ln := e.ln
	e.mu.Unlock()
	e.scope.Stop()
	e.queue.close()
	if ln != nil {
		ln.Close()
	}

	// The flush phase.
	for _, pc := range peers {
		for _, s := range pc.openStreams() {
			s.Close() // the peer reads EOF after what was written
		}
	}
	told := e.sayGoodbye(peers)
	linger(peers)
	for i, pc := range peers {
		if !told[i] {
			pc.qc.CloseWithError(closeNodeClosed, "node closed")
		}
	}
	for _, s := range sessions {
		s.closeAgent()
	}

	e.scope.Close()
	for _, pc := range peers {
		pc.release()
	}
	e.ice.Close()
	if e.relay != nil {
		e.relay.Close()
	}
}

// sayGoodbye tells each peer, in parallel, that this node is closing, and
// reports which acknowledged within goodbyeWait. It runs in the flush
// phase: the engine's lifetime context is live.
func (e *Engine) sayGoodbye(peers []*peerConn) []bool {
	told := make([]bool, len(peers))
	if len(peers) == 0 {
		return told
	}
	msg, _ := wire.AppendSignal(nil, wire.Signal{Kind: wire.SignalClose})
	ctx, cancel := context.WithTimeout(e.scope.Context(), goodbyeWait)
	defer cancel()
	var wg sync.WaitGroup
	for i, pc := range peers {
		if !pc.alive() {
			continue
		}
		wg.Go(func() {
			_, _, err := e.ov.SendService(ctx, wire.ServiceSignal, msg, pc.id.Key(), false)
			told[i] = err == nil
		})
	}
	wg.Wait()
	return told
}

// linger waits, at most maxLinger, until no connection of peers whose
// streams closed their sending side has sent anything for two probe timeouts
// (RFC 9002: srtt + 4·rttvar + max_ack_delay), counted from the last close
// at the earliest: what quic-go still held of those streams has gone out,
// and its last packets had time to be acknowledged, or lost and sent again.
// Closing a stream does not wait for its data to leave, and on a slow path
// (a relay) a fixed wait after the close cut the end off.
func linger(peers []*peerConn) {
	type watch struct {
		pc    *peerConn
		sent  uint64
		quiet time.Time // since when it has sent nothing
	}
	var ws []*watch
	for _, pc := range peers {
		if last := pc.lastFin.Load(); last != 0 {
			ws = append(ws, &watch{pc: pc, sent: pc.qc.ConnectionStats().BytesSent, quiet: time.Unix(0, last)})
		}
	}
	deadline := time.Now().Add(maxLinger)
	for len(ws) > 0 && time.Now().Before(deadline) {
		now := time.Now()
		ws = slices.DeleteFunc(ws, func(w *watch) bool {
			st := w.pc.qc.ConnectionStats()
			if st.BytesSent != w.sent {
				w.sent, w.quiet = st.BytesSent, now
			}
			pto := st.SmoothedRTT + 4*st.MeanDeviation + 25*time.Millisecond
			return now.Sub(w.quiet) >= 2*pto
		})
		if len(ws) > 0 {
			time.Sleep(5 * time.Millisecond) // quic-go reports no "all acknowledged": poll its counters
		}
	}
}
