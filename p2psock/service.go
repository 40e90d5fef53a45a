package p2psock

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/p2psock/p2psock/group"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// A node offers any number of named services. Each has its own messages,
// calls, streams and datagrams; its name travels as an 8-byte hash
// (docs/PROTOCOL.md, §7.11). A peer that sends to a service this node does
// not offer is told so at once, and its call fails with ErrNoService.

// serviceQueue is the number of messages a service holds for RecvFrom.
const serviceQueue = 128

// Service is a named service of a node: a message stream, a call handler
// and a packet conn of its own, apart from the node's default ones and from
// those of its other services. Get one with Node.Service. Its methods are
// safe for concurrent use.
//
// A node offers a service from the call to Node.Service until Close: peers'
// messages to it wait for RecvFrom, and their calls and datagrams are taken
// once Handle and ListenPacket have been called, and their streams once
// Listen has been. Anything
// sent to a service a node does not offer (or to a part of it not set up)
// fails at once with ErrNoService.
type Service struct {
	n    *Node
	name string
	hash wire.NameHash
	// scope is the full digest of the name, that scopes its broadcasts.
	scope overlay.Key
	recv  chan Message
	done  chan struct{} // closed by Close

	mu      sync.Mutex
	closed  bool
	handler CallHandler
	pc      *PacketConn
	ln      *Listener
}

// ServiceCounters count what a node's named services turned away, by
// reason.
type ServiceCounters struct {
	NoService  uint64 // messages, calls and datagrams to a service (or a part of one) this node does not offer, refused
	Malformed  uint64 // named-service messages whose header did not parse, dropped
	QueueFull  uint64 // messages refused (their senders retry), datagrams and broadcasts dropped for a full receive queue
	CallsBusy  uint64 // calls refused because Config.MaxCallHandlers handlers were running
	CallErrors uint64 // calls whose handler returned an error or panicked
	CallPanics uint64 // of which panicked
	// OtherBroadcasts counts the broadcasts to a service this node does
	// not offer: passed on to the rest of the network, not delivered here.
	OtherBroadcasts uint64
}

type serviceCounters struct {
	noService, malformed, queueFull, busy, callErrors, panics, broadcasts atomic.Uint64
}

func (c *serviceCounters) get() ServiceCounters {
	return ServiceCounters{NoService: c.noService.Load(), Malformed: c.malformed.Load(), QueueFull: c.queueFull.Load(),
		CallsBusy: c.busy.Load(), CallErrors: c.callErrors.Load(), CallPanics: c.panics.Load(),
		OtherBroadcasts: c.broadcasts.Load()}
}

// Service returns the node's service called name, offering it from now on;
// the same name gives the same *Service until it is closed. The name "" is
// the default service, the one the Node's own SendTo, RecvFrom, Accept and
// Connect use: its Service's messages and streams are the Node's. Two names
// whose hashes collide (a chance of 2⁻⁶⁴ for a pair) cannot both be
// offered: the second's calls fail with ErrServiceCollision.
func (n *Node) Service(name string) *Service {
	h := wire.HashName(name)
	n.svcMu.Lock()
	defer n.svcMu.Unlock()
	if s := n.services[h]; s != nil {
		if s.name == name {
			return s
		}
		return &Service{n: n, name: name, hash: h, closed: true, done: closedChan}
	}
	s := &Service{n: n, name: name, hash: h, scope: overlay.Key(wire.NameDigest(name)),
		recv: make(chan Message, serviceQueue), done: make(chan struct{})}
	n.services[h] = s
	return s
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// Close stops offering the service: its packet conn and listener close,
// pending RecvFrom calls fail with net.ErrClosed, and peers' messages, calls
// and streams to it fail with ErrNoService. A later Node.Service with the
// same name offers it anew. Close is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	pc, ln := s.pc, s.ln
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	s.n.svcMu.Lock()
	if s.n.services[s.hash] == s {
		delete(s.n.services, s.hash)
	}
	s.n.svcMu.Unlock()
	if pc != nil {
		pc.Close()
	}
	return nil
}

// state returns the error of a call on the service: the node's, or
// net.ErrClosed (ErrServiceCollision for a colliding name) once it closed.
func (s *Service) state(op string) error {
	if err := s.n.ready(op); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if s.recv == nil {
			return s.n.opErr(op, fmt.Errorf("%w: %q", ErrServiceCollision, s.name))
		}
		return s.n.opErr(op, net.ErrClosed)
	}
	return nil
}

// SendTo sends data to the service on the node with ID to, and returns once
// that node has accepted it. It fails with ErrNoService at once if that node
// does not offer the service; otherwise as Node.SendTo does.
func (s *Service) SendTo(ctx context.Context, data []byte, to ID) error {
	if s.name == "" {
		return s.n.SendTo(ctx, data, to)
	}
	_, _, err := s.send(ctx, "send", wire.NamedMessage, data, to.Key(), false)
	return err
}

// SendToKey sends data to the service on the live node whose ID is closest
// to key. It fails with ErrNoService at once if that node does not offer the
// service; otherwise as Node.SendToKey does.
func (s *Service) SendToKey(ctx context.Context, data []byte, key Key) error {
	if s.name == "" {
		return s.n.SendToKey(ctx, data, key)
	}
	_, _, err := s.send(ctx, "send", wire.NamedMessage, data, key, true)
	return err
}

// RecvFrom returns the next message sent to the service on this node. It
// fails with net.ErrClosed once the service or the node closed, and with
// ctx's error when ctx ends first.
func (s *Service) RecvFrom(ctx context.Context) (Message, error) {
	if s.name == "" {
		return s.n.RecvFrom(ctx)
	}
	if err := s.state("recv"); err != nil {
		return Message{}, err
	}
	select {
	case m := <-s.recv:
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-s.done:
		return Message{}, s.n.opErr("recv", net.ErrClosed)
	case <-s.n.life.Done():
		return Message{}, s.n.opErr("recv", net.ErrClosed)
	}
}

// Broadcast sends data to the service on every node of the network that
// offers it, this one included; it arrives through the service's RecvFrom
// with Message.Broadcast set (a node whose queue is full loses it). It
// travels as the node's Broadcast does, through every node (those that do
// not offer the service pass it on), in about N−1 messages and O(log N)
// steps, and returns the errors of this node's own sends, joined. Data
// larger than group.MaxData fails with an error matching
// ErrMessageTooLarge.
func (s *Service) Broadcast(ctx context.Context, data []byte) error {
	if s.name == "" {
		return s.n.Broadcast(ctx, data)
	}
	if err := s.state("broadcast"); err != nil {
		return err
	}
	return s.n.groups.BroadcastTo(ctx, s.scope, data)
}

// onBroadcast takes a broadcast to a named service (group.Config.OnBroadcast):
// to the service's receive queue if this node offers it.
func (n *Node) onBroadcast(m group.Message) {
	n.svcMu.Lock()
	s := n.services[wire.NameHash(m.Group[:wire.NameHashLen])]
	n.svcMu.Unlock()
	if s == nil || s.name == "" || s.scope != m.Group {
		n.svcCtr.broadcasts.Add(1)
		return
	}
	select {
	case s.recv <- Message{Data: m.Data, From: m.From, To: n.ID().Key(), Broadcast: true}:
	default:
		n.svcCtr.queueFull.Add(1)
	}
}

// send routes a message of kind with data to the service at dest and
// returns the reply's data: the one round trip of every named-service
// message.
func (s *Service) send(ctx context.Context, op string, kind byte, data []byte, dest Key, byKey bool) ([]byte, ID, error) {
	if err := s.state(op); err != nil {
		return nil, ID{}, err
	}
	if len(data) > MaxMessageSize {
		return nil, ID{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(data), MaxMessageSize)
	}
	payload := wire.AppendServiceHeader(make([]byte, 0, wire.ServiceHeaderLen+len(data)),
		wire.ServiceHeader{Kind: kind, Name: s.hash}, data)
	rep, from, err := s.n.ov.SendService(ctx, wire.ServiceNamed, payload, dest, byKey)
	if err != nil {
		return nil, from, err
	}
	status, body, err := wire.ParseNamedReply(rep)
	if err != nil {
		return nil, from, fmt.Errorf("%w: a malformed reply from %v", ErrUnreachable, from)
	}
	switch status {
	case wire.NamedNoService:
		return nil, from, fmt.Errorf("%w: %q at %v", ErrNoService, s.name, from)
	case wire.NamedError:
		return nil, from, &CallError{Service: s.name, Peer: from, Message: string(body)}
	case wire.NamedBusy:
		return nil, from, fmt.Errorf("%w: %q at %v", ErrBusy, s.name, from)
	}
	return body, from, nil
}

// onNamed takes a message to a named service (the overlay's ServiceNamed),
// and answers it through reply.
func (n *Node) onNamed(m overlay.Message, reply overlay.Reply) {
	h, data, err := wire.ParseServiceHeader(m.Data)
	if err != nil {
		n.svcCtr.malformed.Add(1)
		reply(nil, false)
		return
	}
	n.svcMu.Lock()
	s := n.services[h.Name]
	n.svcMu.Unlock()
	refuse := func() {
		n.svcCtr.noService.Add(1)
		reply([]byte{wire.NamedNoService}, true)
	}
	if s == nil {
		refuse()
		return
	}
	msg := Message{Data: data, From: m.From, To: m.To, ByKey: m.ByKey, Hops: m.Hops}
	switch h.Kind {
	case wire.NamedMessage:
		select {
		case s.recv <- msg:
			reply([]byte{wire.NamedOK}, true)
		default:
			n.svcCtr.queueFull.Add(1)
			reply(nil, false) // the sender retries
		}
	case wire.NamedPacket:
		s.mu.Lock()
		pc := s.pc
		s.mu.Unlock()
		if pc == nil {
			refuse()
			return
		}
		if !pc.deliver(msg) {
			n.svcCtr.queueFull.Add(1) // a datagram: dropped, as UDP drops
		}
		reply([]byte{wire.NamedOK}, true)
	case wire.NamedCall:
		s.mu.Lock()
		hd := s.handler
		s.mu.Unlock()
		if hd == nil {
			refuse()
			return
		}
		n.serveCall(s, hd, msg, reply)
	}
}
