package group

import (
	"errors"
	"net"

	"github.com/p2psock/p2psock/overlay"
)

// Errors returned by the group service. Test for them with errors.Is.
var (
	// ErrEmptyGroup means an anycast found no member in the group.
	ErrEmptyGroup = errors.New("group: the group has no members")
	// ErrNotMember means the call needs a membership (package p2psock:
	// Recv on a GroupSocket that did not join).
	ErrNotMember = errors.New("group: not a member of the group")
	// ErrTooLarge means the message is larger than MaxData. It matches
	// overlay.ErrMessageTooLarge (and so p2psock.ErrMessageTooLarge) too.
	ErrTooLarge error = &matchError{"group: message too large", overlay.ErrMessageTooLarge}
	// ErrClosed means the service (or the membership) is closed. It
	// matches net.ErrClosed too.
	ErrClosed error = &matchError{"group: closed", net.ErrClosed}
)

// matchError is a sentinel that also matches a more general one, the way
// quic-go's errors match net.ErrClosed.
type matchError struct {
	msg string
	is  error
}

func (e *matchError) Error() string { return e.msg }

// Is reports whether target is the general sentinel e stands for.
func (e *matchError) Is(target error) bool { return target == e.is }
