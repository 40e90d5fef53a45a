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
	statusQuota   byte = 2 // over a share of the store (owner, subnet, values per key) or the store is full
	statusInvalid byte = 3 // expired, too far in the future, too large, or badly signed
)

// store is what a replica holds: per key and owner, live values and
// tombstones, charged to fair shares (quota.go); and the watchers of keys.
type store struct {
	mu    sync.Mutex
	keys  map[string]*keyState
	lim   limits
	n     int   // live values held
	tombs int   // tombstones held
	bytes int64 // what the operations held cost (quota.go)
	// records is n + tombs: every operation held.
	records int
	owners  map[overlay.ID]*account
	writers map[writer]*account
	heavy   writers // writer accounts, the largest share first

	watchers   int                // watch registrations held
	watchersBy map[overlay.ID]int // per watching node
	maxWatches int
	maxWatchBy int

	ctr storeCounters
}

// storeCounters count the operations and registrations a replica did not
// keep, by reason (Stats).
type storeCounters struct {
	owner, subnet, full, perKey, evicted, invalid, stale, watches uint64
}

type keyState struct {
	owners   map[overlay.ID]*ownerState
	watchers map[overlay.ID]time.Time // lease expiry
	holders  []overlay.ID             // the replica set the records were last handed to
}

type ownerState struct {
	adds    map[string]*entry // by value hash
	removes map[string]*entry // tombstones by value hash
	del     *entry            // the latest delete, a tombstone for every older value
}

// change is a consequence of an operation, reported to watchers.
type change struct {
	typ EventType
	op  *signedOp // the add that came or went
}

func newStore(cfg *Config) *store {
	st := &store{
		keys: make(map[string]*keyState), lim: newLimits(cfg),
		owners: map[overlay.ID]*account{}, writers: map[writer]*account{}, watchersBy: map[overlay.ID]int{},
		maxWatches: cfg.MaxWatchers, maxWatchBy: max(cfg.MaxWatchers*cfg.OwnerPercent/100, 1),
	}
	st.heavy.l = &st.lim
	return st
}

func (st *store) keyLocked(k string) *keyState {
	ks := st.keys[k]
	if ks == nil {
		ks = &keyState{owners: make(map[overlay.ID]*ownerState), watchers: make(map[overlay.ID]time.Time)}
		st.keys[k] = ks
	}
	return ks
}

// ownerLocked returns owner's state under ks, created if need be.
func ownerLocked(ks *keyState, owner overlay.ID) *ownerState {
	os := ks.owners[owner]
	if os == nil {
		os = &ownerState{adds: make(map[string]*entry), removes: make(map[string]*entry)}
		ks.owners[owner] = os
	}
	return os
}

// putLocked stores e in its key's maps and charges it.
func (st *store) putLocked(e *entry) {
	os := ownerLocked(st.keyLocked(e.op.key), e.op.owner)
	switch e.op.op {
	case opAdd:
		os.adds[e.vid] = e
	case opRemove:
		os.removes[e.vid] = e
	default:
		os.del = e
	}
	st.chargeLocked(e)
}

// removeLocked takes e out of its key's maps and off its accounts. An owner
// or key left empty is forgotten by the next expiry sweep.
func (st *store) removeLocked(e *entry) {
	if ks := st.keys[e.op.key]; ks != nil {
		if os := ks.owners[e.op.owner]; os != nil {
			switch {
			case e.op.op == opAdd && os.adds[e.vid] == e:
				delete(os.adds, e.vid)
			case e.op.op == opRemove && os.removes[e.vid] == e:
				delete(os.removes, e.vid)
			case e.op.op == opDelete && os.del == e:
				os.del = nil
			}
		}
	}
	st.unchargeLocked(e)
}

// watchLocked registers from as a watcher of key until until, within the
// bounds on registrations; it reports whether it did.
func (st *store) watchLocked(key string, from overlay.ID, until time.Time) bool {
	if ks := st.keys[key]; ks != nil {
		if _, ok := ks.watchers[from]; ok {
			ks.watchers[from] = until
			return true
		}
	}
	if st.watchers >= st.maxWatches || st.watchersBy[from] >= st.maxWatchBy {
		st.ctr.watches++
		return false
	}
	st.keyLocked(key).watchers[from] = until
	st.watchers++
	st.watchersBy[from]++
	return true
}

func (st *store) unwatchLocked(ks *keyState, from overlay.ID) {
	delete(ks.watchers, from)
	st.watchers--
	if st.watchersBy[from]--; st.watchersBy[from] <= 0 {
		delete(st.watchersBy, from)
	}
}

// apply applies an operation verified as signed by its owner, sent by
// writer.
func (st *store) apply(op *signedOp, w writer, cfg *Config, now time.Time) (byte, []change) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if op.expiry().Before(now) || op.expiry().After(now.Add(cfg.MaxTTL+time.Minute)) ||
		len(op.value) > cfg.MaxValueSize || len(op.key) > cfg.MaxKeySize {
		st.ctr.invalid++
		return statusInvalid, nil
	}
	var os *ownerState
	if ks := st.keys[op.key]; ks != nil {
		os = ks.owners[op.owner]
	}
	if os == nil {
		os = &ownerState{adds: map[string]*entry{}, removes: map[string]*entry{}}
	}
	e := st.newEntryLocked(op, w)
	// superseded are the operations the new one replaces: they are taken
	// out before it is admitted, and put back if it is not.
	var superseded []*entry
	var changes []change
	switch op.op {
	case opAdd:
		old, rm := os.adds[e.vid], os.removes[e.vid]
		switch {
		case (os.del != nil && os.del.op.seq >= op.seq) || (rm != nil && rm.op.seq >= op.seq),
			old != nil && old.op.seq > op.seq:
			st.forgetLocked(e)
			st.ctr.stale++
			return statusStale, nil
		case old != nil && old.op.seq == op.seq:
			st.forgetLocked(e)
			return statusOK, nil // the same record again
		case old == nil && len(os.adds) >= cfg.MaxValuesPerOwner:
			st.forgetLocked(e)
			st.ctr.perKey++
			return statusQuota, nil
		}
		if old != nil {
			superseded = append(superseded, old)
		}
		if rm != nil {
			superseded = append(superseded, rm) // older than the add: nothing left to stop
		}
		changes = []change{{EventAdded, op}}
	case opRemove:
		if old := os.removes[e.vid]; old != nil && old.op.seq >= op.seq {
			st.forgetLocked(e)
			return statusOK, nil
		} else if old != nil {
			superseded = append(superseded, old)
		}
		if add := os.adds[e.vid]; add != nil && add.op.seq > op.seq {
			st.forgetLocked(e)
			st.ctr.stale++
			return statusStale, nil
		} else if add != nil {
			superseded = append(superseded, add)
			changes = []change{{EventRemoved, add.op}}
		}
		if os.del != nil && os.del.op.seq >= op.seq {
			// The owner's delete covers the value already: nothing to keep.
			for _, x := range superseded {
				st.removeLocked(x)
			}
			st.forgetLocked(e)
			return statusOK, changes
		}
	default: // opDelete
		if os.del != nil && os.del.op.seq >= op.seq {
			st.forgetLocked(e)
			return statusOK, nil
		} else if os.del != nil {
			superseded = append(superseded, os.del)
		}
		for _, add := range os.adds {
			if add.op.seq < op.seq {
				superseded = append(superseded, add)
				changes = append(changes, change{EventRemoved, add.op})
			}
		}
		for _, rm := range os.removes {
			if rm.op.seq < op.seq {
				superseded = append(superseded, rm) // the delete covers its value
			}
		}
	}
	for _, x := range superseded {
		st.removeLocked(x)
	}
	if r := st.admitLocked(e); r != admitted {
		for _, x := range superseded {
			st.putLocked(x)
		}
		st.forgetLocked(e)
		return statusQuota, nil
	}
	st.putLocked(e)
	return statusOK, changes
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
		for _, e := range os.adds {
			if e.op.expiry().After(now) {
				out = append(out, e.op)
			}
		}
		for _, e := range os.removes {
			out = append(out, e.op)
		}
		if os.del != nil {
			out = append(out, os.del.op)
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
			for _, e := range os.adds {
				if !e.op.expiry().After(now) {
					st.removeLocked(e)
					out[k] = append(out[k], change{EventExpired, e.op})
				}
			}
			for _, e := range os.removes {
				if !e.op.expiry().After(now) {
					st.removeLocked(e)
				}
			}
			if os.del != nil && !os.del.op.expiry().After(now) {
				st.removeLocked(os.del)
			}
			if len(os.adds) == 0 && len(os.removes) == 0 && os.del == nil {
				delete(ks.owners, id)
			}
		}
		for w, until := range ks.watchers {
			if !until.After(now) {
				st.unwatchLocked(ks, w)
			}
		}
		if len(ks.owners) == 0 && len(ks.watchers) == 0 {
			delete(st.keys, k)
		}
	}
	st.sweepAccountsLocked()
	return out
}

// merge reduces a union of operations read from several replicas to the live
// adds: an add survives if it has not expired and no tombstone of its owner
// is newer.
func merge(ops []*signedOp, now time.Time) []*signedOp {
	type ov struct {
		owner overlay.ID
		value string // the value's hash
	}
	adds := map[ov]*signedOp{}
	removes := map[ov]uint64{}
	dels := map[overlay.ID]uint64{}
	for _, op := range ops {
		k := ov{op.owner, op.vid()}
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
