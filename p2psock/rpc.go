package p2psock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// A call is one routed message and its acknowledgement: the request goes to
// the peer's service like a message (sealed to the peer when sent by ID),
// the service's handler runs, and its reply (or error) rides the end-to-end
// acknowledgement back (docs/PROTOCOL.md, §7.8). A retransmitted request is
// not handed to the handler again while the node remembers its answer.

// DefaultMaxCallHandlers is the number of call handlers a node runs at
// once when Config.MaxCallHandlers is 0.
const DefaultMaxCallHandlers = 64

// handlerTimeout bounds a call handler's context: the overlay forgets an
// answer's request after its replay window (2 minutes), so a later answer
// reaches no one.
const handlerTimeout = 2 * time.Minute

// CallHandler serves the calls to a service: req is the request (its From
// is the caller, verified), and the returned bytes (at most MaxMessageSize)
// are the reply. A returned error reaches the caller as a *CallError with
// its message. ctx ends when the node closes, or after two minutes.
type CallHandler func(ctx context.Context, req Message) ([]byte, error)

// CallError is the error a call returns when the peer's handler returned
// an error or panicked: the handler's error message (or the panic's) as it
// came back.
type CallError struct {
	Service string // the service called
	Peer    ID     // the node whose handler failed
	Message string // the handler's error message
}

// Error returns the message with the service and the peer.
func (e *CallError) Error() string {
	return fmt.Sprintf("p2psock: call to %q at %v: %s", e.Service, e.Peer, e.Message)
}

// Handle makes h serve the calls to the service, in place of any handler
// before; nil stops serving them (calls then fail with ErrNoService). Each
// call runs h on a goroutine of its own, at most Config.MaxCallHandlers at
// once in the node: calls past it are refused at once with ErrBusy.
func (s *Service) Handle(h CallHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

// Call sends req to the service on the node with ID to and returns the
// reply of its handler. It takes one round trip where a route exists. It
// fails with ErrNoService at once if that node does not offer the service
// or serves no calls on it, with ErrBusy if it runs as many handlers as it
// allows, with a *CallError if the handler returned an error or panicked,
// and otherwise as SendTo does (ErrUnreachable, wrapping ctx's error when
// ctx ended first). Requests and replies are at most MaxMessageSize bytes.
func (s *Service) Call(ctx context.Context, to ID, req []byte) ([]byte, error) {
	reply, _, err := s.send(ctx, "call", wire.NamedCall, req, to.Key(), false)
	return reply, err
}

// CallKey is Call to the live node whose ID is closest to key (as
// SendToKey routes); it returns that node's ID with the reply.
func (s *Service) CallKey(ctx context.Context, key Key, req []byte) (reply []byte, from ID, err error) {
	return s.send(ctx, "call", wire.NamedCall, req, key, true)
}

// serveCall runs a call's handler on a goroutine of its own, within the
// node's bound, and answers with its reply or error.
func (n *Node) serveCall(s *Service, h CallHandler, req Message, reply overlay.Reply) {
	select {
	case n.callSlots <- struct{}{}:
	default:
		n.svcCtr.busy.Add(1)
		reply([]byte{wire.NamedBusy}, true)
		return
	}
	n.calls.Add(1)
	go func() {
		defer n.calls.Done()
		defer func() { <-n.callSlots }()
		ctx, cancel := context.WithTimeout(n.life, handlerTimeout)
		defer cancel()
		out, err := runHandler(ctx, h, req)
		switch {
		case err != nil:
			n.svcCtr.callErrors.Add(1)
			if hp := (handlerPanic{}); errors.As(err, &hp) {
				n.svcCtr.panics.Add(1)
			}
			msg := err.Error()
			if len(msg) > MaxMessageSize {
				msg = msg[:MaxMessageSize]
			}
			reply(append([]byte{wire.NamedError}, msg...), true)
		case len(out) > MaxMessageSize:
			n.svcCtr.callErrors.Add(1)
			reply(fmt.Appendf([]byte{wire.NamedError}, "p2psock: reply of %d bytes, the limit is %d", len(out), MaxMessageSize), true)
		default:
			reply(append([]byte{wire.NamedOK}, out...), true)
		}
	}()
}

// handlerPanic is the error of a handler that panicked.
type handlerPanic struct{ v any }

func (p handlerPanic) Error() string { return fmt.Sprintf("p2psock: call handler panicked: %v", p.v) }

// runHandler runs h, turning a panic into an error.
func runHandler(ctx context.Context, h CallHandler, req Message) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, handlerPanic{v}
		}
	}()
	return h(ctx, req)
}
