package p2psock

import (
	"errors"

	"github.com/p2psock/p2psock/group"
	"github.com/p2psock/p2psock/internal/streams"
	"github.com/p2psock/p2psock/overlay"
)

// Errors returned by a Node, its Conns and its GroupSockets: every sentinel
// a call of this package can return. Test for them with errors.Is. Before
// Bind, the calls that need a bound node fail with a *net.OpError wrapping
// ErrNotBound; after Close, every call fails with a *net.OpError for which
// errors.Is(err, net.ErrClosed) is true.
var (
	// ErrUnreachable: the message could not be delivered. No node with the
	// destination ID is in the network, or no route to it acknowledged in
	// time (then the error also wraps context.DeadlineExceeded or Canceled).
	ErrUnreachable = overlay.ErrUnreachable
	// ErrMessageTooLarge: the message is larger than MaxMessageSize.
	ErrMessageTooLarge = overlay.ErrMessageTooLarge
	// ErrNoService: the destination does not offer the service a message,
	// call, datagram or stream was sent to (a Service, or a part of it that
	// is not set up: calls without Handle, streams without Listen,
	// datagrams without ListenPacket; or an overlay service, see
	// Node.Overlay).
	ErrNoService = overlay.ErrNoService
	// ErrBusy: the peer refused a call because it runs as many call
	// handlers as it allows (its Config.MaxCallHandlers).
	ErrBusy = errors.New("p2psock: peer busy: too many calls in progress")
	// ErrInUse: the service already has a listener (Listen) or a packet
	// conn (ListenPacket) open.
	ErrInUse = errors.New("p2psock: service already has one open")
	// ErrServiceCollision: Node.Service was given a name whose hash is that
	// of another service the node offers.
	ErrServiceCollision = errors.New("p2psock: service name's hash collides with another service's")
	// ErrUndecryptable: the destination could not open the message sealed
	// to its ID (the message was sealed to another key).
	ErrUndecryptable = overlay.ErrUndecryptable
	// ErrNoEntryPoint: Bind with JoinOnly found no entry point that answered.
	ErrNoEntryPoint = overlay.ErrNoEntryPoint
	// ErrDifficulty: the node's identity lacks the work proof the network
	// requires (Config.Difficulty); create one with NewIdentityWork.
	ErrDifficulty = overlay.ErrDifficulty
	// ErrNotBound: the call needs a bound node; call Bind first.
	ErrNotBound = errors.New("p2psock: node not bound")
	// ErrNotMember: Recv on a GroupSocket from Node.Group, which did not join.
	ErrNotMember = group.ErrNotMember
	// ErrEmptyGroup: SendAny to a group with no member.
	ErrEmptyGroup = group.ErrEmptyGroup
	// ErrAlreadyBound: Bind was called twice.
	ErrAlreadyBound = errors.New("p2psock: node already bound")
	// ErrPeerIdentity: the peer of a stream could not prove it holds the
	// private key of the ID it was reached as.
	ErrPeerIdentity = streams.ErrPeerIdentity
	// ErrNoPath: ICE found no working path to the peer (no direct pair
	// answered and no relay was available or worked).
	ErrNoPath = streams.ErrNoPath
	// ErrRefused: the peer refused the connection (it is closing, or it does
	// not accept streams).
	ErrRefused = streams.ErrRefused
	// ErrReset: the peer abandoned the stream (Conn.Reset, or Close before
	// it read everything) or refused it (its accept queue was full, or the
	// stream waited too long for Accept): Read and Write fail with it, and
	// what was written and not yet read is lost.
	ErrReset = streams.ErrReset
)
