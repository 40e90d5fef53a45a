package p2psock

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/p2psock/p2psock/internal/streams"
	"github.com/p2psock/p2psock/overlay"
)

// Addr is the address of a node: its ID. It is what Conn.RemoteAddr,
// Conn.LocalAddr and Node.Addr return.
type Addr struct{ ID ID }

// Network returns "p2p".
func (a *Addr) Network() string { return "p2p" }

// String returns the ID in its text form.
func (a *Addr) String() string { return a.ID.String() }

// PathKind says how a path between two nodes runs; its values are the
// strings "direct", "punched" and "relayed" (PathDirect, PathPunched,
// PathRelayed), as the view page and the metrics' path label show them.
type PathKind = overlay.PathKind

// The kinds of path.
const (
	// PathDirect: packets go straight to the peer's own socket address; no
	// NAT translates the peer's end.
	PathDirect = overlay.PathDirect
	// PathPunched: packets go straight to the peer's NAT's mapping (ICE
	// selected the peer's server- or peer-reflexive candidate, or a circuit
	// found a direct path): NAT traversal made the path.
	PathPunched = overlay.PathPunched
	// PathRelayed: packets go through a third node, a TURN relay or a
	// public node's circuit (for contacts: a contact that relays).
	PathRelayed = overlay.PathRelayed
)

// PathInfo describes the network path a Conn's QUIC connection runs on.
type PathInfo struct {
	// Kind is how the path runs: direct, punched or relayed.
	Kind PathKind
	// Relayed is true when the path goes through a relay (TURN, or a
	// circuit that has found no direct path yet): Kind is PathRelayed. It is
	// false when the two nodes' sockets exchange packets directly (through
	// their NATs).
	Relayed bool
	// Local and Remote are the UDP addresses of the path's ends as seen from
	// this node: Remote is where packets are sent (the peer's address, its
	// NAT's mapping, or a relay's).
	Local, Remote net.Addr
	// RTT is QUIC's smoothed round-trip time estimate when Path was called.
	RTT time.Duration
}

// Conn is one reliable, ordered, bidirectional stream to a peer: a QUIC
// stream on the one QUIC connection this node keeps with that peer. It
// satisfies net.Conn; its methods are safe for concurrent use as net.Conn
// requires.
//
// Close ends both directions: the peer reads io.EOF after the data already
// written, and the peer's further writes fail. CloseWrite ends only this
// side's writing (the peer reads io.EOF) and keeps reading.
//
// Errors other than io.EOF are *net.OpError: their Err is net.ErrClosed
// after Close (of the Conn or of the Node), os.ErrDeadlineExceeded (a
// net.Error whose Timeout is true) past a deadline, ErrReset when the peer
// reset or refused the stream, and otherwise quic-go's error (the
// connection's end, say).
type Conn struct {
	s             *streams.Stream
	local, remote *Addr
}

var _ net.Conn = (*Conn)(nil)

// Read reads data from the stream. It returns io.EOF once the peer closed
// its side and every byte it wrote was read.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.s.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		err = c.opErr("read", err)
	}
	return n, err
}

// Write writes data to the stream. It returns when the data is queued for
// sending (QUIC flow control bounds how far ahead of the reader it can get).
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.s.Write(b)
	if err != nil {
		err = c.opErr("write", err)
	}
	return n, err
}

// CloseWrite closes the sending side: the peer reads io.EOF once it has read
// everything written before. Reading continues.
func (c *Conn) CloseWrite() error {
	if err := c.s.CloseWrite(); err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// Close closes the stream in both directions. Data written before Close is
// still delivered; data the peer sends afterwards is discarded. Read and
// Write fail with net.ErrClosed afterwards. Close is idempotent.
func (c *Conn) Close() error { return c.s.Close() }

// Reset abandons the stream in both directions, as a TCP RST does: unlike
// Close, the peer's Read and Write fail with ErrReset instead of ending in
// io.EOF, so it can tell a stream refused or cut short from one that ended.
// Data not yet delivered is discarded. Read and Write fail with
// net.ErrClosed afterwards. Reset after Close does nothing.
func (c *Conn) Reset() { c.s.Reset() }

// LocalAddr returns this node's *Addr.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's *Addr: the ID it proved in the handshake.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines, as net.Conn describes.
func (c *Conn) SetDeadline(t time.Time) error { return c.s.SetDeadline(t) }

// SetReadDeadline sets the time Read fails at with a timeout error.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.s.SetReadDeadline(t) }

// SetWriteDeadline sets the time Write fails at with a timeout error.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }

// Path describes the path the stream's connection runs on.
func (c *Conn) Path() PathInfo {
	return PathInfo(c.s.Path())
}

// opErr wraps an error of the engine's stream (already mapped to what net
// callers test for) as net.Conn methods report errors.
func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "p2p", Source: c.local, Addr: c.remote, Err: err}
}
