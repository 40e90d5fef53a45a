package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Streams to named services (docs/PROTOCOL.md, §12.8): such a stream opens
// with wire.StreamVersionNamed and the 8-byte hash of the service's name,
// and the receiver answers with one byte, wire.NamedOK if the service
// listens (the stream then waits in the accept queue like any other) or
// wire.NamedNoService (and FIN) if not, so that the opener learns at once.
// Streams to the default service keep version 1 and get no answer. A
// stream the accept queue has no room for is reset (code 0) rather than
// answered, as a default one is.

// ListenService makes the engine take streams peers open to the named
// service tag, for AcceptService; false if it already does, or tag is zero
// (the default service's streams are always taken), or the engine is
// closing.
func (e *Engine) ListenService(tag ServiceTag) bool { return e.queue.listen(tag) }

// CloseService stops taking streams to the named service tag: its waiting
// streams are refused, pending AcceptService calls fail with net.ErrClosed,
// and later streams to it are answered NoService.
func (e *Engine) CloseService(tag ServiceTag) { e.queue.unlisten(tag) }

// AcceptService waits for the next stream a peer opened to the service tag
// (zero: the default service, as Accept). It fails with net.ErrClosed once
// the engine is closing or the service stopped listening, or with ctx's
// error.
func (e *Engine) AcceptService(ctx context.Context, tag ServiceTag) (*Stream, error) {
	if e.isClosing() {
		return nil, net.ErrClosed
	}
	s, err := e.queue.pop(ctx, e.closing, tag)
	if err != nil {
		return nil, err
	}
	if !s.pc.history.Swap(true) {
		e.remember(s.pc.id)
	}
	return s, nil
}

// DialService opens a stream to the named service tag on the node with ID
// remote (zero: the default service, as Dial), and returns once that node
// has answered that the service takes it. It fails with
// overlay.ErrNoService when the node does not listen to the service (or
// does not take named streams at all), with ErrRefused when it refused the
// stream (its accept queue was full, or it is closing), and otherwise as
// Dial does.
func (e *Engine) DialService(ctx context.Context, remote overlay.ID, tag ServiceTag) (*Stream, error) {
	if tag == (ServiceTag{}) {
		return e.Dial(ctx, remote)
	}
	opening := append([]byte{wire.StreamVersionNamed}, tag[:]...)
	for retried := false; ; retried = true {
		pc, err := e.peerConn(ctx, remote)
		if err != nil {
			return nil, err
		}
		if !pc.history.Swap(true) {
			e.remember(remote)
		}
		qs, err := pc.qc.OpenStreamSync(ctx)
		if err == nil {
			if _, err = qs.Write(opening); err == nil {
				if err = awaitAnswer(ctx, qs); err == nil {
					return newStream(qs, pc), nil
				}
			}
			refuse(qs, 0)
		}
		if ctx.Err() != nil || retried || pc.alive() || errors.Is(err, overlay.ErrNoService) {
			return nil, err
		}
		e.forget(pc)
	}
}

// awaitAnswer reads the receiver's answer to a stream opened to a named
// service, until ctx ends.
func awaitAnswer(ctx context.Context, qs *quic.Stream) error {
	stop := context.AfterFunc(ctx, func() { qs.SetReadDeadline(time.Now()) })
	var b [1]byte
	_, err := io.ReadFull(qs, b[:])
	stop()
	qs.SetReadDeadline(time.Time{})
	var se *quic.StreamError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &se) && se.ErrorCode == quic.StreamErrorCode(closeBadStream):
		return fmt.Errorf("%w: the peer takes no streams to named services", overlay.ErrNoService)
	case errors.As(err, &se):
		return ErrRefused
	case err != nil:
		return err
	case b[0] == wire.NamedNoService:
		return fmt.Errorf("%w: the peer does not listen to the service", overlay.ErrNoService)
	case b[0] != wire.NamedOK:
		return fmt.Errorf("%w: unknown answer %#x", ErrRefused, b[0])
	}
	return nil
}

// readOpening reads the opening of a stream a peer opened (within the
// read deadline already set): the version byte, and for a named service
// the hash of its name. false if the opening is bad or did not come.
func readOpening(r io.Reader) (ServiceTag, bool) {
	var v [1]byte
	if _, err := io.ReadFull(r, v[:]); err != nil {
		return ServiceTag{}, false
	}
	switch v[0] {
	case streamVersion:
		return ServiceTag{}, true
	case wire.StreamVersionNamed:
		var tag ServiceTag
		if _, err := io.ReadFull(r, tag[:]); err != nil || tag == (ServiceTag{}) {
			return ServiceTag{}, false
		}
		return tag, true
	}
	return ServiceTag{}, false
}

// answerTaken tells the opener of a stream to a named service that the
// stream waits for Accept; false if the answer could not be queued at once.
func (s *Stream) answerTaken() bool {
	return s.qs.TryWriteAll([]byte{wire.NamedOK}) == nil
}

// answerNoService tells the opener of a stream that the named service it
// asked for does not listen, and ends the stream.
func (s *Stream) answerNoService() {
	_ = s.qs.TryWriteAll([]byte{wire.NamedNoService}) // best effort: the FIN that follows says as much
	s.qs.Close()
	s.qs.CancelRead(0)
}
