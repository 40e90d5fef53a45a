package p2psock

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/p2psock/p2psock/group"
)

// GroupSocket is a node's handle on a group: multicast with Send, anycast
// with SendAny, and, for a member (from Node.Join), Recv.
type GroupSocket struct {
	n      *Node
	name   string
	key    Key
	member *group.Member // nil unless joined
}

// GroupMessage is a message received from a group.
type GroupMessage struct {
	Data    []byte
	From    ID  // the origin; its signature was verified
	Group   Key // KeyOf([]byte(group name))
	Anycast bool
}

// Join makes the node a member of the group named group: it receives every
// multicast to it from then on, and may be chosen for anycasts. The group's
// tree is rooted at the node closest to KeyOf(group).
func (n *Node) Join(ctx context.Context, name string) (*GroupSocket, error) {
	if err := n.ready("join"); err != nil {
		return nil, err
	}
	k := KeyOf([]byte(name))
	m, err := n.groups.Join(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("p2psock: joining %q: %w", name, err)
	}
	return &GroupSocket{n: n, name: name, key: k, member: m}, nil
}

// Group returns a handle for sending to the group named group without
// joining it: Send and SendAny work, Recv fails with ErrNotMember. Anycast to
// "any server of this service" is its main use.
func (n *Node) Group(name string) *GroupSocket {
	return &GroupSocket{n: n, name: name, key: KeyOf([]byte(name))}
}

// Send multicasts data to every member of the group, this node too if it is
// one. It returns once the group's root has accepted the message; from one
// sender, members receive messages in the order they were sent. Data larger
// than group.MaxData fails with an error matching ErrMessageTooLarge.
func (g *GroupSocket) Send(ctx context.Context, data []byte) error {
	if err := g.n.ready("send"); err != nil {
		return err
	}
	return g.n.groups.Publish(ctx, g.key, data)
}

// SendAny hands data to exactly one member of the group. It fails with
// ErrEmptyGroup when the group has no member, and with an error matching
// ErrMessageTooLarge when data is larger than group.MaxData.
func (g *GroupSocket) SendAny(ctx context.Context, data []byte) error {
	if err := g.n.ready("send"); err != nil {
		return err
	}
	return g.n.groups.Anycast(ctx, g.key, data)
}

// Recv returns the next message of the group for this member. On a socket
// from Group it fails with ErrNotMember; once the socket or the node is
// closed (and the messages already received are read), with a *net.OpError
// matching net.ErrClosed.
func (g *GroupSocket) Recv(ctx context.Context) (GroupMessage, error) {
	if g.member == nil {
		return GroupMessage{}, ErrNotMember
	}
	m, err := g.member.Recv(ctx)
	if err != nil {
		if errors.Is(err, net.ErrClosed) { // the socket or the node is closed
			return GroupMessage{}, g.n.opErr("recv", err)
		}
		return GroupMessage{}, err
	}
	return GroupMessage{Data: m.Data, From: m.From, Group: m.Group, Anycast: m.Anycast}, nil
}

// Name returns the group's name.
func (g *GroupSocket) Name() string { return g.name }

// Close leaves the group (for a joined socket); later Recv calls fail.
func (g *GroupSocket) Close() error {
	if g.member != nil {
		return g.member.Close()
	}
	return nil
}

// Broadcast sends data to every node of the network, this one included; it
// arrives through RecvFrom with Message.Broadcast set. It takes about N−1
// messages and O(log N) steps. Data larger than group.MaxData fails with an
// error matching ErrMessageTooLarge.
func (n *Node) Broadcast(ctx context.Context, data []byte) error {
	if err := n.ready("broadcast"); err != nil {
		return err
	}
	return n.groups.Broadcast(ctx, data)
}
