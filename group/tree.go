package group

import (
	"context"
	"slices"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// place is where a node stands in a tree.
type place uint8

const (
	// detached: no parent and no claim to the root. A new tree (a member
	// that has not attached yet, a forwarder before its first attach), a
	// forwarder whose parent left, or a node outside the tree.
	detached place = iota
	// attached: tree.parent is the node's parent.
	attached
	// rooted: the node found no closer node and claimed the root.
	rooted
)

// task is the background work running on a tree that must not run twice
// at once and that pruning and Redirects wait for.
type task uint8

const (
	idle      task = iota
	attaching      // an attach started by a received Join (a new forwarder) or by the parent's Leave
	moving         // a move to the node a Redirect named
)

// tree is a node's state in one group's tree. Every field is guarded by
// Groups.mu. place, parent and task change only in the Locked methods
// below; the maps are the tree's soft state, changed by the handlers and
// the refresh.
type tree struct {
	place    place
	parent   overlay.ID // valid when place == attached
	task     task
	lookedAt time.Time // when this node last looked the key up before being the root

	children   map[overlay.ID]time.Time // lease expiry
	withMember map[overlay.ID]bool      // children whose last Join said they have a member
	redirects  map[overlay.ID]time.Time // children told to attach elsewhere: until when not to tell them again
	noMove     map[overlay.ID]time.Time // Redirect targets this node could not move to: until when to ignore them
	members    []*Member
	seen       map[[16]byte]time.Time // multicast msgIDs, when first seen
	queues     map[overlay.ID]*queue  // per child: multicasts to send it, in order
}

// queue is a child's multicasts waiting to be sent; running says a drain
// goroutine sends them.
type queue struct {
	items   []*envelope
	running bool
}

func newTree() *tree {
	return &tree{children: map[overlay.ID]time.Time{}, withMember: map[overlay.ID]bool{},
		redirects: map[overlay.ID]time.Time{}, noMove: map[overlay.ID]time.Time{},
		seen: map[[16]byte]time.Time{}, queues: map[overlay.ID]*queue{}}
}

// setParentLocked makes p this node's parent. It returns the former
// parent if there was another one, which is to be sent a Leave.
func (t *tree) setParentLocked(p overlay.ID) (old overlay.ID, leaveOld bool) {
	old, leaveOld = t.parent, t.place == attached && t.parent != p
	t.place, t.parent = attached, p
	return old, leaveOld
}

// becomeRootLocked makes this node the root. It returns the former parent
// if it had one (to be sent a Leave), and whether the node is to claim the
// root: only when it was not the root already.
func (t *tree) becomeRootLocked() (old overlay.ID, leaveOld, claim bool) {
	old, leaveOld, claim = t.parent, t.place == attached, t.place != rooted
	t.place, t.parent = rooted, overlay.ID{}
	return old, leaveOld, claim
}

// detachLocked forgets the parent, which is leaving.
func (t *tree) detachLocked() { t.place, t.parent = detached, overlay.ID{} }

// beginLocked starts task w on the tree, if none runs.
func (t *tree) beginLocked(w task) bool {
	if t.task != idle {
		return false
	}
	t.task = w
	return true
}

// endLocked ends the task running on the tree.
func (t *tree) endLocked() { t.task = idle }

// isParentLocked reports whether id is this node's parent.
func (t *tree) isParentLocked(id overlay.ID) bool { return t.place == attached && t.parent == id }

// memberLocked returns the tree's first open member, nil if none.
func (t *tree) memberLocked() *Member {
	for _, m := range t.members {
		if !m.closed {
			return m
		}
	}
	return nil
}

// outsideLocked reports whether this node takes no part in the tree: no
// member, no child, no parent and no claim made.
func (t *tree) outsideLocked() bool {
	return len(t.members) == 0 && len(t.children) == 0 && t.place == detached
}

// dropChildLocked forgets child c (its queue goes; a drain already running
// sends what it holds).
func (t *tree) dropChildLocked(c overlay.ID) {
	delete(t.children, c)
	delete(t.queues, c)
	delete(t.withMember, c)
}

// expireLocked drops what has expired at now: children whose lease ended,
// redirect and move memories, msgIDs older than keep. It reports whether
// the tree is left with no member and no child.
func (t *tree) expireLocked(now time.Time, keep time.Duration) (empty bool) {
	for c, until := range t.children {
		if !until.After(now) {
			t.dropChildLocked(c)
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
		if now.Sub(at) > keep {
			delete(t.seen, id)
		}
	}
	return len(t.members) == 0 && len(t.children) == 0
}

// treeLocked returns the state of k's tree, created if there is none.
func (g *Groups) treeLocked(k overlay.Key) *tree {
	g.startUpkeepLocked()
	t := g.trees[k]
	if t == nil {
		t = newTree()
		g.trees[k] = t
	}
	return t
}

// outsideTree reports whether this node takes no part in k's tree.
func (g *Groups) outsideTree(k overlay.Key) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.trees[k]
	return t == nil || t.outsideLocked()
}

// Member is a node's membership of a group: it receives the group's
// multicasts and some of its anycasts.
type Member struct {
	g      *Groups
	key    overlay.Key
	ch     chan Message
	closed bool // guarded by g.mu, as is closing ch
}

// Join makes this node a member of the group with key k. It returns once
// the node is attached to the group's tree (or is its root).
func (g *Groups) Join(ctx context.Context, k overlay.Key) (_ *Member, err error) {
	defer func(start time.Time) { g.ops.Done("join", start, err) }(time.Now())
	m := &Member{g: g, key: k, ch: make(chan Message, g.cfg.MemberQueue)}
	g.mu.Lock()
	if g.closed.Load() {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	t := g.treeLocked(k)
	t.members = append(t.members, m)
	g.mu.Unlock()
	if err := g.call(ctx, func(ctx context.Context) error { return g.attach(ctx, k) }); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Recv returns the next message for the member. Once the member or the
// service is closed, and the messages already received are read, it fails
// with ErrClosed.
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
// reason to stay in it. It is idempotent and returns nil.
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

// deliverLocked hands msg to m without waiting: a member that does not read
// loses messages rather than stall the tree.
func (g *Groups) deliverLocked(m *Member, msg Message) {
	select {
	case m.ch <- msg:
	default:
		g.memberFull.Add(1)
	}
}

// Parent returns this node's parent in the tree of group k; ok is false
// for the root and for a node outside the tree.
func (g *Groups) Parent(k overlay.Key) (parent overlay.ID, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.trees[k]; t != nil && t.place == attached {
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
