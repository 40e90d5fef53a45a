package dht

import (
	"container/heap"
	"net/netip"

	"github.com/p2psock/p2psock/overlay"
)

// Fair shares of a replica's store. Every operation a replica keeps (an Add
// with its value, a Remove or Delete tombstone) costs one record and its
// encoded size plus entryOverhead bytes, and is charged to two accounts:
// its owner's, and its writer's: the subnet of the node that sent it, by
// overlay.Subnet, if this node has a direct path to it (a writer has one, for
// its lookup queried the replica); one account shared by every sender this
// node has no direct path to, so that identities cannot escape their
// subnet's share by writing from afar; and this node's own ID for what it
// stores on itself. Each
// account may hold at most a share of the store's records and bytes
// (Config.OwnerPercent, Config.SubnetPercent), so that neither one identity
// nor a crowd of identities on one network fills a replica. When the whole
// store is full, a write is taken only from the writer holding the largest
// share, and only while that share is larger than the new writer's would
// become: a writer loses records only to writers that hold less than it, so
// flooding cannot push the others out.

// entryOverhead is what the bookkeeping of one operation costs a replica,
// beyond its encoding: the maps it sits in and their keys, in bytes.
const entryOverhead = 256

// writer is who a store is charged to besides the owner: the subnet of the
// node that sent it; the zero writer, every sender whose address is unknown;
// or this node's ID, for its own stores.
type writer struct {
	subnet netip.Prefix
	id     overlay.ID
}

// writerOf returns the account key of a store sent by from, whose address
// is addr (invalid if unknown), to the node self.
func writerOf(from, self overlay.ID, addr netip.Addr) writer {
	switch {
	case from == self:
		return writer{id: self}
	case overlay.Subnet(addr).IsValid():
		return writer{subnet: overlay.Subnet(addr)}
	}
	return writer{}
}

// account is what one owner or one writer holds.
type account struct {
	records int
	bytes   int64
	// For writer accounts: the operations charged to it, to choose one to
	// evict, and its place in the heap of writers.
	entries map[*entry]struct{}
	w       writer
	idx     int
}

// entry is an operation a replica holds and the accounts it is charged to.
type entry struct {
	op     *signedOp
	vid    string // the value's hash (empty for a Delete)
	cost   int64
	owner  *account
	writer *account
}

// refusal is why a store was not kept.
type refusal int

const (
	admitted refusal = iota
	overOwner
	overSubnet
	overFull
)

// limits are a store's bounds, from the configuration.
type limits struct {
	records, ownerRecords, subnetRecords int
	bytes, ownerBytes, subnetBytes       int64
}

func newLimits(cfg *Config) limits {
	share := func(total int64, pct int, least int64) int64 {
		return max(total*int64(pct)/100, least)
	}
	one := int64(opOverhead + cfg.MaxKeySize + cfg.MaxValueSize + entryOverhead) // the largest operation
	return limits{
		records:       cfg.MaxRecords,
		ownerRecords:  int(share(int64(cfg.MaxRecords), cfg.OwnerPercent, 1)),
		subnetRecords: int(share(int64(cfg.MaxRecords), cfg.SubnetPercent, 1)),
		bytes:         cfg.MaxBytes,
		ownerBytes:    share(cfg.MaxBytes, cfg.OwnerPercent, one),
		subnetBytes:   share(cfg.MaxBytes, cfg.SubnetPercent, one),
	}
}

// share is the larger of the parts of the store's records and bytes that
// records and bytes take.
func (l *limits) share(records int, bytes int64) float64 {
	return max(float64(records)/float64(l.records), float64(bytes)/float64(l.bytes))
}

// writers is a max-heap of writer accounts by share.
type writers struct {
	l  *limits
	as []*account
}

func (h *writers) Len() int { return len(h.as) }
func (h *writers) Less(i, j int) bool {
	return h.l.share(h.as[i].records, h.as[i].bytes) > h.l.share(h.as[j].records, h.as[j].bytes)
}
func (h *writers) Swap(i, j int) {
	h.as[i], h.as[j] = h.as[j], h.as[i]
	h.as[i].idx, h.as[j].idx = i, j
}
func (h *writers) Push(x any) {
	a := x.(*account)
	a.idx = len(h.as)
	h.as = append(h.as, a)
}
func (h *writers) Pop() any {
	a := h.as[len(h.as)-1]
	h.as[len(h.as)-1] = nil
	h.as = h.as[:len(h.as)-1]
	a.idx = -1
	return a
}

// chargeLocked adds e to the store's totals and its accounts.
func (st *store) chargeLocked(e *entry) {
	st.records++
	st.bytes += e.cost
	e.owner.records++
	e.owner.bytes += e.cost
	e.writer.records++
	e.writer.bytes += e.cost
	e.writer.entries[e] = struct{}{}
	if e.writer.idx < 0 {
		heap.Push(&st.heavy, e.writer)
	} else {
		heap.Fix(&st.heavy, e.writer.idx)
	}
	if e.op.op == opAdd {
		st.n++
	} else {
		st.tombs++
	}
}

// unchargeLocked takes e off the store's totals and its accounts. Accounts
// left empty stay in place, for an operation being applied may hold them,
// until the expiry sweep forgets them (sweepAccountsLocked).
func (st *store) unchargeLocked(e *entry) {
	st.records--
	st.bytes -= e.cost
	e.owner.records--
	e.owner.bytes -= e.cost
	w := e.writer
	w.records--
	w.bytes -= e.cost
	delete(w.entries, e)
	if w.records == 0 {
		heap.Remove(&st.heavy, w.idx)
	} else {
		heap.Fix(&st.heavy, w.idx)
	}
	if e.op.op == opAdd {
		st.n--
	} else {
		st.tombs--
	}
}

// newEntryLocked returns op's entry, its accounts created if need be (they
// are forgotten again when left empty).
func (st *store) newEntryLocked(op *signedOp, w writer) *entry {
	oa := st.owners[op.owner]
	if oa == nil {
		oa = &account{idx: -1}
		st.owners[op.owner] = oa
	}
	wa := st.writers[w]
	if wa == nil {
		wa = &account{entries: map[*entry]struct{}{}, w: w, idx: -1}
		st.writers[w] = wa
	}
	return &entry{op: op, vid: op.vid(), cost: int64(len(op.raw)) + entryOverhead, owner: oa, writer: wa}
}

// sweepAccountsLocked forgets the accounts nothing is charged to.
func (st *store) sweepAccountsLocked() {
	for id, a := range st.owners {
		if a.records == 0 {
			delete(st.owners, id)
		}
	}
	for w, a := range st.writers {
		if a.records == 0 {
			delete(st.writers, w)
		}
	}
}

// forgetLocked drops e's accounts if nothing is charged to them: those of an
// entry that was not kept (no other entry holds an account with no records).
func (st *store) forgetLocked(e *entry) {
	if e.owner.records == 0 {
		delete(st.owners, e.op.owner)
	}
	if e.writer.records == 0 {
		delete(st.writers, e.writer.w)
	}
}

// admitLocked decides whether e may be kept: within its owner's and its
// writer's shares, and within the store's budget, evicting operations of
// writers that hold a larger share than e's writer would.
func (st *store) admitLocked(e *entry) refusal {
	l := &st.lim
	switch {
	case e.owner.records+1 > l.ownerRecords || e.owner.bytes+e.cost > l.ownerBytes:
		st.ctr.owner++
		return overOwner
	case e.writer.records+1 > l.subnetRecords || e.writer.bytes+e.cost > l.subnetBytes:
		st.ctr.subnet++
		return overSubnet
	}
	after := l.share(e.writer.records+1, e.writer.bytes+e.cost)
	for st.records+1 > l.records || st.bytes+e.cost > l.bytes {
		if st.heavy.Len() == 0 {
			st.ctr.full++
			return overFull
		}
		h := st.heavy.as[0]
		if h == e.writer || l.share(h.records, h.bytes) <= after {
			st.ctr.full++
			return overFull
		}
		for victim := range h.entries {
			st.removeLocked(victim)
			st.ctr.evicted++
			break
		}
	}
	return admitted
}
