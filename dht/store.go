package dht

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// Store statuses, the reply to a store request.
const (
	statusOK      byte = 0
	statusStale   byte = 1 // a newer operation of the owner is known: a replay or an old copy
	statusQuota   byte = 2 // over the values-per-owner or records-per-node limit
	statusInvalid byte = 3 // expired, too far in the future, too large, or badly signed
)

// store is what a replica holds: per key and owner, live values and
// tombstones.
type store struct {
	mu   sync.Mutex
	keys map[string]*keyState
	n    int // live values held, for the per-node quota
}

type keyState struct {
	owners   map[overlay.ID]*ownerState
	watchers map[overlay.ID]time.Time // lease expiry
	holders  []overlay.ID             // the replica set the records were last handed to
}

type ownerState struct {
	adds    map[string]*signedOp // by value
	removes map[string]*signedOp // tombstones by value
	del     *signedOp            // the latest delete, a tombstone for every older value
}

// change is a consequence of an operation, reported to watchers.
type change struct {
	typ EventType
	op  *signedOp // the add that came or went
}

func newStore() *store { return &store{keys: make(map[string]*keyState)} }

func (st *store) keyLocked(k string) *keyState {
	ks := st.keys[k]
	if ks == nil {
		ks = &keyState{owners: make(map[overlay.ID]*ownerState), watchers: make(map[overlay.ID]time.Time)}
		st.keys[k] = ks
	}
	return ks
}

// apply applies a verified operation.
func (st *store) apply(op *signedOp, cfg *Config, now time.Time) (byte, []change) {
	if op.expiry().Before(now) || op.expiry().After(now.Add(cfg.MaxTTL+time.Minute)) {
		return statusInvalid, nil
	}
	if len(op.value) > cfg.MaxValueSize || len(op.key) > cfg.MaxKeySize {
		return statusInvalid, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	ks := st.keyLocked(op.key)
	os := ks.owners[op.owner]
	if os == nil {
		os = &ownerState{adds: make(map[string]*signedOp), removes: make(map[string]*signedOp)}
		ks.owners[op.owner] = os
	}
	v := string(op.value)
	switch op.op {
	case opAdd:
		if (os.del != nil && os.del.seq >= op.seq) || (os.removes[v] != nil && os.removes[v].seq >= op.seq) {
			return statusStale, nil
		}
		old := os.adds[v]
		switch {
		case old != nil && old.seq > op.seq:
			return statusStale, nil
		case old != nil && old.seq == op.seq:
			return statusOK, nil // the same record again
		case old == nil && len(os.adds) >= cfg.MaxValuesPerOwner:
			return statusQuota, nil
		case old == nil && st.n >= cfg.MaxRecords:
			return statusQuota, nil
		}
		if old == nil {
			st.n++
		}
		os.adds[v] = op
		return statusOK, []change{{EventAdded, op}}
	case opRemove:
		if old := os.removes[v]; old != nil && old.seq >= op.seq {
			return statusOK, nil
		}
		if add := os.adds[v]; add != nil && add.seq > op.seq {
			return statusStale, nil
		}
		os.removes[v] = op
		if add := os.adds[v]; add != nil {
			delete(os.adds, v)
			st.n--
			return statusOK, []change{{EventRemoved, add}}
		}
		return statusOK, nil
	default: // opDelete
		if os.del != nil && os.del.seq >= op.seq {
			return statusOK, nil
		}
		os.del = op
		var ch []change
		for val, add := range os.adds {
			if add.seq < op.seq {
				delete(os.adds, val)
				st.n--
				ch = append(ch, change{EventRemoved, add})
			}
		}
		return statusOK, ch
	}
}

// get returns every live add and every tombstone under key (of owner only,
// unless owner is zero).
func (st *store) get(key string, owner overlay.ID, now time.Time) []*signedOp {
	st.mu.Lock()
	defer st.mu.Unlock()
	ks := st.keys[key]
	if ks == nil {
		return nil
	}
	var out []*signedOp
	for id, os := range ks.owners {
		if owner != (overlay.ID{}) && id != owner {
			continue
		}
		for _, op := range os.adds {
			if op.expiry().After(now) {
				out = append(out, op)
			}
		}
		for _, op := range os.removes {
			out = append(out, op)
		}
		if os.del != nil {
			out = append(out, os.del)
		}
	}
	// A stable order, so that a reader paging through it by offset sees
	// every operation once.
	slices.SortFunc(out, func(a, b *signedOp) int { return bytes.Compare(a.sig, b.sig) })
	return out
}

// expire drops everything past its expiry and returns the adds that expired,
// by key.
func (st *store) expire(now time.Time) map[string][]change {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := map[string][]change{}
	for k, ks := range st.keys {
		for id, os := range ks.owners {
			for v, op := range os.adds {
				if !op.expiry().After(now) {
					delete(os.adds, v)
					st.n--
					out[k] = append(out[k], change{EventExpired, op})
				}
			}
			for v, op := range os.removes {
				if !op.expiry().After(now) {
					delete(os.removes, v)
				}
			}
			if os.del != nil && !os.del.expiry().After(now) {
				os.del = nil
			}
			if len(os.adds) == 0 && len(os.removes) == 0 && os.del == nil {
				delete(ks.owners, id)
			}
		}
		for w, until := range ks.watchers {
			if !until.After(now) {
				delete(ks.watchers, w)
			}
		}
		if len(ks.owners) == 0 && len(ks.watchers) == 0 {
			delete(st.keys, k)
		}
	}
	return out
}

// merge reduces a union of operations read from several replicas to the live
// adds: an add survives if it has not expired and no tombstone of its owner
// is newer.
func merge(ops []*signedOp, now time.Time) []*signedOp {
	type ov struct {
		owner overlay.ID
		value string
	}
	adds := map[ov]*signedOp{}
	removes := map[ov]uint64{}
	dels := map[overlay.ID]uint64{}
	for _, op := range ops {
		k := ov{op.owner, string(op.value)}
		switch op.op {
		case opAdd:
			if cur := adds[k]; cur == nil || op.seq > cur.seq {
				adds[k] = op
			}
		case opRemove:
			removes[k] = max(removes[k], op.seq)
		case opDelete:
			dels[op.owner] = max(dels[op.owner], op.seq)
		}
	}
	var out []*signedOp
	for k, op := range adds {
		if op.expiry().After(now) && removes[k] < op.seq && dels[k.owner] < op.seq {
			out = append(out, op)
		}
	}
	return out
}
