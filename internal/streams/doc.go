// Package streams is p2psock's connection engine: it sets up the one QUIC
// connection a node keeps with each peer it talks to, and carries the
// streams of Connect and Accept on it (docs/PROTOCOL.md, §12).
//
// An Engine sits on a node's overlay and its socket. A connection starts
// with an ICE session signalled through the overlay (session.go): the
// connecting node dials (dial.go: Dial → peerConn → dialPeer → attempt),
// the peer answers (answer.go); ICE's connectivity checks find a path,
// through a TURN relay if no direct one works (relay.go: the relays the
// node knows, its contacts' and its own), and QUIC runs on that path with
// TLS certificates that prove both IDs (tls.go). The connection is then the
// peer's (peer.go): every stream between the two nodes is one of its QUIC
// streams (stream.go). Close (close.go) ends them the way a TCP close does.
//
// The engine's goroutines live in a lifecycle.Scope: one per connection
// admits its peer's streams, which then wait for Accept in a bounded queue
// (acceptq.go) as data, not goroutines. Connections are admitted after a
// QUIC Retry and within quotas per IP, subnet and in all (admission.go);
// incoming ICE sessions have their own bounded pool (session.go); what the
// engine turns away is counted by reason (drops.go).
//
// A node builds its engine between opening its overlay and starting its
// socket, as package p2psock does:
//
//	eng, err := streams.New(streams.Config{Identity: priv}, ov, sock) // registers its handlers
//	...
//	sock.Start()
//	err = eng.Start() // the QUIC listener, opened when first needed
//	ov.Start()
//	s, err := eng.Dial(ctx, peer) // a *Stream; s.Peer() == peer
//	s, err := eng.Accept(ctx)     // the next stream a peer opened
//	eng.Close()                   // before the overlay closes: it says goodbye through it
package streams
