package dht

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// handle serves DHT requests from other nodes (and this one). It runs on the
// node's packet path, so anything slow goes to a goroutine.
func (d *DHT) handle(m overlay.Message) ([]byte, bool) {
	if d.closed() || len(m.Data) == 0 {
		return nil, false
	}
	now := time.Now()
	body := m.Data[1:]
	switch m.Data[0] {
	case reqStore:
		if d.ov.IsClient() {
			return []byte{statusQuota}, true // a light client keeps no records: its store is full
		}
		op, err := parseOp(slices.Clone(body), d.net)
		if err != nil {
			d.st.mu.Lock()
			d.st.ctr.invalid++
			d.st.mu.Unlock()
			return []byte{statusInvalid}, true
		}
		status, changes := d.st.apply(op, d.writer(m.From), &d.cfg, now)
		if len(changes) > 0 {
			d.notify(op.key, changes)
		}
		return []byte{status}, true
	case reqGet:
		key, rest, ok := readKey(body)
		if !ok || len(rest) != 36 {
			return []byte{statusInvalid}, true
		}
		owner := overlay.ID(rest[:32])
		offset := int(binary.BigEndian.Uint32(rest[32:]))
		ops := d.st.get(key, owner, now)
		reply := []byte{statusOK}
		reply = binary.BigEndian.AppendUint32(reply, uint32(len(ops)))
		reply = append(reply, 0, 0)
		count := 0
		for _, op := range ops[min(offset, len(ops)):] {
			if len(reply)+4+len(op.raw) > overlay.MaxMessage {
				break
			}
			reply = binary.BigEndian.AppendUint32(reply, uint32(len(op.raw)))
			reply = append(reply, op.raw...)
			count++
		}
		binary.BigEndian.PutUint16(reply[5:], uint16(count))
		return reply, true
	case reqWatch:
		key, rest, ok := readKey(body)
		if !ok || len(rest) != 4 {
			return []byte{statusInvalid}, true
		}
		lease := min(time.Duration(binary.BigEndian.Uint32(rest))*time.Millisecond, 2*watchLease)
		d.st.mu.Lock()
		ok = d.st.watchLocked(key, m.From, now.Add(lease))
		d.st.mu.Unlock()
		if !ok {
			return []byte{statusQuota}, true
		}
		return []byte{statusOK}, true
	case reqEvent:
		if len(body) < 1 {
			return nil, true
		}
		op, err := parseOp(slices.Clone(body[1:]), d.net)
		if err != nil || op.op != opAdd {
			return nil, true
		}
		d.deliverEvent(EventType(body[0]), op)
		return nil, true
	}
	return []byte{statusInvalid}, true
}

// writer is the account a store sent by from is charged to (writerOf):
// from's subnet if this node reaches it directly.
func (d *DHT) writer(from overlay.ID) writer {
	var addr netip.Addr
	if p, ok := d.ov.PeerInfo(from); ok && from != d.ov.ID() {
		addr = p.Addr.Addr()
	}
	return writerOf(from, d.ov.ID(), addr)
}

func readKey(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	l := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+l {
		return "", nil, false
	}
	return string(b[2 : 2+l]), b[2+l:], true
}

// notify tells the watchers of key about changes, each in its own request.
func (d *DHT) notify(key string, changes []change) {
	d.st.mu.Lock()
	var watchers []overlay.ID
	if ks := d.st.keys[key]; ks != nil {
		now := time.Now()
		for w, until := range ks.watchers {
			if until.After(now) {
				watchers = append(watchers, w)
			}
		}
	}
	d.st.mu.Unlock()
	for _, w := range watchers {
		for _, c := range changes {
			req := append([]byte{reqEvent, byte(c.typ)}, c.op.raw...)
			d.scope.TryGo(d.notifies, func(ctx context.Context) {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_, _ = d.request(ctx, w, req)
			})
		}
	}
}

// deliverEvent hands an event to this node's watches of its key, once even
// if several replicas report it.
func (d *DHT) deliverEvent(typ EventType, op *signedOp) {
	id := fmt.Sprintf("%d/%x/%d/%s", typ, op.owner[:8], op.seq, op.value)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.watches[op.key] {
		if w.seen[id] {
			continue
		}
		w.seen[id] = true
		select {
		case w.ch <- Event{Type: typ, Record: op.record()}:
		default: // a reader that does not keep up loses events rather than stalling the node
		}
	}
}

// maintain expires records every second, and every Republish interval
// stores this node's records on their current replica sets and hands the
// records it holds to nodes that joined their replica sets.
func (d *DHT) maintain(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	next := time.Now().Add(d.cfg.Republish)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for key, changes := range d.st.expire(now) {
				d.notify(key, changes)
			}
			d.mu.Lock()
			for key, ops := range d.tombs {
				d.tombs[key] = slices.DeleteFunc(ops, func(op *signedOp) bool { return !op.expiry().After(now) })
			}
			for key, vals := range d.own {
				for v, op := range vals {
					if !op.expiry().After(now) {
						delete(vals, v)
					}
				}
				if len(vals) == 0 {
					delete(d.own, key)
				}
			}
			d.mu.Unlock()
			if now.After(next) && !d.pushing.Swap(true) {
				next = now.Add(d.cfg.Republish)
				if !d.scope.Go(func(ctx context.Context) {
					defer d.pushing.Store(false)
					d.republish(ctx)
					d.handoff(ctx)
				}) {
					d.pushing.Store(false)
				}
			}
		}
	}
}

// republish stores this node's live operations on their keys' replica sets.
func (d *DHT) republish(ctx context.Context) {
	d.mu.Lock()
	var ops []*signedOp
	for _, vals := range d.own {
		for _, op := range vals {
			ops = append(ops, op)
		}
	}
	for _, ts := range d.tombs {
		ops = append(ops, ts...)
	}
	d.mu.Unlock()
	d.pushAll(ctx, ops, nil)
}

// handoff gives the records of every key this node holds to the nodes that
// are now in the key's replica set but were not when it last looked.
func (d *DHT) handoff(ctx context.Context) {
	now := time.Now()
	d.st.mu.Lock()
	keys := make([]string, 0, len(d.st.keys))
	for k := range d.st.keys {
		keys = append(keys, k)
	}
	d.st.mu.Unlock()
	for _, k := range keys {
		ids := d.closestDiverse(overlay.KeyOf([]byte(k)))
		d.st.mu.Lock()
		ks := d.st.keys[k]
		var fresh []overlay.ID
		if ks != nil {
			for _, id := range ids {
				if id != d.ov.ID() && !slices.Contains(ks.holders, id) {
					fresh = append(fresh, id)
				}
			}
			ks.holders = ids
		}
		d.st.mu.Unlock()
		if len(fresh) == 0 {
			continue
		}
		ops := d.st.get(k, overlay.ID{}, now)
		for _, id := range fresh {
			d.pushAll(ctx, ops, &id)
		}
	}
}

// closestDiverse is the replica set of k as this node's routing table has
// it, without a lookup: the closest of its contacts and itself, at most one
// contact per subnet.
func (d *DHT) closestDiverse(k overlay.Key) []overlay.ID {
	ids := d.ov.Closest(k, 4*d.cfg.Replicas)
	peers := make([]overlay.Peer, len(ids))
	for i, id := range ids {
		peers[i].ID = id
		if p, ok := d.ov.PeerInfo(id); ok && id != d.ov.ID() {
			peers[i].Addr = p.Addr
		}
	}
	return diverse(peers, d.ov.ID(), d.cfg.Replicas)
}

// pushAll stores ops on their replica sets (looked up), or on one node.
func (d *DHT) pushAll(ctx context.Context, ops []*signedOp, to *overlay.ID) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, op := range ops {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if to != nil {
				_, _ = d.request(ctx, *to, append([]byte{reqStore}, op.raw...))
				return
			}
			_ = d.storeOnReplicas(ctx, op)
		})
	}
}
