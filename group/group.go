package group

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Messages of the group service, the first byte of its payloads.
const (
	msgJoin      byte = 1 // group(32) flags(1): the sender is (still) a child; flags bit 0: it has a member
	msgLeave     byte = 2 // group(32): the sender is no longer a child
	msgPublish   byte = 3 // envelope: a multicast for the root (routed by key)
	msgData      byte = 4 // envelope: a multicast going down the tree
	msgAny       byte = 5 // down(1) envelope: an anycast on its way to a member
	msgAnyResult byte = 6 // msgID(16) status(1): the outcome, to the anycast's origin
	msgBcast     byte = 7 // height(2) envelope: a broadcast, for the nodes sharing height bits with the receiver
	msgRoot      byte = 8 // group(32): the sender has just become the root; reply: 1 if the receiver, a root until now, attached to it
	msgRedirect  byte = 9 // group(32) target(32) flags(1) addr: from the receiver's parent: attach to target instead (prune)
)

// Anycast outcomes.
const (
	anyDelivered byte = 0
	anyEmpty     byte = 1
)

// Errors.
var (
	ErrEmptyGroup = errors.New("p2psock: the group has no members")
	ErrNotMember  = errors.New("p2psock: not a member of the group")
	ErrTooLarge   = errors.New("p2psock: group message too large")
	ErrClosed     = errors.New("p2psock: group service closed")
)

// Timing of the soft state: members and forwarders re-join their parent
// every Refresh; a parent forgets a child after 3 Refresh without one.
const (
	Refresh    = 5 * time.Second
	lease      = 3 * Refresh
	seenKeep   = 2 * time.Minute
	rootLookup = time.Minute
	// minFanout is the number of children below which a node that is not a
	// member hands its children to its own parent: a forwarder costs every
	// message an extra hop, worth it only when it fans out.
	minFanout = 4
	// maxFanout is the number of children above which a node hands the
	// children farthest from the key to member children nearer to it: a
	// wide node sends every message that many times and takes that many
	// acknowledgements at once.
	maxFanout = 16
	// redirectGrace is how long a redirected child stays under its old
	// parent after joining the new one, so that no message in flight through
	// the old parent is lost.
	redirectGrace = time.Second
	// noMoveFor is how long a node ignores Redirects to a node it could
	// not move to (no direct link, or the Join failed).
	noMoveFor = time.Minute
)

// Message is a message delivered to a member.
type Message struct {
	Data    []byte
	From    overlay.ID // the origin; its signature was verified
	Group   overlay.Key
	Anycast bool
}

// Groups is one node's part in every group tree: Scribe-style trees over the
// overlay, rooted at the node closest to the group's key.
type Groups struct {
	ov   *overlay.Overlay
	self overlay.ID
	sign func([]byte) []byte
	net  [8]byte
	log  *slog.Logger

	mu      sync.Mutex
	trees   map[overlay.Key]*tree
	anyWait map[[16]byte]chan byte
	bseen   map[[16]byte]time.Time
	started bool          // the maintenance loop runs
	drains  int           // drain goroutines running
	drained chan struct{} // signalled when a drain goroutine ends

	closing chan struct{}
	wgMu    sync.Mutex
	wg      sync.WaitGroup
	once    sync.Once
}

type tree struct {
	parent     overlay.ID
	hasParent  bool
	attaching  bool
	claimed    bool                     // this node, root, has told the nearest nodes (claimRoot)
	lookedAt   time.Time                // when this node last looked the key up before being the root
	children   map[overlay.ID]time.Time // lease expiry
	redirects  map[overlay.ID]time.Time // children told to attach elsewhere (Redirect): until when not to tell them again
	withMember map[overlay.ID]bool      // children that said they have a member (Join flags)
	noMove     map[overlay.ID]time.Time // Redirect targets this node could not move to, until when to ignore them
	members    []*Member
	seen       map[[16]byte]time.Time
	queues     map[overlay.ID]*queue
}

type queue struct {
	items   []*envelope
	running bool
}

// New starts the group service of a node: ov carries its messages, sign signs
// with the node's identity, network is the network's name.
func New(ov *overlay.Overlay, sign func([]byte) []byte, network string, log *slog.Logger) *Groups {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Groups{ov: ov, self: ov.ID(), sign: sign, net: wire.NetworkTag(network), log: log,
		trees: map[overlay.Key]*tree{}, anyWait: map[[16]byte]chan byte{}, bseen: map[[16]byte]time.Time{},
		closing: make(chan struct{}), drained: make(chan struct{}, 1)}
	ov.Handle(wire.ServiceGroup, g.handle)
	ov.HandleLink(wire.ServiceGroup, func(from overlay.ID, data []byte) bool {
		_, ok := g.handle(overlay.Message{Data: data, From: from, To: g.self.Key(), Service: wire.ServiceGroup})
		return ok
	})
	return g
}

// flushWait bounds how long Close waits for multicasts queued to children.
const flushWait = 2 * time.Second

// Close hands the multicasts already queued to this node's children on
// (waiting at most flushWait), then leaves every group and stops the
// service.
func (g *Groups) Close() error {
	g.once.Do(func() {
		t := time.NewTimer(flushWait)
		defer t.Stop()
		for {
			g.mu.Lock()
			busy := g.drains > 0
			g.mu.Unlock()
			if !busy {
				break
			}
			select {
			case <-g.drained:
				continue
			case <-t.C:
			}
			break
		}
		g.mu.Lock()
		type leave struct{ key, to [32]byte }
		var ls []leave
		for k, t := range g.trees {
			if t.hasParent {
				ls = append(ls, leave{k, t.parent})
			}
			for c := range t.children { // so they find a new parent at once
				ls = append(ls, leave{k, c})
			}
			for _, m := range t.members {
				m.closeLocked()
			}
		}
		g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var wg sync.WaitGroup
		for _, l := range ls {
			wg.Go(func() { g.send(ctx, l.to, append([]byte{msgLeave}, l.key[:]...)) })
		}
		wg.Wait()
		cancel()
		g.wgMu.Lock()
		close(g.closing)
		g.wgMu.Unlock()
		g.wg.Wait()
	})
	return nil
}

func (g *Groups) goTracked(f func()) bool {
	g.wgMu.Lock()
	defer g.wgMu.Unlock()
	select {
	case <-g.closing:
		return false
	default:
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

func (g *Groups) closed() bool {
	select {
	case <-g.closing:
		return true
	default:
		return false
	}
}

// send hands msg to the group service of node to: as a link message when
// this node has a link with it (tree edges, the next hop of an anycast, the
// bucket heads of a broadcast: the common case), else routed to its ID.
func (g *Groups) send(ctx context.Context, to overlay.ID, msg []byte) error {
	err := g.ov.SendLink(ctx, to, wire.ServiceGroup, msg)
	if !errors.Is(err, overlay.ErrNoLink) {
		return err
	}
	_, _, err = g.ov.SendService(ctx, wire.ServiceGroup, msg, to.Key(), false)
	return err
}

func (g *Groups) treeLocked(k overlay.Key) *tree {
	if !g.started { // the refresh loop runs once there is a tree to refresh
		g.started = true
		g.goTracked(g.maintain)
	}
	t := g.trees[k]
	if t == nil {
		t = &tree{children: map[overlay.ID]time.Time{}, redirects: map[overlay.ID]time.Time{}, withMember: map[overlay.ID]bool{},
			noMove: map[overlay.ID]time.Time{},
			seen:   map[[16]byte]time.Time{}, queues: map[overlay.ID]*queue{}}
		g.trees[k] = t
	}
	return t
}

// Member is a node's membership of a group: it receives the group's
// multicasts and some of its anycasts.
type Member struct {
	g      *Groups
	key    overlay.Key
	ch     chan Message
	closed bool
}

// Join makes this node a member of the group with key k. It returns once
// the node is attached to the group's tree (or is its root).
func (g *Groups) Join(ctx context.Context, k overlay.Key) (*Member, error) {
	if g.closed() {
		return nil, ErrClosed
	}
	m := &Member{g: g, key: k, ch: make(chan Message, 256)}
	g.mu.Lock()
	t := g.treeLocked(k)
	t.members = append(t.members, m)
	g.mu.Unlock()
	if err := g.attach(ctx, k); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Recv returns the next message for the member.
func (m *Member) Recv(ctx context.Context) (Message, error) {
	select {
	case msg, ok := <-m.ch:
		if !ok {
			return Message{}, ErrClosed
		}
		return msg, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Close ends the membership; the tree forgets the node when it has no other
// reason to stay in it.
func (m *Member) Close() error {
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	if t := m.g.trees[m.key]; t != nil {
		t.members = slices.DeleteFunc(t.members, func(x *Member) bool { return x == m })
	}
	m.closeLocked()
	return nil
}

func (m *Member) closeLocked() {
	if !m.closed {
		m.closed = true
		close(m.ch)
	}
}

// attach joins the tree of k through this node's next hop toward k, or makes
// this node the root when it has none.
func (g *Groups) attach(ctx context.Context, k overlay.Key, avoid ...overlay.ID) error {
	exclude := slices.Clone(avoid)
	g.mu.Lock()
	// A root looks for closer nodes once per rootLookup; in between, its
	// table and take-overs (becomeRoot) find them.
	looked := false
	if t := g.trees[k]; t != nil && t.claimed && time.Since(t.lookedAt) < rootLookup {
		looked = true
	}
	g.mu.Unlock()
	var found []overlay.ID
	for {
		next, ok := g.ov.NextHop(k, exclude...)
		if !ok && !looked && len(exclude) == len(avoid) {
			// About to be the root: make sure no closer node exists that this
			// node has not heard of yet (a fresh node's table fills as it goes).
			looked = true
			found, _ = g.ov.Lookup(ctx, k)
			g.mu.Lock()
			if t := g.trees[k]; t != nil {
				t.lookedAt = time.Now()
			}
			g.mu.Unlock()
			continue
		}
		g.mu.Lock()
		t := g.trees[k]
		if t == nil {
			g.mu.Unlock()
			return nil
		}
		if !ok {
			if t.hasParent {
				g.log.Debug("group: now the root", "group", k)
			}
			old, had := t.parent, t.hasParent
			t.hasParent = false
			claim := !t.claimed
			t.claimed = true
			g.mu.Unlock()
			if had {
				g.leaveAsync(old, k)
			}
			if claim { // only on becoming the root, not at every refresh
				cctx, cancel := context.WithTimeout(ctx, claimWait)
				g.claimRoot(cctx, k, found)
				cancel()
			}
			return nil
		}
		g.mu.Unlock()
		err := g.send(ctx, next, g.joinMsg(k))
		if err == nil {
			g.mu.Lock()
			old, had := t.parent, t.hasParent
			t.parent, t.hasParent, t.claimed = next, true, false
			g.mu.Unlock()
			if had && old != next {
				g.leaveAsync(old, k)
			}
			return nil
		}
		if ctx.Err() != nil || g.closed() {
			return err
		}
		g.log.Debug("group: join failed", "next", next, "err", err)
		exclude = append(exclude, next)
	}
}

// joinMsg is a Join for k's tree, saying whether this node has a member
// there.
func (g *Groups) joinMsg(k overlay.Key) []byte {
	var flags byte
	g.mu.Lock()
	if t := g.trees[k]; t != nil && slices.ContainsFunc(t.members, func(m *Member) bool { return !m.closed }) {
		flags = 1
	}
	g.mu.Unlock()
	return append(append([]byte{msgJoin}, k[:]...), flags)
}

// reattach finds t a place in k's tree in the background, not under the
// nodes in avoid; t.attaching is set, and cleared when done.
func (g *Groups) reattach(t *tree, k overlay.Key, avoid ...overlay.ID) {
	g.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Refresh)
		defer cancel()
		g.attach(ctx, k, avoid...)
		g.mu.Lock()
		t.attaching = false
		g.mu.Unlock()
		g.prune(k)
	})
}

// prune keeps k's tree lean. A forwarder with few children (no member
// here, a parent, fewer than minFanout children) tells each child to attach
// to its parent instead. A node with more than maxFanout children tells
// those farthest from the key to attach to its member children nearest to
// it (members never hand their children on, so nothing comes back). Every
// new parent is closer to the key than the child, so the tree stays ordered
// by distance to the key. A child hears a Redirect at most every Refresh/2
// (one that was busy, or not yet attached, hears it again at the next
// refresh).
func (g *Groups) prune(k overlay.Key) {
	g.mu.Lock()
	t := g.trees[k]
	if t == nil || t.attaching {
		g.mu.Unlock()
		return
	}
	now := time.Now()
	free := func(c overlay.ID) bool {
		until, ok := t.redirects[c]
		return !ok || !until.After(now)
	}
	type move struct{ child, to overlay.ID }
	var moves []move
	switch {
	case len(t.members) == 0 && t.hasParent && len(t.children) > 0 && len(t.children) < minFanout:
		for c := range t.children {
			if free(c) {
				moves = append(moves, move{c, t.parent})
			}
		}
	case len(t.children) > maxFanout:
		kids := make([]overlay.ID, 0, len(t.children))
		for c := range t.children {
			kids = append(kids, c)
		}
		slices.SortFunc(kids, func(a, b overlay.ID) int { return overlay.CmpDistance(a.Key(), b.Key(), k) })
		var anchors []overlay.ID
		for _, c := range kids[:maxFanout] {
			if t.withMember[c] {
				anchors = append(anchors, c)
			}
		}
		if len(anchors) == 0 {
			break
		}
		for i, c := range kids[maxFanout:] {
			if free(c) {
				moves = append(moves, move{c, anchors[i%len(anchors)]})
			}
		}
	}
	for _, mv := range moves {
		t.redirects[mv.child] = now.Add(Refresh / 2)
	}
	g.mu.Unlock()
	for _, mv := range moves {
		peer, ok := g.ov.PeerInfo(mv.to)
		if !ok {
			continue
		}
		msg := append([]byte{msgRedirect}, k[:]...)
		msg = append(msg, mv.to[:]...)
		var flags byte
		if peer.Public {
			flags = 1
		}
		msg = wire.AppendAddr(append(msg, flags), peer.Addr)
		g.goTracked(func() {
			ctx, cancel := context.WithTimeout(context.Background(), Refresh)
			defer cancel()
			g.send(ctx, mv.child, msg)
		})
	}
}

// moveTo attaches this node to peer when its parent (old) redirected it
// there (prune): it links with peer (through old),
// joins it, and leaves old after redirectGrace. It stays under old if it
// cannot get a direct link with peer or peer does not take the join.
func (g *Groups) moveTo(t *tree, k overlay.Key, old overlay.ID, peer overlay.Peer) {
	defer func() {
		g.mu.Lock()
		t.attaching = false
		g.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), Refresh)
	defer cancel()
	refuse := func() { // do not try peer again for a while: its parent keeps asking
		g.mu.Lock()
		t.noMove[peer.ID] = time.Now().Add(noMoveFor)
		g.mu.Unlock()
	}
	if direct, err := g.ov.LinkWith(ctx, peer, old); err != nil || !direct {
		g.log.Debug("group: redirect: no direct link", "to", peer.ID, "err", err)
		refuse()
		return
	}
	if err := g.send(ctx, peer.ID, g.joinMsg(k)); err != nil {
		g.log.Debug("group: redirect: join failed", "to", peer.ID, "err", err)
		refuse()
		return
	}
	g.mu.Lock()
	moved := t.hasParent && t.parent == old
	if moved {
		t.parent = peer.ID
	}
	undo := !moved && !(t.hasParent && t.parent == peer.ID)
	g.mu.Unlock()
	if !moved {
		if undo { // the tree changed meanwhile, and not toward peer
			g.leaveAsync(peer.ID, k)
		}
		return
	}
	g.log.Debug("group: redirected", "from", old, "to", peer.ID)
	g.goTracked(func() {
		timer := time.NewTimer(redirectGrace)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-g.closing:
			return // Close tells the parent
		}
		g.mu.Lock()
		back := g.trees[k] != t || (t.hasParent && t.parent == old)
		g.mu.Unlock()
		if back { // old is the parent again (or the tree is gone): keep it
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		g.send(ctx, old, append([]byte{msgLeave}, k[:]...))
	})
}

// forwardPublish passes a Publish on toward k's root, as a new message of
// this node (bounded to 10 s; the outcome is not reported back).
func (g *Groups) forwardPublish(raw []byte, k overlay.Key) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.ov.SendService(ctx, wire.ServiceGroup, raw, k, true)
}

// outsideTree reports whether this node takes no part in k's tree: no
// state, or state with no member, no child, no parent and no claim made.
func (g *Groups) outsideTree(k overlay.Key) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.trees[k]
	return t == nil || (len(t.members) == 0 && len(t.children) == 0 && !t.hasParent && !t.claimed)
}

// becomeRoot makes this node, if it is the nearest to k, the root of k's
// tree: it looks k up (its table may not know the nearest nodes yet), and if
// no closer node turns up, claims the root (claimRoot), so that the root of
// the tree formed before it appeared attaches to it. It returns false if a
// closer node turned up: the message goes on toward it.
func (g *Groups) becomeRoot(k overlay.Key) bool {
	ctx, cancel := context.WithTimeout(context.Background(), Refresh)
	defer cancel()
	found, _ := g.ov.Lookup(ctx, k)
	if _, closer := g.ov.NextHop(k); closer {
		return false
	}
	g.mu.Lock()
	t := g.treeLocked(k)
	claim := !t.hasParent && !t.claimed
	t.claimed = true
	g.mu.Unlock()
	if claim {
		cctx, cancel := context.WithTimeout(ctx, claimWait)
		defer cancel()
		g.claimRoot(cctx, k, found)
	}
	return true
}

// claimRoot tells the nodes nearest k after this one (from a lookup, or the
// routing table) that this node is now the root of k's tree. One that was a
// root of k until now (the tree had split: it had not yet heard of this
// closer node) attaches to this node at once, and becomes its child, so a
// multicast published right away reaches both parts.
func (g *Groups) claimRoot(ctx context.Context, k overlay.Key, near []overlay.ID) {
	if len(near) == 0 {
		near = g.ov.Closest(k, claimFanout+1)
	}
	msg := append([]byte{msgRoot}, k[:]...)
	var wg sync.WaitGroup
	n := 0
	for _, id := range near {
		if id == g.self || n == claimFanout {
			continue
		}
		n++
		wg.Go(func() {
			reply, _, err := g.ov.SendService(ctx, wire.ServiceGroup, msg, id.Key(), false)
			if err != nil || len(reply) != 1 || reply[0] != 1 {
				return
			}
			g.mu.Lock()
			if t := g.trees[k]; t != nil && !t.hasParent {
				t.children[id] = time.Now().Add(lease)
			}
			g.mu.Unlock()
		})
	}
	wg.Wait()
}

// claimFanout is how many of the nearest nodes a new root tells, within
// claimWait.
const (
	claimFanout = 3
	claimWait   = time.Second
)

// refresh renews this node's place in the tree of k: it re-joins its parent
// while the parent answers (a tree that works is left alone: moving would
// lose messages in flight), and finds a new one when it does not. The root
// checks that no closer node has appeared, which would be the new root.
func (g *Groups) refresh(ctx context.Context, k overlay.Key) {
	g.mu.Lock()
	t := g.trees[k]
	if t == nil {
		g.mu.Unlock()
		return
	}
	parent, has := t.parent, t.hasParent
	g.mu.Unlock()
	if has && g.send(ctx, parent, g.joinMsg(k)) == nil {
		return
	}
	g.attach(ctx, k)
}

func (g *Groups) leaveAsync(parent overlay.ID, k overlay.Key) {
	g.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		g.send(ctx, parent, append([]byte{msgLeave}, k[:]...))
	})
}

// maintain refreshes the trees: re-joins parents, expires children, drops
// trees nobody needs.
func (g *Groups) maintain() {
	tick := time.NewTicker(Refresh)
	defer tick.Stop()
	for {
		select {
		case <-g.closing:
			return
		case now := <-tick.C:
			var keys []overlay.Key
			g.mu.Lock()
			for k, t := range g.trees {
				for c, until := range t.children {
					if !until.After(now) {
						delete(t.children, c)
						delete(t.queues, c)
						delete(t.withMember, c)
					}
				}
				for c, until := range t.redirects {
					if !until.After(now) {
						delete(t.redirects, c)
					}
				}
				for id, until := range t.noMove {
					if !until.After(now) {
						delete(t.noMove, id)
					}
				}
				for id, at := range t.seen {
					if now.Sub(at) > seenKeep {
						delete(t.seen, id)
					}
				}
				if len(t.members) == 0 && len(t.children) == 0 {
					if t.hasParent {
						g.leaveAsync(t.parent, k)
					}
					delete(g.trees, k)
					continue
				}
				keys = append(keys, k)
			}
			for id, at := range g.bseen {
				if now.Sub(at) > seenKeep {
					delete(g.bseen, id)
				}
			}
			g.mu.Unlock()
			for _, k := range keys {
				ctx, cancel := context.WithTimeout(context.Background(), Refresh)
				g.refresh(ctx, k)
				cancel()
				g.prune(k)
			}
		}
	}
}

// Parent returns this node's parent in the tree of group k; ok is false
// for the root and for a node outside the tree.
func (g *Groups) Parent(k overlay.Key) (parent overlay.ID, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.trees[k]; t != nil && t.hasParent {
		return t.parent, true
	}
	return overlay.ID{}, false
}

// Children returns this node's children in the tree of group k.
func (g *Groups) Children(k overlay.Key) []overlay.ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ids []overlay.ID
	if t := g.trees[k]; t != nil {
		for c := range t.children {
			ids = append(ids, c)
		}
	}
	return ids
}

// Publish multicasts data to every member of group k: to the root, which
// sends it down the tree. It returns once the root has accepted it.
func (g *Groups) Publish(ctx context.Context, k overlay.Key, data []byte) error {
	if len(data) > MaxData {
		return ErrTooLarge
	}
	e := seal(kindMulticast, k, g.self, data, g.sign, g.net)
	_, _, err := g.ov.SendService(ctx, wire.ServiceGroup, append([]byte{msgPublish}, e.raw...), k, true)
	return err
}

// Anycast hands data to exactly one member of group k: the first node of
// k's tree on the way to the root gives it to a member in its subtree.
func (g *Groups) Anycast(ctx context.Context, k overlay.Key, data []byte) error {
	if len(data) > MaxData {
		return ErrTooLarge
	}
	e := seal(kindAnycast, k, g.self, data, g.sign, g.net)
	ch := make(chan byte, 1)
	g.mu.Lock()
	g.anyWait[e.msgID] = ch
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.anyWait, e.msgID)
		g.mu.Unlock()
	}()
	g.goTracked(func() { g.anyStep(e, false) })
	select {
	case st := <-ch:
		if st == anyEmpty {
			return ErrEmptyGroup
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-g.closing:
		return ErrClosed
	}
}

// anyStep moves an anycast one step: to a local member, down to a child, or
// up toward the root; the root of an empty tree reports the group empty.
func (g *Groups) anyStep(e *envelope, down bool) {
	g.mu.Lock()
	t := g.trees[e.group]
	var member *Member
	var children []overlay.ID
	if t != nil {
		for _, m := range t.members {
			if !m.closed {
				member = m
				break
			}
		}
		for c := range t.children {
			children = append(children, c)
		}
	}
	if member != nil {
		select {
		case member.ch <- Message{Data: e.data, From: e.origin, Group: e.group, Anycast: true}:
		default:
		}
		g.mu.Unlock()
		g.anyResult(e, anyDelivered)
		return
	}
	g.mu.Unlock()
	rand.Shuffle(len(children), func(i, j int) { children[i], children[j] = children[j], children[i] })
	msg := func(down byte) []byte { return append([]byte{msgAny, down}, e.raw...) }
	for _, c := range children {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := g.send(ctx, c, msg(1))
		cancel()
		if err == nil {
			return
		}
	}
	if !down {
		var exclude []overlay.ID
		tookOver := false
		for {
			next, ok := g.ov.NextHop(e.group, exclude...)
			if !ok && len(exclude) == 0 && !tookOver && g.outsideTree(e.group) {
				// The nearest node, outside the tree (see handle, Publish):
				// take the root over, then hand the anycast down; or go on
				// toward a closer node the lookup found.
				tookOver = true
				if !g.becomeRoot(e.group) {
					continue
				}
				if !g.outsideTree(e.group) {
					g.anyStep(e, true)
					return
				}
				break
			}
			if !ok {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := g.send(ctx, next, msg(0))
			cancel()
			if err == nil {
				return
			}
			exclude = append(exclude, next)
		}
	}
	g.log.Debug("group: anycast finds no member", "group", e.group, "down", down, "children", len(children), "outside", g.outsideTree(e.group))
	g.anyResult(e, anyEmpty)
}

func (g *Groups) anyResult(e *envelope, status byte) {
	if e.origin == g.self {
		g.mu.Lock()
		ch := g.anyWait[e.msgID]
		g.mu.Unlock()
		if ch != nil {
			select {
			case ch <- status:
			default:
			}
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.send(ctx, e.origin, append(append([]byte{msgAnyResult}, e.msgID[:]...), status))
}

// disseminate delivers a multicast to local members and queues it for every
// child, once per message.
func (g *Groups) disseminate(e *envelope) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.treeLocked(e.group)
	if _, dup := t.seen[e.msgID]; dup {
		return
	}
	t.seen[e.msgID] = time.Now()
	for _, m := range t.members {
		if !m.closed {
			select {
			case m.ch <- Message{Data: e.data, From: e.origin, Group: e.group}:
			default: // a member that does not read loses messages rather than stall the tree
			}
		}
	}
	for c := range t.children {
		q := t.queues[c]
		if q == nil {
			q = &queue{}
			t.queues[c] = q
		}
		q.items = append(q.items, e)
		if !q.running {
			q.running = true
			g.drains++
			if !g.goTracked(func() { g.drain(e.group, c, q) }) {
				q.running = false
				g.drains--
			}
		}
	}
}

// drain sends a child its queued multicasts in order.
func (g *Groups) drain(k overlay.Key, child overlay.ID, q *queue) {
	for {
		g.mu.Lock()
		if len(q.items) == 0 || g.closed() {
			q.running = false
			g.drains--
			g.mu.Unlock()
			select {
			case g.drained <- struct{}{}:
			default:
			}
			return
		}
		e := q.items[0]
		q.items = q.items[1:]
		g.mu.Unlock()
		for try := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), Refresh)
			err := g.send(ctx, child, append([]byte{msgData}, e.raw...))
			cancel()
			if err == nil || g.closed() {
				break
			}
			g.log.Debug("group: child did not take a multicast", "child", child, "try", try, "err", err)
		}
	}
}

// Broadcast sends data to every node of the network: each node hands it to
// one contact in each of its buckets deeper than the part of the ID space it
// was given, so about N−1 messages reach every node in O(log N) steps.
func (g *Groups) Broadcast(ctx context.Context, data []byte) error {
	if len(data) > MaxData {
		return ErrTooLarge
	}
	e := seal(kindBroadcast, overlay.Key{}, g.self, data, g.sign, g.net)
	return g.broadcastStep(ctx, e, 0)
}

func (g *Groups) broadcastStep(ctx context.Context, e *envelope, height int) error {
	g.mu.Lock()
	if _, dup := g.bseen[e.msgID]; dup {
		g.mu.Unlock()
		return nil
	}
	g.bseen[e.msgID] = time.Now()
	g.mu.Unlock()
	g.ov.Deliver(overlay.Message{Data: e.data, From: e.origin, To: g.self.Key(), Broadcast: true})
	var errs []error
	for b, id := range g.ov.BucketHeads(height) {
		msg := binary.BigEndian.AppendUint16([]byte{msgBcast}, uint16(b+1))
		if err := g.send(ctx, id, append(msg, e.raw...)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handle serves the group messages of other nodes. It runs on the node's
// packet path: anything that waits goes to a goroutine.
func (g *Groups) handle(m overlay.Message) ([]byte, bool) {
	if g.closed() || len(m.Data) < 1 {
		return nil, false
	}
	ok := []byte{0}
	body := m.Data[1:]
	switch m.Data[0] {
	case msgJoin, msgLeave:
		if len(body) != 32 && (m.Data[0] != msgJoin || len(body) != 33) {
			return ok, true
		}
		k := overlay.Key(body[:32])
		g.mu.Lock()
		t := g.treeLocked(k)
		if m.Data[0] == msgLeave {
			delete(t.children, m.From)
			delete(t.queues, m.From)
			delete(t.redirects, m.From)
			delete(t.withMember, m.From)
			orphan := t.hasParent && t.parent == m.From && !t.attaching
			if orphan { // the parent is going: find another one now
				t.hasParent = false
				t.attaching = true
			}
			g.mu.Unlock()
			if orphan {
				g.reattach(t, k, m.From)
			}
			return ok, true
		}
		_, known := t.children[m.From]
		t.children[m.From] = time.Now().Add(lease)
		t.withMember[m.From] = len(body) == 33 && body[32]&1 != 0
		needAttach := !t.hasParent && !t.attaching && !t.claimed // a new forwarder; not the root
		if needAttach {
			t.attaching = true
		}
		g.mu.Unlock()
		if needAttach {
			g.reattach(t, k)
		} else if !known {
			g.goTracked(func() { g.prune(k) })
		}
		return ok, true
	case msgRedirect:
		if len(body) < 65 {
			return ok, true
		}
		k := overlay.Key(body[:32])
		target := overlay.ID(body[32:64])
		addr, rest, err := wire.ParseAddr(body[65:])
		if err != nil || len(rest) != 0 || target == g.self ||
			overlay.CmpDistance(target.Key(), g.self.Key(), k) >= 0 {
			return ok, true // malformed, or the target is no closer to the key than this node
		}
		g.mu.Lock()
		t := g.trees[k]
		if t == nil || !t.hasParent || t.parent != m.From || t.attaching || t.noMove[target].After(time.Now()) {
			g.mu.Unlock()
			return ok, true // only the current parent redirects, and not to a node this one failed to move to
		}
		t.attaching = true
		g.mu.Unlock()
		peer := overlay.Peer{ID: target, Addr: addr, Public: body[64]&1 != 0}
		g.goTracked(func() { g.moveTo(t, k, m.From, peer) })
		return ok, true
	case msgRoot:
		if len(body) != 32 {
			return ok, true
		}
		k := overlay.Key(body)
		g.mu.Lock()
		defer g.mu.Unlock()
		t := g.trees[k]
		if t == nil || t.hasParent || overlay.CmpDistance(m.From.Key(), g.self.Key(), k) >= 0 {
			return ok, true // not a root of k, or the sender is no closer
		}
		g.log.Debug("group: a closer root appeared", "group", k, "root", m.From)
		t.parent, t.hasParent, t.claimed = m.From, true, false
		return []byte{1}, true
	case msgPublish, msgData:
		e, err := open(body, g.net)
		if err != nil || e.kind != kindMulticast {
			return ok, true // a forged message is dropped; acknowledging stops retries
		}
		if m.Data[0] == msgPublish {
			raw := m.Data
			if _, notRoot := g.ov.NextHop(e.group); notRoot {
				// Routed here by key but a closer node is known: pass it on.
				g.goTracked(func() { g.forwardPublish(raw, e.group) })
				return ok, true
			}
			if g.outsideTree(e.group) {
				// The nearest node, but not in the tree: a node that joined
				// near the key after the tree formed. It takes the root over
				// first, so the old root's tree hangs under it.
				g.goTracked(func() {
					if g.becomeRoot(e.group) {
						g.disseminate(e)
					} else {
						g.forwardPublish(raw, e.group)
					}
				})
				return ok, true
			}
		}
		g.disseminate(e)
		return ok, true
	case msgAny:
		if len(body) < 1 {
			return ok, true
		}
		e, err := open(body[1:], g.net)
		if err != nil || e.kind != kindAnycast {
			return ok, true
		}
		down := body[0] == 1
		g.goTracked(func() { g.anyStep(e, down) })
		return ok, true
	case msgAnyResult:
		if len(body) != 17 {
			return ok, true
		}
		g.mu.Lock()
		ch := g.anyWait[[16]byte(body[:16])]
		g.mu.Unlock()
		if ch != nil {
			select {
			case ch <- body[16]:
			default:
			}
		}
		return ok, true
	case msgBcast:
		if len(body) < 2 {
			return ok, true
		}
		height := int(binary.BigEndian.Uint16(body))
		e, err := open(body[2:], g.net)
		if err != nil || e.kind != kindBroadcast {
			return ok, true
		}
		g.goTracked(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			g.broadcastStep(ctx, e, height)
		})
		return ok, true
	}
	return ok, true
}
