package dht

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2psock/p2psock/internal/lifecycle"
	"github.com/p2psock/p2psock/internal/metrics"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Config configures a DHT. Zero fields take the defaults given.
type Config struct {
	Replicas          int           // size of a key's replica set; default 6
	DefaultTTL        time.Duration // the TTL of an Add with ttl 0; default 1h
	MaxTTL            time.Duration // the longest TTL accepted; default 24h
	MaxKeySize        int           // bytes; default 1 KiB
	MaxValueSize      int           // bytes; default 60 KiB (a value travels in one 64 KiB message)
	MaxValuesPerOwner int           // values per key per owner a replica keeps; default 64
	// MaxRecords bounds the operations a replica keeps in all: values and
	// the tombstones of removed values; default 100000.
	MaxRecords int
	// MaxBytes bounds the memory a replica's records take: each costs its
	// encoding (key, value or value hash, signature) plus 256 bytes of
	// bookkeeping. Default: the DHT's share of the node's memory budget
	// (overlay.Budget.Store; 64 MiB of the default).
	MaxBytes int64
	// OwnerPercent is the part of MaxRecords and of MaxBytes the records of
	// one owner may take on a replica, in percent; default 2. A store
	// beyond it is refused (ErrQuota) and counted in Stats.RefusedOwner.
	OwnerPercent int
	// SubnetPercent is the part of MaxRecords and of MaxBytes the records
	// sent by the nodes of one subnet (overlay.Subnet of their address: an
	// IPv4 /24, an IPv6 /48; the nodes this node has no direct path to
	// count as one subnet) may take on a replica, in percent; default 10. A store beyond it
	// is refused and counted in Stats.RefusedSubnet. When a replica is full,
	// a store evicts records of the subnet that holds the largest share, if
	// that share is larger than the storing subnet's would become, and is
	// refused otherwise (Stats.Evicted, Stats.RefusedFull).
	SubnetPercent int
	// MaxWatchers bounds the watch registrations (a key and a node watching
	// it) a replica keeps; one node may hold OwnerPercent of them. Default
	// 4096.
	MaxWatchers int
	// Republish is how often an owner stores its live records on the
	// current replica set again, and replicas hand records to nodes that
	// have joined the set; default 1 min.
	Republish time.Duration
	// Workers bounds the goroutines a replica starts for the messages it
	// receives: the notifications of a change it sends to the nodes that
	// watch the key, at most Workers at once. A notification that finds
	// every worker busy is not sent, and is counted in
	// Stats.DroppedNotifications. Default 64.
	Workers int
	Logger  *slog.Logger // nil: no logging
}

func (c *Config) setDefaults() {
	if c.Replicas <= 0 {
		c.Replicas = 6
	}
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = time.Hour
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = 24 * time.Hour
	}
	if c.MaxKeySize <= 0 {
		c.MaxKeySize = 1024
	}
	if c.MaxValueSize <= 0 || c.MaxValueSize > maxValue {
		c.MaxValueSize = maxValue
	}
	if c.MaxValuesPerOwner <= 0 {
		c.MaxValuesPerOwner = 64
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = 100000
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.OwnerPercent <= 0 || c.OwnerPercent > 100 {
		c.OwnerPercent = 2
	}
	if c.SubnetPercent <= 0 || c.SubnetPercent > 100 {
		c.SubnetPercent = 10
	}
	if c.MaxWatchers <= 0 {
		c.MaxWatchers = 4096
	}
	if c.Republish <= 0 {
		c.Republish = time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// maxValue keeps a store request within one message.
const maxValue = 60 << 10

// Requests, the first byte of a DHT message.
const (
	reqStore byte = 1 // a signed operation; reply: status
	reqGet   byte = 2 // keyLen(2) key owner(32) offset(4); reply: status total(4) count(2) {len(4) op}*
	reqWatch byte = 3 // keyLen(2) key lease(4, ms); reply: status
	reqEvent byte = 4 // type(1) op: a change under a watched key; reply: empty
)

// EventType says what happened to a value.
type EventType byte

// Event types.
const (
	EventAdded   EventType = 1
	EventRemoved EventType = 2
	EventExpired EventType = 3
)

func (t EventType) String() string {
	switch t {
	case EventAdded:
		return "added"
	case EventRemoved:
		return "removed"
	case EventExpired:
		return "expired"
	}
	return fmt.Sprintf("EventType(%d)", byte(t))
}

// Event is a change to a watched key.
type Event struct {
	Type   EventType
	Record Record
}

// DHT is a node's part in a hash table spread over the network: it stores
// the records of the keys it is a replica for, and reads and writes records
// on the replica sets of other keys. Its methods are safe for concurrent use.
type DHT struct {
	ov  *overlay.Overlay
	cfg Config
	net [8]byte
	st  *store

	mu      sync.Mutex
	seq     uint64
	own     map[string]map[string]*signedOp // key -> value -> this node's live add
	tombs   map[string][]*signedOp          // this node's removes and deletes, until they expire
	watches map[string][]*watch

	// scope is the DHT's lifetime: its goroutines run in it, and the
	// requests of its calls and of its background work end when Close
	// cancels it. notifies is the budget of the notifications sent per
	// received change.
	scope     *lifecycle.Scope
	notifies  *lifecycle.Budget
	closeOnce sync.Once
	pushing   atomic.Bool
	ops       *metrics.Ops // the program's calls, by operation (held.go)
}

type watch struct {
	ch   chan Event
	seen map[string]bool
}

// New starts the DHT service on a node; call it before the node's Bind so
// the node serves the records it becomes responsible for from the start.
//
// n is the node: a *p2psock.Node, or any overlay.Host.
func New(n overlay.Host, cfg Config) (*DHT, error) {
	if n == nil || n.Overlay() == nil {
		return nil, errors.New("dht: nil node")
	}
	ov := n.Overlay()
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = ov.Budget().Store()
	}
	cfg.setDefaults()
	d := &DHT{
		ov: ov, cfg: cfg, net: wire.NetworkTag(ov.Network()), st: newStore(&cfg),
		own: map[string]map[string]*signedOp{}, tombs: map[string][]*signedOp{}, watches: map[string][]*watch{},
		scope: lifecycle.NewScope(), notifies: lifecycle.NewBudget(cfg.Workers), ops: newOps(),
	}
	ov.Attach(AttachName, d)
	d.ov.Handle(wire.ServiceDHT, d.handle)
	d.scope.Go(d.maintain)
	return d, nil
}

func (d *DHT) closed() bool { return d.scope.Stopping() }

// Close stops the service: the node no longer stores or serves records,
// calls in progress end with ErrClosed and later ones fail with it, and
// every Watch channel is closed. It returns once the DHT's goroutines have ended, without
// waiting for the requests they had under way.
func (d *DHT) Close() error {
	d.closeOnce.Do(func() {
		d.ov.Detach(AttachName, d)
		d.scope.Close()
		d.mu.Lock()
		for _, ws := range d.watches {
			for _, w := range ws {
				close(w.ch)
			}
		}
		d.watches = nil
		d.mu.Unlock()
	})
	return nil
}

// callContext returns ctx, cancelled also when the DHT closes, for the
// requests of a call; end releases it and returns the call's result: err,
// or ErrClosed if Close came while the call was in progress (like a net.Conn
// call that Close interrupts, even if part of its work was done).
func (d *DHT) callContext(ctx context.Context) (_ context.Context, end func(error) error) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(d.scope.Context(), func() { cancel(ErrClosed) })
	return ctx, func(err error) error {
		stop()
		defer cancel(nil)
		if errors.Is(context.Cause(ctx), ErrClosed) {
			return ErrClosed
		}
		return err
	}
}

// Stats are a DHT's counters.
type Stats struct {
	Records    int   // live values this node holds as a replica
	Tombstones int   // tombstones of removed values it holds
	Bytes      int64 // what they cost, counted against Config.MaxBytes
	Watchers   int   // watch registrations it holds
	// DroppedNotifications counts the notifications of changes to the
	// nodes watching a key that were not sent because Config.Workers
	// notifications were under way already.
	DroppedNotifications uint64

	// Stores this node did not keep as a replica, by reason.
	RefusedOwner   uint64 // the owner held its share (Config.OwnerPercent)
	RefusedSubnet  uint64 // the sender's subnet held its share (Config.SubnetPercent)
	RefusedFull    uint64 // the store was full and no subnet held a larger share than the sender's
	RefusedPerKey  uint64 // the owner held Config.MaxValuesPerOwner values under the key
	RefusedInvalid uint64 // malformed, badly signed, expired, expiring too late or too large
	RefusedStale   uint64 // a newer operation of the owner was held: a replay or an old copy
	// Evicted counts the records dropped to make room for the store of a
	// subnet holding a smaller share.
	Evicted uint64
	// RefusedWatches counts the watch registrations refused for
	// Config.MaxWatchers.
	RefusedWatches uint64
}

// Stats returns a snapshot of the DHT's counters.
func (d *DHT) Stats() Stats {
	st := d.st
	st.mu.Lock()
	defer st.mu.Unlock()
	return Stats{
		Records: st.n, Tombstones: st.tombs, Bytes: st.bytes, Watchers: st.watchers,
		DroppedNotifications: d.notifies.Dropped(),
		RefusedOwner:         st.ctr.owner, RefusedSubnet: st.ctr.subnet, RefusedFull: st.ctr.full,
		RefusedPerKey: st.ctr.perKey, RefusedInvalid: st.ctr.invalid, RefusedStale: st.ctr.stale,
		Evicted: st.ctr.evicted, RefusedWatches: st.ctr.watches,
	}
}

func (d *DHT) nextSeq() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq = max(d.seq+1, uint64(time.Now().UnixNano()))
	return d.seq
}

// Add stores value under key (a[key] += value) for ttl (0: the default TTL),
// signed by this node. Values of other owners under the key are kept; an
// equal value of this node gets the new TTL. It returns once at least one
// replica stored it.
func (d *DHT) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	defer func(start time.Time) { d.ops.Done("add", start, err) }(time.Now())
	if ttl == 0 {
		ttl = d.cfg.DefaultTTL
	}
	switch {
	case len(key) > d.cfg.MaxKeySize:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrKeyTooLarge, len(key), d.cfg.MaxKeySize)
	case len(value) > d.cfg.MaxValueSize:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrValueTooLarge, len(value), d.cfg.MaxValueSize)
	case ttl < 0 || ttl > d.cfg.MaxTTL:
		return fmt.Errorf("%w: %v (at most %v)", ErrBadTTL, ttl, d.cfg.MaxTTL)
	}
	op := &signedOp{op: opAdd, owner: d.ov.ID(), seq: d.nextSeq(), expires: time.Now().Add(ttl).UnixMilli(),
		key: key, value: slices.Clone(value)}
	op.sign(d.ov.Sign, d.net)
	if err := d.storeOnReplicas(ctx, op); err != nil {
		return err
	}
	d.mu.Lock()
	if d.own[key] == nil {
		d.own[key] = map[string]*signedOp{}
	}
	d.own[key][string(value)] = op
	d.mu.Unlock()
	return nil
}

// Remove takes one of this node's values from key (a[key] -= value). Values
// of other owners are untouched: replicas apply a removal only to the values
// of the node that signed it.
func (d *DHT) Remove(ctx context.Context, key string, value []byte) (err error) {
	defer func(start time.Time) { d.ops.Done("remove", start, err) }(time.Now())
	d.mu.Lock()
	exp := time.Now().Add(d.cfg.DefaultTTL)
	if add := d.own[key][string(value)]; add != nil {
		exp = add.expiry()
	}
	d.mu.Unlock()
	op := &signedOp{op: opRemove, owner: d.ov.ID(), seq: d.nextSeq(), expires: exp.UnixMilli(), key: key, value: []byte(valueHash(value))}
	op.sign(d.ov.Sign, d.net)
	if err := d.storeOnReplicas(ctx, op); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.own[key], string(value))
	d.tombs[key] = append(d.tombs[key], op)
	d.mu.Unlock()
	return nil
}

// Delete removes every value of this node under key.
func (d *DHT) Delete(ctx context.Context, key string) (err error) {
	defer func(start time.Time) { d.ops.Done("delete", start, err) }(time.Now())
	d.mu.Lock()
	exp := time.Now().Add(d.cfg.DefaultTTL)
	for _, add := range d.own[key] {
		if add.expiry().After(exp) {
			exp = add.expiry()
		}
	}
	d.mu.Unlock()
	op := &signedOp{op: opDelete, owner: d.ov.ID(), seq: d.nextSeq(), expires: exp.UnixMilli(), key: key}
	op.sign(d.ov.Sign, d.net)
	if err := d.storeOnReplicas(ctx, op); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.own, key)
	d.tombs[key] = append(d.tombs[key], op)
	d.mu.Unlock()
	return nil
}

// replicas returns the replica set of key: up to Replicas live nodes
// closest to KeyOf(key), this node included if it is one, found by a
// lookup over disjoint paths (overlay.LookupDiverse), so that nodes lying
// in lookups do not make up the set unless every path met them, and at most
// one node per subnet (overlay.Diverse), so that identities ground next to
// the key on one network take one place at most and do not hide the nodes
// behind them. The lookup's order
// is kept: nodes no path contradicted first, each part nearest first (this
// node takes its place among the first, and the subnet limit does not
// count it). Reads and writes go to every
// replica, and reads merge what they return, so one replica that withholds
// a record does not hide it.
func (d *DHT) replicas(ctx context.Context, key string) ([]overlay.ID, error) {
	k := overlay.KeyOf([]byte(key))
	peers, trusted, err := d.ov.LookupDiverse(ctx, k, 1, d.cfg.Replicas)
	if err != nil {
		return nil, err
	}
	if d.ov.IsClient() {
		// A light client is no replica: the set is the full nodes alone.
		self := d.ov.ID()
		return diverse(slices.DeleteFunc(slices.Clone(peers), func(p overlay.Peer) bool { return p.ID == self }), overlay.ID{}, d.cfg.Replicas), nil
	}
	return pickReplicas(peers, trusted, d.ov.ID(), k, d.cfg.Replicas), nil
}

// pickReplicas is the replica set among peers as a lookup returned them (the
// first trusted of them no path contradicted, each part nearest first to
// k): self takes its place by distance among the trusted, and the first n
// are kept in that order, one per subnet.
func pickReplicas(peers []overlay.Peer, trusted int, self overlay.ID, k overlay.Key, n int) []overlay.ID {
	peers = slices.DeleteFunc(slices.Clone(peers), func(p overlay.Peer) bool { return p.ID == self })
	at := 0
	for at < min(trusted, len(peers)) && k.Closer(peers[at].ID.Key(), self.Key()) {
		at++
	}
	peers = slices.Insert(peers, at, overlay.Peer{ID: self}) // not limited: a node is no Sybil to itself
	return diverse(peers, self, n)
}

// diverse keeps the first n of peers, at most one per subnet, then, if
// the peers span fewer than n subnets (nodes on one machine or one LAN),
// the others in order (overlay.DiverseFill). This node
// (the peer with no address that pickReplicas inserts) is not limited, and
// does not count toward the limit of its subnet, so that nodes sharing one
// address (on one machine) still make replica sets of two; the other peers
// whose address this node does not know count as one subnet, so that
// lookup answers naming nodes without an address cannot fill the set.
func diverse(peers []overlay.Peer, self overlay.ID, n int) []overlay.ID {
	unknown := netip.IPv6Unspecified()
	peers = overlay.DiverseFill(peers, func(p overlay.Peer) netip.Addr {
		switch {
		case p.ID == self:
			return netip.Addr{}
		case !p.Addr.Addr().IsValid():
			return unknown
		}
		return p.Addr.Addr()
	}, 1, n)
	ids := make([]overlay.ID, len(peers))
	for i, p := range peers {
		ids[i] = p.ID
	}
	return ids
}

func (d *DHT) request(ctx context.Context, to overlay.ID, req []byte) ([]byte, error) {
	reply, _, err := d.ov.SendService(ctx, wire.ServiceDHT, req, to.Key(), false)
	return reply, err
}

// storeOnReplicas sends op to key's replica set; it succeeds if one replica
// stored it.
func (d *DHT) storeOnReplicas(ctx context.Context, op *signedOp) error {
	if d.closed() {
		return ErrClosed
	}
	ctx, end := d.callContext(ctx)
	return end(d.storeOn(ctx, op))
}

func (d *DHT) storeOn(ctx context.Context, op *signedOp) error {
	ids, err := d.replicas(ctx, op.key)
	if err != nil {
		return err
	}
	req := append([]byte{reqStore}, op.raw...)
	statuses := make([]byte, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			reply, err := d.request(ctx, id, req)
			if err == nil && len(reply) != 1 {
				err = errors.New("dht: malformed reply")
			}
			if errs[i] = err; err == nil {
				statuses[i] = reply[0]
			}
		})
	}
	wg.Wait()
	var quota, stale, invalid bool
	for i := range ids {
		switch {
		case errs[i] != nil:
		case statuses[i] == statusOK:
			return nil
		case statuses[i] == statusQuota:
			quota = true
		case statuses[i] == statusStale:
			stale = true
		default:
			invalid = true
		}
	}
	switch {
	case quota:
		return ErrQuota
	case stale:
		return ErrStale
	case invalid:
		return ErrInvalid
	}
	return fmt.Errorf("%w: %w", ErrNoReplica, errors.Join(errs...))
}

// Get returns every live value under key, of every owner: the union of what
// the replicas hold, so a lost replica does not hide a value. It takes one
// lookup and one round of reads.
func (d *DHT) Get(ctx context.Context, key string) ([]Record, error) {
	return d.GetFrom(ctx, key, overlay.ID{})
}

// GetFrom is Get for the values of one owner (all owners if owner is zero).
func (d *DHT) GetFrom(ctx context.Context, key string, owner overlay.ID) (_ []Record, err error) {
	defer func(start time.Time) { d.ops.Done("get", start, err) }(time.Now())
	if d.closed() {
		return nil, ErrClosed
	}
	if len(key) > d.cfg.MaxKeySize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrKeyTooLarge, len(key), d.cfg.MaxKeySize)
	}
	ctx, end := d.callContext(ctx)
	rs, err := d.getFrom(ctx, key, owner)
	if err = end(err); err != nil {
		return nil, err
	}
	return rs, nil
}

func (d *DHT) getFrom(ctx context.Context, key string, owner overlay.ID) ([]Record, error) {
	ids, err := d.replicas(ctx, key)
	if err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		all   []*signedOp
		errs  []error
		okays int
		wg    sync.WaitGroup
	)
	for _, id := range ids {
		wg.Go(func() {
			ops, err := d.readReplica(ctx, id, key, owner)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			okays++
			all = append(all, ops...)
		})
	}
	wg.Wait()
	if okays == 0 {
		return nil, fmt.Errorf("%w: %w", ErrNoReplica, errors.Join(errs...))
	}
	live := merge(all, time.Now())
	out := make([]Record, 0, len(live))
	for _, op := range live {
		if owner == (overlay.ID{}) || op.owner == owner {
			out = append(out, op.record())
		}
	}
	slices.SortFunc(out, func(a, b Record) int {
		if c := slices.Compare(a.Owner[:], b.Owner[:]); c != 0 {
			return c
		}
		return slices.Compare(a.Value, b.Value)
	})
	return out, nil
}

// readReplica reads every operation a replica holds under key, page by page.
func (d *DHT) readReplica(ctx context.Context, id overlay.ID, key string, owner overlay.ID) ([]*signedOp, error) {
	var out []*signedOp
	for offset := 0; ; {
		req := []byte{reqGet}
		req = binary.BigEndian.AppendUint16(req, uint16(len(key)))
		req = append(req, key...)
		req = append(req, owner[:]...)
		req = binary.BigEndian.AppendUint32(req, uint32(offset))
		reply, err := d.request(ctx, id, req)
		if err != nil {
			return nil, err
		}
		ops, count, total, err := parseGetReply(reply, key, d.net)
		if err != nil {
			return nil, err
		}
		out = append(out, ops...)
		offset += count
		if count == 0 || offset >= total {
			return out, nil
		}
	}
}

var errBadReply = errors.New("dht: malformed reply")

// parseGetReply decodes one page of a Get reply: the operations under key
// that verify (a replica cannot forge records: others are dropped), how
// many the page held, and how many the replica holds in all.
func parseGetReply(reply []byte, key string, net [8]byte) (ops []*signedOp, count, total int, err error) {
	if len(reply) < 7 || reply[0] != statusOK {
		return nil, 0, 0, errBadReply
	}
	total = int(binary.BigEndian.Uint32(reply[1:]))
	count = int(binary.BigEndian.Uint16(reply[5:]))
	rest := reply[7:]
	for range count {
		if len(rest) < 4 {
			return nil, 0, 0, errBadReply
		}
		l := int(binary.BigEndian.Uint32(rest))
		if l < 0 || len(rest)-4 < l {
			return nil, 0, 0, errBadReply
		}
		op, err := parseOp(slices.Clone(rest[4:4+l]), net)
		rest = rest[4+l:]
		if err != nil || op.key != key {
			continue
		}
		ops = append(ops, op)
	}
	return ops, count, total, nil
}

// Watch reports changes to key (values added, removed, expired) as the
// replica set sees them, until ctx ends or the DHT closes; then the channel
// is closed. It returns once the replicas have registered the watch.
func (d *DHT) Watch(ctx context.Context, key string) (<-chan Event, error) {
	if d.closed() {
		return nil, ErrClosed
	}
	if len(key) > d.cfg.MaxKeySize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrKeyTooLarge, len(key), d.cfg.MaxKeySize)
	}
	w := &watch{ch: make(chan Event, 256), seen: map[string]bool{}}
	d.mu.Lock()
	if d.watches == nil {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.watches[key] = append(d.watches[key], w)
	d.mu.Unlock()
	rctx, end := d.callContext(ctx)
	if err := end(d.registerWatch(rctx, key)); err != nil {
		d.dropWatch(key, w)
		return nil, err
	}
	// Renew the lease until ctx ends (then the watch ends) or the DHT
	// closes (then Close closes the channel).
	if !d.scope.Go(func(life context.Context) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(life, cancel)()
		t := time.NewTicker(watchLease / 3)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				if life.Err() == nil {
					d.dropWatch(key, w)
				}
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(wctx, watchLease/3)
				_ = d.registerWatch(rctx, key)
				cancel()
			}
		}
	}) {
		d.dropWatch(key, w)
		return nil, ErrClosed
	}
	return w.ch, nil
}

const watchLease = time.Minute

func (d *DHT) dropWatch(key string, w *watch) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watches == nil {
		return
	}
	ws := d.watches[key]
	if i := slices.Index(ws, w); i >= 0 {
		d.watches[key] = slices.Delete(ws, i, i+1)
		close(w.ch)
	}
}

func (d *DHT) registerWatch(ctx context.Context, key string) error {
	ids, err := d.replicas(ctx, key)
	if err != nil {
		return err
	}
	req := []byte{reqWatch}
	req = binary.BigEndian.AppendUint16(req, uint16(len(key)))
	req = append(req, key...)
	req = binary.BigEndian.AppendUint32(req, uint32(watchLease.Milliseconds()))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	ok := 0
	for _, id := range ids {
		wg.Go(func() {
			_, err := d.request(ctx, id, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				ok++
			}
		})
	}
	wg.Wait()
	if ok == 0 {
		return fmt.Errorf("%w: %w", ErrNoReplica, errors.Join(errs...))
	}
	return nil
}
