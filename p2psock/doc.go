// Package p2psock makes a peer-to-peer network look like sockets.
//
// A Node is a server socket that binds an identity (an Ed25519 key; its public
// key is the node's ID) into a structured overlay, a Kademlia-style network of
// nodes reached through one UDP socket each. From a bound node a program can
// send messages to a peer named only by its ID, or to a key: the message goes
// to the live node whose ID is closest to the key (XOR distance), which makes
// the node responsible for that key.
//
//	n, err := p2psock.NewNode(p2psock.Config{Bootstrap: []string{"198.51.100.7:4000"}})
//	if err != nil { ... }
//	defer n.Close()
//	if err := n.Bind(ctx); err != nil { ... }
//	err = n.SendTo(ctx, []byte("hello"), peerID)                 // nil once the peer accepted it
//	err = n.SendToKey(ctx, []byte("hello"), p2psock.KeyOf(name)) // to whoever is closest to KeyOf(name)
//	m, err := n.RecvFrom(ctx)                                    // m.From is verified
//
// # Streams
//
// Connect opens a reliable stream to a peer named by its ID, wherever it is:
// on the same LAN, behind a NAT, or behind a NAT that admits no direct path.
// A Conn is a net.Conn (a QUIC stream) and a Node is a net.Listener, so
// existing code works on it: http.Serve(node, handler) serves HTTP.
//
//	c, err := n.Connect(ctx, peerID) // a *Conn; c.RemoteAddr().(*p2psock.Addr).ID == peerID
//	c, err := n.Accept()             // the next stream a peer opened
//
// The first Connect to a peer finds a path with ICE: the two nodes exchange
// candidates (their socket addresses, the addresses their NATs map them to,
// and relay addresses) as overlay messages, with no outside signalling server,
// and test the pairs, which also opens the NATs' mappings. QUIC then runs on
// the path ICE selected: straight on the node's own UDP socket for a direct
// path, through a TURN relay when no direct path exists (both nodes behind
// NATs that map per destination, say). TLS 1.3 certificates carry the nodes'
// identity keys, so Connect fails with ErrPeerIdentity unless the peer holds
// the key of the ID it was asked for. The nodes keep that one QUIC connection:
// further Connects, either way, open streams on it without a new handshake.
//
// Every node answers STUN requests on its socket, so a network's public nodes
// are its STUN servers; a public node with Config.RelayAddr set also runs a
// TURN relay for the others. Config.STUNServers and Config.Relays add outside
// servers.
//
// # Services
//
// A node offers any number of named services, each with its own messages,
// calls, streams, datagrams and broadcasts; the Node's own methods are the
// default service's. A message, call or stream to a service the peer does
// not offer fails at once with ErrNoService.
//
//	chat := n.Service("chat")
//	err = chat.SendTo(ctx, data, peerID)                    // chat.RecvFrom on the peer
//	reply, err := n.Service("kv").Call(ctx, peerID, req)    // the peer's Service("kv").Handle answers
//	l, err := n.Service("web").Listen()                     // http.Serve(l, handler)
//	c, err := n.Service("web").Dial(ctx, peerID)            // a *Conn on the same QUIC connection
//	pc, err := n.Service("game").ListenPacket()             // a net.PacketConn by ID
//
// # Finding each other
//
// A node joins through the entry points in Config.Bootstrap (any node of the
// network that answers). With Config.LocalDiscovery set, nodes of the same
// network on one machine or LAN find each other with no entry point given:
// through a registry in the temporary directory, and through multicast
// announcements on the LAN (Config.MachineOnlyDiscovery keeps it to the
// machine). A node with no entry point at all starts a new network.
//
// # Light clients
//
// A short-lived program, or a small device, sets Config.Client: the node
// binds as a light client, which uses the network without serving it. It
// keeps links to the few full nodes closest to its ID (its proxies,
// Info.Proxies), which hand it what is sent to its ID; it is in no routing
// table, never the node closest to a key, stores no DHT records and forwards
// nothing, so its coming and going costs the network nothing. SendTo,
// SendToKey, calls, Connect/Accept and the DHT work from it as from any node.
//
//	c, err := p2psock.NewNode(p2psock.Config{Bootstrap: entries, Client: true})
//
// # Delivery
//
// SendTo and SendToKey return nil only once the destination has accepted the
// message (an end-to-end acknowledgement signed by the destination). Messages
// up to MaxMessageSize (64 KiB) are delivered whole, at most once, and carry
// their origin's signature, so Message.From cannot be forged. A message that
// cannot be delivered fails with ErrUnreachable: immediately when the network
// knows the ID is absent, otherwise when the context ends.
//
// # NATs
//
// Nodes behind NATs are full members: reachable by ID and responsible for the
// keys closest to them. A node keeps its NAT mappings open with keepalives to
// its contacts, punches holes to new contacts with the help of a common
// contact, and reaches a node whose NAT refuses a hole punch (two symmetric
// NATs, say) through a node both have a direct link with.
//
// # Errors
//
// Errors can be tested with errors.Is against the sentinels of this package.
// After Close every call fails with an error that matches net.ErrClosed.
//
// The wire protocol is specified in docs/PROTOCOL.md.
package p2psock
