// Package overlay is p2psock's key-based routing tier: a Kademlia-style
// routing table of verified contacts, links kept open through NATs (hole
// punching, relaying through a common contact), iterative lookups, and
// acknowledged message routing to an ID or to the node closest to a key.
// Services built on it (Handle) get routed, signed messages; those that talk
// to a node they have a link with (HandleLink, SendLink) get link messages,
// one hop and unsigned, far cheaper.
//
// It does not own a socket: it writes through a Transport and is fed the
// packets whose first byte is 0x20–0x3F with HandlePacket. Package p2psock
// wires it to a nat.Socket; most programs use p2psock.Node instead.
//
//	o, err := overlay.New(overlay.Config{Identity: priv}, sock)
//	sock.Handle(0x20, 0x3F, o.HandlePacket)
//	sock.Start()
//	o.Start()
//	err = o.Join(ctx, []string{"192.0.2.1:4000"}, true)
//	err = o.Send(ctx, []byte("hi"), key, true)
package overlay
