package overlay

import "errors"

// Errors returned by the overlay. They are re-exported by package p2psock.
var (
	// ErrUnreachable means no node accepted the message: the destination ID is
	// not in the network, or no route to it answered in time.
	ErrUnreachable = errors.New("p2psock: destination unreachable")
	// ErrMessageTooLarge means the payload is larger than MaxMessage.
	ErrMessageTooLarge = errors.New("p2psock: message too large")
	// ErrNoService means the destination does not offer the message's service.
	ErrNoService = errors.New("p2psock: destination does not offer the service")
	// ErrUndecryptable means the destination could not open the sealed
	// message: it was sealed to another key than the destination's, or
	// spoiled on the way at the origin.
	ErrUndecryptable = errors.New("p2psock: destination could not open the sealed message")
	// ErrNoEntryPoint means no bootstrap entry point answered and joining only
	// was asked for.
	ErrNoEntryPoint = errors.New("p2psock: no entry point answered")
	// ErrNoLink means this node has no verified link with the node a link
	// message is for (SendLink); services fall back to a routed message.
	ErrNoLink = errors.New("p2psock: no link to the node")
	// ErrDifficulty means an identity lacks the work proof the network
	// requires (Config.Difficulty), or a difficulty is out of range.
	ErrDifficulty = errors.New("p2psock: identity lacks the required work")
)
