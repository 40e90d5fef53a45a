// Package group is group communication on a p2psock overlay: multicast to
// the members of a group, anycast to one of them, and broadcast to every
// node of the network. It runs as the overlay's service 2.
//
// Most programs do not use this package directly but the group API of
// package p2psock, which names groups by strings: Node.Join, Node.Group and
// Node.Broadcast.
//
// # Trees
//
// A group is named by a key (p2psock.KeyOf of its name, SHA-256). Its members
// and the nodes between them and the root form a tree in the style of Scribe,
// rooted at the node closest to the key. A node joins by sending a join to
// its next hop toward the key (overlay.NextHop); a node that gets a join
// becomes a forwarder and joins its own next hop in turn, until the path
// meets the tree or reaches a node that knows no closer node, the root. The
// tree is soft state: members and forwarders join their parent again every
// Config.Refresh (5 s), a parent forgets a child after three Refresh without
// one, and a node whose parent no longer answers, or a root that learns of a
// closer node, joins its next hop anew, so the tree follows nodes coming and
// going. A forwarder that is not a member and serves fewer than four
// children (Config.MinFanout) hands them to its own parent (a Redirect; they
// link with it and join it) and leaves the tree: a forwarder costs every
// message an extra hop, worth it only where it fans out. A node with more
// than 16 children (Config.MaxFanout) hands those farthest from the key to
// its member children nearest to it, so that no node sends each message, and
// takes its acknowledgements, more than 16 times.
//
// Tree edges carry messages as overlay link messages (overlay.SendLink):
// one hop over the two nodes' verified link, a 57-byte header per fragment
// and one acknowledgement per message, about 1.3 KB per 1 KiB multicast and
// edge. The origin's signature on the envelope is what proves the message.
//
// # Multicast, anycast and broadcast
//
// Publish routes a message by key to the root, which sends it down the tree:
// every tree node hands it to its local members and queues it for each child,
// which gets its messages in order. Anycast walks from the sender toward the
// root, hop by hop, until it meets a tree node, which delivers the message to
// a local member if it has one and else sends it down to a child; the root of
// an empty tree reports ErrEmptyGroup to the sender. Broadcast uses no
// tree: each node hands the message to one contact of each routing-table
// bucket below its own part of the ID space, so that it reaches every node
// in about N−1 messages and O(log N) steps, and delivers it on the overlay's
// receive queue with overlay.Message.Broadcast set.
//
// Every message carries an envelope signed by its origin, which every node
// checks: Message.From cannot be forged, and forwarders can drop messages but
// not alter them. Delivery is best effort: a member that does not read loses
// messages once its queue of 256 is full, and messages lost while the tree is
// repaired are not sent again.
//
// # Resources
//
// A node serves other nodes' messages on its packet path and starts what
// waits (attaching, passing a Publish on, anycast and broadcast steps) in
// the background, at most Config.MaxBackground goroutines at once; what does
// not fit is refused or skipped, and every message dropped is counted by
// reason in Groups.Stats. Every timing is a field of Config, whose zero value
// gives the defaults of docs/PROTOCOL.md §11.11. Close flushes the messages
// queued to children, tells parents and children, then cancels the
// service's background work and returns once its goroutines have exited.
//
// # Usage
//
// Through package p2psock, with a bound node n:
//
//	g, err := n.Join(ctx, "chat")
//	if err != nil { ... }
//	defer g.Close()
//	err = g.Send(ctx, []byte("hello"))                   // to every member, this one included
//	m, err := g.Recv(ctx)                                // m.From is verified
//	err = n.Group("workers").SendAny(ctx, []byte("job")) // to one member; ErrEmptyGroup if none
//	err = n.Broadcast(ctx, []byte("hi"))                 // to every node, through RecvFrom
//
// Tools that work on keys can use a node's Groups (p2psock.Node.Groups)
// directly: Join, Publish, Anycast and Broadcast. Messages are at most
// MaxData bytes, else the call fails with ErrTooLarge (which matches
// overlay.ErrMessageTooLarge); after Close, calls fail with ErrClosed (which
// matches net.ErrClosed). A service of its own runs on any overlay.Host:
//
//	g := group.New(ov, group.Config{})        // before ov joins the network
//	defer g.Close()
//	m, err := g.Join(ctx, overlay.KeyOf([]byte("chat")))
//	err = g.Publish(ctx, overlay.KeyOf([]byte("chat")), []byte("hello"))
//	msg, err := m.Recv(ctx)
//
// The messages, the envelope and the rules nodes follow are specified in
// docs/PROTOCOL.md, §11.
package group
