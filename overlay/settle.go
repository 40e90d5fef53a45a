package overlay

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// A node that has joined is reachable once the nodes closest to its ID have
// it in their routing tables: a message to its ID travels toward it through
// ever closer nodes, and ends at one of those. So Join ends by settling:
// it looks its own ID up once more (nodes that joined at the same moment
// find each other then, as the first lookups of both are over), and asks
// each node the lookup returned to route a message addressed to this node's
// own ID: a probe. A probe that comes back from the contact it was handed to
// shows that the contact has this node in its table. One that comes back
// through another node, or is refused, shows that it does not (yet): taking
// the probe made the contact challenge this node, unless it did so a moment
// ago and the answer was lost, so the probe is sent again, after the
// challenge was answered or after a pause. A contact whose bucket for this
// node may be full (this node knows K or more nodes in the part of the ID
// space that bucket covers) may rightly keep it out of its table, and so a
// probe that reaches this node through a closer node confirms it.
//
// Probes are ordinary Route frames, origin and destination this node's ID,
// ModeID; the node takes its own probes back before delivery.

const (
	settleRounds   = 3                      // lookups and probe rounds at most
	probesInFlight = 4                      // contacts probed at once: more come back in bursts that overflow the socket's queue
	probeTries     = 4                      // probes per contact at most
	probeWait      = 500 * time.Millisecond // for a probe to come back once its first hop took it (a node that has no route to this node cannot route a refusal to it either)
	probeRetryGap  = 500 * time.Millisecond // before probing again a contact that did not challenge this node
)

var (
	errProbeRefused = errors.New("p2psock: probe refused")
	errProbeLost    = errors.New("p2psock: probe lost")
)

// settle waits until the nodes closest to this node's ID have it in their
// routing tables (see above), for at most SendTimeout.
func (o *Overlay) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.SendTimeout)
	defer cancel()
	confirmed := map[ID]bool{}
	unreachable := map[ID]bool{} // no link: gone, most likely, though others still name it
	start := time.Now()
	for round := 0; round < settleRounds && ctx.Err() == nil && !o.isClosed(); round++ {
		cands := o.lookupCandidates(ctx, o.self.Key())
		if o.cfg.Client {
			cands = cands[:min(len(cands), o.cfg.Proxies)] // a client's proxies
		}
		var todo []candidate
		for _, c := range cands {
			if !confirmed[c.id] && !unreachable[c.id] {
				todo = append(todo, c)
			}
		}
		if len(todo) == 0 {
			break
		}
		type result struct{ ok, atOnce, noLink bool }
		results := make([]result, len(todo))
		var wg sync.WaitGroup
		sem := make(chan struct{}, probesInFlight)
		for i, c := range todo {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				results[i].ok, results[i].atOnce, results[i].noLink = o.confirm(ctx, c)
			})
		}
		wg.Wait()
		again := false
		for i, c := range todo {
			confirmed[c.id] = confirmed[c.id] || results[i].ok
			if results[i].noLink {
				// A node that does not answer is not asked again,
				// nor is it a reason for another round: nodes that
				// left a moment ago are still named by others.
				unreachable[c.id] = true
				continue
			}
			again = again || !results[i].atOnce
		}
		if !again {
			break // every node that answers routed to this one at once: the tables agree
		}
	}
	o.log.Debug("settled", "confirmed", len(confirmed), "after", time.Since(start))
}

// confirm probes the node cand until it routes to this node: ok reports
// that it does, at once that the first probe showed it, noLink that no link
// to cand could be made.
func (o *Overlay) confirm(ctx context.Context, cand candidate) (ok, atOnce, noLink bool) {
	// The lookup found cand; a node it asked without a link (one that says
	// it is public) is being verified now, after its challenge of this node.
	if _, _, err := o.link(ctx, cand); err != nil {
		return false, false, ctx.Err() == nil
	}
	c := cand.id
	insist := o.cfg.Client || o.bucketHasRoom(c) // a proxy must take its client itself
	for try := range probeTries {
		proved, stop := o.watchProof(c)
		from, err := o.probe(ctx, c)
		switch {
		case err == nil && from == c:
			stop()
			return true, try == 0, false
		case err == nil && !insist:
			stop()
			return true, try == 0, false // c routes to this node through a closer node
		case err != nil && !errors.Is(err, errProbeRefused) && !errors.Is(err, errProbeLost):
			stop()
			return false, false, errors.Is(err, errNoLink) // c did not take the probe, or the Join ends
		}
		// c does not have this node in its table yet. If c challenged it
		// a moment ago, the answer may have been lost (c does not challenge
		// again for a second): answer again and probe at once, the probe
		// following the answer. Otherwise taking the probe made c
		// challenge this node: try again once that is answered, or after
		// a pause.
		if try == 0 && o.answerAgain(c) {
			stop()
			continue
		}
		t := time.NewTimer(probeRetryGap)
		select {
		case <-proved:
		case <-t.C:
		case <-ctx.Done():
		case <-o.done():
		}
		t.Stop()
		stop()
		if ctx.Err() != nil || o.isClosed() {
			return false, false, false
		}
	}
	o.log.Debug("contact does not route to this node", "contact", c)
	return false, false, false
}

// bucketHasRoom reports whether contact c's bucket for this node surely has
// room for it: it holds the nodes that share one more leading bit with this
// node than c does, and this node knows fewer than K of them; and no
// contact of this node shares its subnet, so that c's diversity limits
// (Config.SubnetPerBucket and SubnetPerTable) cannot keep it out either.
func (o *Overlay) bucketHasRoom(c ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 1 // this node
	for b := o.tab.bucketOf(c) + 1; b < len(o.tab.buckets); b++ {
		n += len(o.tab.buckets[b])
	}
	if n >= o.cfg.K {
		return false
	}
	if o.cfg.SubnetPerBucket < 0 && o.cfg.SubnetPerTable < 0 {
		return true
	}
	self := o.observed
	if !self.IsValid() {
		self = o.local
	}
	mine := Subnet(self.Addr())
	for x := range o.tab.contacts() {
		if o.tab.subnetOf(x.p) == mine {
			return false
		}
	}
	return true
}

// probe routes a message addressed to this node's own ID, handing it first
// to contact c, and returns the node it came back from: c itself when c has
// this node in its table. It fails with errProbeRefused when a node on the
// way knew no route to this node, and with errProbeLost when it did not come
// back in time.
func (o *Overlay) probe(ctx context.Context, c ID) (from ID, err error) {
	h := wire.MsgHeader{Kind: wire.KindData, Mode: wire.ModeID, Service: wire.ServiceApp, Origin: o.self, Dest: o.self.Key(),
		Timestamp: time.Now().UnixMilli()}
	rand.Read(h.MsgID[:])
	frame := o.encodeMessage(h, nil)[0]
	back := make(chan ID, 1)
	nacks := make(chan ackResult, 4)
	o.mu.Lock()
	made(&o.probes)[h.MsgID] = back
	made(&o.acks)[h.MsgID] = nacks
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.probes, h.MsgID)
		delete(o.acks, h.MsgID)
		o.mu.Unlock()
	}()
	if err := o.sendReliable(ctx, c, frame, hopKey{from: c, msgID: h.MsgID, kind: h.Kind}); err != nil {
		return ID{}, err
	}
	t := time.NewTimer(probeWait)
	defer t.Stop()
	select {
	case from := <-back:
		return from, nil
	case <-nacks:
		return ID{}, errProbeRefused
	case <-t.C:
		return ID{}, errProbeLost
	case <-ctx.Done():
		return ID{}, ctx.Err()
	case <-o.done():
		return ID{}, o.errClosed("bind")
	}
}

// probeArrived takes back a probe of this node's, which a contact routed to
// it; it reports false for any other fragment. A probe that comes after its
// Join stopped waiting is dropped.
func (o *Overlay) probeArrived(sender ID, r wire.Route) bool {
	if r.Msg.Origin != o.self || r.Msg.Kind != wire.KindData {
		return false
	}
	o.mu.Lock()
	back := o.probes[r.Msg.MsgID]
	o.mu.Unlock()
	if back == nil {
		o.ctr.replayed.Add(1)
		return true
	}
	select {
	case back <- sender:
	default:
	}
	return true
}

// watchProof returns a channel that is closed when id next asks this node
// to prove its key (and gets the proof), and a function to stop watching.
func (o *Overlay) watchProof(id ID) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	o.mu.Lock()
	made(&o.proofWait)[id] = append(o.proofWait[id], ch)
	o.mu.Unlock()
	return ch, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.proofWait[id] = slices.DeleteFunc(o.proofWait[id], func(x chan struct{}) bool { return x == ch })
		if len(o.proofWait[id]) == 0 {
			delete(o.proofWait, id)
		}
	}
}

// answeredProof is the signed Pong with which this node answered a node's
// latest challenge.
type answeredProof struct {
	p     path
	frame []byte
	at    time.Time
}

// maxAnswered bounds the challenges remembered (for 10 s) to answer again.
const maxAnswered = 1024

// provedTo records that this node answered id's challenge over p with the
// Pong frame, and wakes whoever waits for it. Answers are remembered only
// until Join returns, the only time settle may send one again: a bound
// node keeps nothing for whoever pings it.
func (o *Overlay) provedTo(id ID, p path, frame []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.answered[id]; !o.joined && (ok || len(o.answered) < maxAnswered) {
		o.answered[id] = answeredProof{p: p, frame: frame, at: time.Now()}
	}
	for _, ch := range o.proofWait[id] {
		close(ch)
	}
	delete(o.proofWait, id)
}

// answerAgain sends id the Pong that answered its latest challenge again,
// if that was in the last few seconds: the first may have been lost, and a
// node does not challenge again for a second (§7.1). It reports whether it
// sent one.
func (o *Overlay) answerAgain(id ID) bool {
	o.mu.Lock()
	a, ok := o.answered[id]
	o.mu.Unlock()
	if !ok || time.Since(a.at) > 5*time.Second {
		return false
	}
	o.sendPath(id, a.p, a.frame)
	return true
}
