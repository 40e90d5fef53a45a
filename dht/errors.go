package dht

import (
	"errors"
	"net"

	"github.com/p2psock/p2psock/overlay"
)

// Errors returned by a DHT. ErrKeyTooLarge and ErrValueTooLarge match
// overlay.ErrMessageTooLarge (p2psock.ErrMessageTooLarge) with errors.Is, and
// ErrClosed matches net.ErrClosed.
var (
	ErrKeyTooLarge   error = tooLargeError("dht: key too large")
	ErrValueTooLarge error = tooLargeError("dht: value too large")
	ErrBadTTL              = errors.New("dht: TTL out of range")
	ErrQuota               = errors.New("dht: refused: the replicas are over their quota")
	ErrStale               = errors.New("dht: refused: the replicas hold a newer operation of this owner")
	ErrInvalid             = errors.New("dht: refused: the replicas found the record invalid (expired, too large or a clock far off)")
	ErrNoReplica           = errors.New("dht: no replica answered")
	ErrClosed        error = closedError{}
)

// tooLargeError is a size limit's error: it is also the routing tier's
// too-large error.
type tooLargeError string

func (e tooLargeError) Error() string { return string(e) }

// Is reports whether target is overlay.ErrMessageTooLarge.
func (e tooLargeError) Is(target error) bool { return target == overlay.ErrMessageTooLarge }

// closedError is ErrClosed: what net callers test for after Close.
type closedError struct{}

func (closedError) Error() string { return "dht: closed" }

// Is reports whether target is net.ErrClosed.
func (closedError) Is(target error) bool { return target == net.ErrClosed }
