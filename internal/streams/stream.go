package streams

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/overlay"
)

// Stream is one stream to a peer: a QUIC stream of the connection to it.
// The front door's Conn wraps it. Its errors other than io.EOF say what net
// callers test for: net.ErrClosed after Close (of the Stream or of the
// engine), os.ErrDeadlineExceeded past a deadline, and otherwise quic-go's
// error.
type Stream struct {
	qs *quic.Stream
	pc *peerConn

	closeOnce sync.Once
	closed    chan struct{}
}

// Path describes the network path a stream's QUIC connection runs on.
type Path struct {
	// Kind is the kind of path: direct to the peer's own address, punched
	// (direct to its NAT's mapping), or relayed (TURN, or a circuit).
	Kind overlay.PathKind
	// Relayed is true when the path goes through a relay: Kind is
	// overlay.PathRelayed.
	Relayed bool
	// Local and Remote are the UDP addresses of the path's ends as seen from
	// this node.
	Local, Remote net.Addr
	// RTT is QUIC's smoothed round-trip time estimate.
	RTT time.Duration
}

func newStream(qs *quic.Stream, pc *peerConn) *Stream {
	s := &Stream{qs: qs, pc: pc, closed: make(chan struct{})}
	pc.addStream(s)
	return s
}

// Peer returns the ID the peer proved in the connection's handshake.
func (s *Stream) Peer() overlay.ID { return s.pc.id }

// Read reads data from the stream. It returns io.EOF once the peer closed
// its side and every byte it wrote was read.
func (s *Stream) Read(b []byte) (int, error) {
	if s.isClosed() {
		return 0, net.ErrClosed
	}
	n, err := s.qs.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		err = s.mapErr(err)
	}
	return n, err
}

// Write writes data to the stream. It returns when the data is queued for
// sending (QUIC flow control bounds how far ahead of the reader it can get).
func (s *Stream) Write(b []byte) (int, error) {
	if s.isClosed() {
		return 0, net.ErrClosed
	}
	n, err := s.qs.Write(b)
	if err != nil {
		err = s.mapErr(err)
	}
	return n, err
}

// CloseWrite closes the sending side: the peer reads io.EOF once it has read
// everything written before. Reading continues.
func (s *Stream) CloseWrite() error {
	if err := s.qs.Close(); err != nil {
		if cause := context.Cause(s.qs.Context()); cause != nil {
			err = cause // what ended the sending side, rather than quic-go's "close called for canceled stream"
		}
		return s.mapErr(err)
	}
	s.pc.lastFin.Store(time.Now().UnixNano())
	return nil
}

// Reset abandons the stream in both directions: RESET_STREAM and
// STOP_SENDING (code codeReset) instead of a FIN, so that the peer's Read
// and Write fail with ErrReset rather than end in io.EOF, and what was
// written and not yet delivered is discarded. Read and Write fail with
// net.ErrClosed afterwards. Reset after Close does nothing.
func (s *Stream) Reset() {
	s.closeOnce.Do(func() {
		close(s.closed)
		refuse(s.qs, codeReset)
		s.qs.SetDeadline(time.Now())
		s.pc.streamClosed(s)
	})
}

// Close closes the stream in both directions: FIN after the data written,
// then STOP_SENDING (code 0). Read and Write fail with net.ErrClosed
// afterwards. Close is idempotent.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.qs.Close()
		s.pc.lastFin.Store(time.Now().UnixNano())
		s.qs.CancelRead(0)
		// Unblock a pending Read or Write at once.
		s.qs.SetDeadline(time.Now())
		s.pc.streamClosed(s)
	})
	return nil
}

func (s *Stream) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// SetDeadline sets the read and write deadlines, as net.Conn describes.
func (s *Stream) SetDeadline(t time.Time) error { return s.qs.SetDeadline(t) }

// SetReadDeadline sets the time Read fails at with os.ErrDeadlineExceeded.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.qs.SetReadDeadline(t) }

// SetWriteDeadline sets the time Write fails at with os.ErrDeadlineExceeded.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.qs.SetWriteDeadline(t) }

// Path describes the path the stream's connection runs on.
func (s *Stream) Path() Path { return s.pc.path() }

// Stats returns the QUIC statistics of the stream's connection.
func (s *Stream) Stats() quic.ConnectionStats { return s.pc.qc.ConnectionStats() }

// mapErr maps a quic-go error to what net callers test for: net.ErrClosed
// after Close (of the stream, or of the engine, which closes its
// connections with closeNodeClosed), os.ErrDeadlineExceeded past a
// deadline, ErrReset (still matching the *quic.StreamError) when the peer
// reset or stopped the stream or left (peerLeft), and otherwise quic-go's
// error.
func (s *Stream) mapErr(err error) error {
	if s.isClosed() {
		return net.ErrClosed
	}
	var (
		ae *quic.ApplicationError
		se *quic.StreamError
	)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	case errors.As(err, &ae) && ae.ErrorCode == closeNodeClosed && !ae.Remote:
		return net.ErrClosed
	case errors.As(err, &se) && se.Remote:
		return &resetError{err}
	case errors.As(err, &se) && s.pc.leaving.Load():
		return &resetError{err} // the peer left: its streams' sending sides ended (peerLeft)
	}
	return err
}
