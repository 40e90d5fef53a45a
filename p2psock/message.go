package p2psock

import (
	"context"

	"github.com/p2psock/p2psock/overlay"
)

// MaxMessageSize is the largest message SendTo and SendToKey deliver: 64 KiB.
const MaxMessageSize = overlay.MaxMessage

// SendTo sends data to the node with ID to, and returns once that node has
// accepted it. It fails with ErrUnreachable if no such node is in the network
// or none acknowledged before ctx ended (or Config.SendTimeout when ctx has
// no deadline), and with ErrMessageTooLarge above MaxMessageSize bytes. A
// message is delivered at most once. Before Bind and after Close it fails
// with a *net.OpError wrapping ErrNotBound or net.ErrClosed.
func (n *Node) SendTo(ctx context.Context, data []byte, to ID) error {
	if err := n.ready("send"); err != nil {
		return err
	}
	return n.ov.Send(ctx, data, to.Key(), false)
}

// SendToKey sends data to the live node whose ID is closest to key (XOR
// distance), possibly this node, and returns once that node has accepted it.
// Errors are as for SendTo.
func (n *Node) SendToKey(ctx context.Context, data []byte, key Key) error {
	if err := n.ready("send"); err != nil {
		return err
	}
	return n.ov.Send(ctx, data, key, true)
}

// Message is a message received by RecvFrom.
type Message struct {
	Data      []byte
	From      ID   // the origin; its signature was verified
	To        Key  // the key it was routed to: this node's ID as a Key when addressed to the node
	ByKey     bool // true when it was sent with SendToKey
	Hops      int  // overlay hops it took (0 when sent to this node by itself)
	Broadcast bool // true when it was sent with Broadcast to every node
}

// RecvFrom returns the next message delivered to this node: sent to its ID,
// or to a key it is the closest node to.
func (n *Node) RecvFrom(ctx context.Context) (Message, error) {
	m, err := n.ov.Recv(ctx)
	if err != nil {
		return Message{}, err
	}
	return Message{Data: m.Data, From: m.From, To: m.To, ByKey: m.ByKey, Hops: m.Hops, Broadcast: m.Broadcast}, nil
}

// Lookup returns the IDs of up to BucketSize live nodes closest to key,
// nearest first: the key's replica set. Before Bind and after Close it fails
// with a *net.OpError wrapping ErrNotBound or net.ErrClosed.
func (n *Node) Lookup(ctx context.Context, key Key) ([]ID, error) {
	if err := n.ready("lookup"); err != nil {
		return nil, err
	}
	return n.ov.Lookup(ctx, key)
}
