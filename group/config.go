package group

import (
	"log/slog"
	"time"
)

// DefaultRefresh is the default of Config.Refresh.
const DefaultRefresh = 5 * time.Second

// Config configures a node's group service (New). The zero value works:
// every field that is zero (or negative) takes the default it gives. New
// copies the Config; changing it afterwards has no effect.
//
// The defaults are the values docs/PROTOCOL.md §11.11 lists. Tests shorten
// them; every node of a network should use the same Refresh, since a
// parent forgets a child after three of its own Refresh without a Join.
type Config struct {
	// Refresh is how often a member or forwarder joins its parent again,
	// and how often a node expires children, forgets old msgIDs and drops
	// the trees nobody needs. A parent forgets a child three Refresh after
	// its last Join (the child's lease). Default 5 s.
	Refresh time.Duration
	// JoinTimeout bounds the background work on one tree's place: an attach
	// a received Join or Leave starts, the refresh of one tree, a root
	// take-over (lookup and claim), and a move after a Redirect. Default
	// 5 s.
	JoinTimeout time.Duration
	// SendTimeout bounds each try of handing a child a multicast, each
	// child or next hop an anycast step tries, and each Redirect. Default
	// 5 s.
	SendTimeout time.Duration
	// ForwardTimeout bounds passing a Publish on toward the root, sending
	// an AnyResult, and all the sends of a forwarding node's broadcast
	// step. Default 10 s.
	ForwardTimeout time.Duration
	// LeaveTimeout bounds a Leave sent in the background. Default 2 s.
	LeaveTimeout time.Duration

	// RootLookup is how long a root goes without looking its key up again
	// at its refreshes (its table and take-overs find closer nodes in
	// between). Default 1 min.
	RootLookup time.Duration
	// ClaimFanout is how many of the nodes nearest the key a new root
	// tells (Root messages). Default 3.
	ClaimFanout int
	// ClaimTimeout bounds a new root's Root messages, sent in parallel.
	// Default 1 s.
	ClaimTimeout time.Duration

	// MinFanout is the number of children below which a forwarder that
	// has no member hands its children to its own parent and steps aside
	// (a forwarder costs every message an extra hop, worth it only where it
	// fans out); 1 turns stepping aside off. Default 4.
	MinFanout int
	// MaxFanout is the number of children above which a node hands those
	// farthest from the key to its member children nearest to it. Default
	// 16.
	MaxFanout int
	// RedirectRepeat is how long a node waits before it sends a child
	// another Redirect. Default Refresh/2 (2.5 s).
	RedirectRepeat time.Duration
	// RedirectGrace is how long a redirected child stays under its old
	// parent after joining the new one, so that no multicast in flight
	// through the old parent is lost. Default 1 s.
	RedirectGrace time.Duration
	// NoMoveFor is how long a node ignores Redirects to a node it could
	// not move to (no direct link, or its Join failed). Default 1 min.
	NoMoveFor time.Duration

	// SeenKeep is how long a node remembers the msgID of a multicast or a
	// broadcast, to drop copies. Default 2 min.
	SeenKeep time.Duration
	// MemberQueue is the number of messages a member holds for Recv; a
	// member whose queue is full loses messages rather than stall the
	// tree. Default 256.
	MemberQueue int
	// MaxBackground is the number of goroutines that received messages
	// may keep busy at once (attaching, pruning, moving, passing a Publish
	// on, anycast and broadcast steps). What does not fit is dropped and
	// counted (Stats.Busy). Default 256.
	MaxBackground int

	// FlushTimeout bounds how long Close waits for the multicasts already
	// queued to children. Default 2 s.
	FlushTimeout time.Duration
	// CloseTimeout bounds the Leaves Close sends to every parent and child,
	// in parallel. Default 1 s.
	CloseTimeout time.Duration

	// OnBroadcast receives, at this node, the broadcasts sent with
	// BroadcastTo a non-zero scope (Message.Group is the scope); it runs
	// on the goroutine that passes the broadcast on, so it must not block.
	// Default nil: such broadcasts are passed on but not delivered here
	// (Stats.Unscoped).
	OnBroadcast func(Message)

	// Logger receives debug logs. Default: none.
	Logger *slog.Logger
}

// drainTries is how many times a node sends a child a multicast before it
// gives the message up for that child.
const drainTries = 3

func (c *Config) setDefaults() {
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	num := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	dur(&c.Refresh, DefaultRefresh)
	dur(&c.JoinTimeout, 5*time.Second)
	dur(&c.SendTimeout, 5*time.Second)
	dur(&c.ForwardTimeout, 10*time.Second)
	dur(&c.LeaveTimeout, 2*time.Second)
	dur(&c.RootLookup, time.Minute)
	num(&c.ClaimFanout, 3)
	dur(&c.ClaimTimeout, time.Second)
	num(&c.MinFanout, 4)
	num(&c.MaxFanout, 16)
	dur(&c.RedirectRepeat, c.Refresh/2)
	dur(&c.RedirectGrace, time.Second)
	dur(&c.NoMoveFor, time.Minute)
	dur(&c.SeenKeep, 2*time.Minute)
	num(&c.MemberQueue, 256)
	num(&c.MaxBackground, 256)
	dur(&c.FlushTimeout, 2*time.Second)
	dur(&c.CloseTimeout, time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// lease is how long a parent keeps a child after its last Join.
func (c *Config) lease() time.Duration { return 3 * c.Refresh }
