package streams

import (
	"errors"
	"strings"
)

// Errors of the engine. The front door (package p2psock) aliases them, so
// that errors.Is(err, p2psock.ErrNoPath) holds for an engine error.
var (
	// ErrPeerIdentity: the peer of a connection could not prove it holds the
	// private key of the ID it was reached as.
	ErrPeerIdentity = errors.New("p2psock: peer did not prove its ID")
	// ErrNoPath: ICE found no working path to the peer (no direct pair
	// answered and no relay was available or worked).
	ErrNoPath = errors.New("p2psock: no path to peer")
	// ErrRefused: the peer refused the connection (it is closing, or it does
	// not accept streams).
	ErrRefused = errors.New("p2psock: connection refused by peer")
	// ErrReset: the peer abandoned the stream (Stream.Reset, or Close
	// before it read everything) or refused it (its accept queue was full,
	// or the stream sat unaccepted too long): what was written and not yet
	// read is lost.
	ErrReset = errors.New("p2psock: stream reset by peer")
)

// resetError is a stream error the peer sent: it matches ErrReset and
// quic-go's *quic.StreamError, and says only the former.
type resetError struct{ quic error }

func (e *resetError) Error() string   { return ErrReset.Error() }
func (e *resetError) Unwrap() []error { return []error{ErrReset, e.quic} }

// errYield ends this node's outgoing attempt when the peer's simultaneous
// offer goes ahead instead (§12.4 of docs/PROTOCOL.md).
var errYield = errors.New("p2psock: simultaneous connect, the peer's attempt goes ahead")

// isIdentityErr reports whether err says a peer failed to prove its ID.
func isIdentityErr(err error) bool {
	if errors.Is(err, ErrPeerIdentity) {
		return true
	}
	// quic-go reports a failed verification as a TLS alert from the
	// handshake, not wrapping the callback's error.
	return err != nil && strings.Contains(err.Error(), ErrPeerIdentity.Error())
}
