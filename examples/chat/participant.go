package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	EventInvited  EventKind = iota + 1 // an invitation arrived: Conf, From, Names (the invitees)
	EventAccepted                      // From accepted our invitation to Conf
	EventDeclined                      // From declined our invitation to Conf, saying Text
	EventPresent                       // on joining Conf: Names are the members there
	EventJoined                        // From joined Conf (this node too)
	EventSaid                          // From said Text in Conf (this node too)
	EventLeft                          // From left Conf (this node too)
	EventNotice                        // something went wrong: Text
)

// Event is something that happened to a participant.
type Event struct {
	Kind  EventKind
	Time  time.Time   // when it happened, on this node's clock
	Conf  *Conference // the conference it is about, if any
	From  p2psock.ID  // who did it (verified by p2psock)
	Nick  string      // what From is called
	Text  string
	Names []string
}

// Timing.
const (
	// announceTTL is how long a DHT record (a nickname, a presence) lives
	// unless its owner renews it, which it does every announceEvery: a node
	// that crashes disappears from "who is there" within announceTTL.
	announceTTL   = time.Minute
	announceEvery = 20 * time.Second
	// deliverTimeout is how long an invitation or an answer keeps trying to
	// reach its peer.
	deliverTimeout = 15 * time.Second
	// closeTimeout bounds the goodbyes of Close.
	closeTimeout = 3 * time.Second
)

var (
	errNotInConference = errors.New("not in a conference")
	errClosed          = errors.New("closed")
)

// Config configures a Participant.
type Config struct {
	Nick string
	Node p2psock.Config
}

// Participant is one person's chat client: a p2psock node with a DHT, the
// invitations it received, and the conference it is in. What happens, it
// reports on Events; what its user does, it does through its methods. Its
// methods are safe for concurrent use.
type Participant struct {
	nick   string
	node   *p2psock.Node
	dht    *dht.DHT
	events chan Event

	ctx  context.Context // ends with Close, and with it every goroutine
	stop context.CancelFunc
	wg   sync.WaitGroup

	op     sync.Mutex // serialises the user's operations and Close
	closed bool       // under op

	mu        sync.Mutex
	names     map[p2psock.ID]string  // nicknames, as their owners (or organisers) claim
	pending   []*Conference          // invitations not answered yet, oldest first
	organised map[string]*Conference // conferences this node created, by group name
	member    *membership            // the conference this node is in; nil if none
}

// membership is a node's part in one conference.
type membership struct {
	conf     *Conference
	group    *p2psock.GroupSocket
	presence []byte             // this node's value under conf.PresenceKey()
	stop     context.CancelFunc // ends the receive loop
	done     chan struct{}      // closed when the receive loop has ended

	mu   sync.Mutex // held while the presence is renewed
	left bool       // under mu: the presence must not be renewed any more
}

// Start creates a participant's node and binds it into the network.
func Start(ctx context.Context, cfg Config) (*Participant, error) {
	if err := checkNick(cfg.Nick); err != nil {
		return nil, err
	}
	n, d, err := cli.StartNode(ctx, cfg.Node, dht.Config{Logger: cfg.Node.Logger})
	if err != nil {
		return nil, err
	}
	p := &Participant{nick: cfg.Nick, node: n, dht: d, events: make(chan Event, 64),
		names: map[p2psock.ID]string{}, organised: map[string]*Conference{}}
	p.ctx, p.stop = context.WithCancel(context.Background())

	// Tell the network who we are, so that others can invite us by name.
	if err := d.Add(ctx, userKey(p.nick), []byte(p.nick), announceTTL); err != nil {
		p.stop()
		d.Close()
		n.Close()
		return nil, fmt.Errorf("announcing %q: %w", p.nick, err)
	}
	p.wg.Go(p.receive)
	p.wg.Go(p.announce)
	return p, nil
}

// ID returns the participant's node ID.
func (p *Participant) ID() p2psock.ID { return p.node.ID() }

// Nick returns the participant's nickname.
func (p *Participant) Nick() string { return p.nick }

// Node returns the participant's node.
func (p *Participant) Node() *p2psock.Node { return p.node }

// Events returns what happens to the participant, in order. The channel is
// closed by Close. A participant waits for its events to be read, so read
// them.
func (p *Participant) Events() <-chan Event { return p.events }

// Pending returns the invitations not answered yet, oldest first.
func (p *Participant) Pending() []*Conference {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pending)
}

// Conference returns the conference the participant is in, or nil.
func (p *Participant) Conference() *Conference {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.member == nil {
		return nil
	}
	return p.member.conf
}

// Create creates a conference, joins it and invites people, given by
// nickname or ID. The invitations go out in the background: Events reports
// each one that could not be delivered, and each answer.
func (p *Participant) Create(ctx context.Context, name, topic string, start time.Time, invitees []string) (*Conference, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return nil, errClosed
	}
	c := &Conference{Name: name, Topic: topic, Start: start, Organiser: p.ID(), Nick: p.nick}
	for _, who := range invitees {
		if who = strings.TrimSpace(who); who == "" {
			continue
		}
		id, err := p.resolve(ctx, who)
		if err != nil {
			return nil, err
		}
		if !c.Admits(id) {
			c.Invitees = append(c.Invitees, Invitee{ID: id, Nick: p.knownNick(id)})
		}
	}
	if len(c.Invitees) == 0 {
		return nil, errors.New("invite somebody")
	}
	p.mu.Lock()
	p.organised[c.Group()] = c // before the invitations: answers may come at once
	p.mu.Unlock()
	if err := p.enter(ctx, c); err != nil {
		p.mu.Lock()
		delete(p.organised, c.Group())
		p.mu.Unlock()
		return nil, err
	}

	invitation := encode(message{Type: typeInvite, Nick: p.nick, Conference: c})
	for _, i := range c.Invitees {
		p.wg.Go(func() {
			ctx, cancel := context.WithTimeout(p.ctx, deliverTimeout)
			defer cancel()
			if err := sendTo(ctx, p.node, invitation, i.ID); err != nil {
				p.emit(Event{Kind: EventNotice, Conf: c, Text: fmt.Sprintf("the invitation did not reach %s: %v", p.nameOf(i.ID, i.Nick), err)})
			}
		})
	}
	return c, nil
}

// Accept accepts an invitation: it tells the organiser (in the background)
// and joins the conference.
func (p *Participant) Accept(ctx context.Context, c *Conference) error {
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return errClosed
	}
	if err := p.enter(ctx, c); err != nil {
		return err
	}
	p.answer(c, message{Type: typeAccept, Nick: p.nick, Group: c.Group()})
	return nil
}

// Decline declines an invitation, telling the organiser why (in the
// background).
func (p *Participant) Decline(ctx context.Context, c *Conference, reason string) error {
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return errClosed
	}
	p.answer(c, message{Type: typeDecline, Nick: p.nick, Group: c.Group(), Text: reason})
	return nil
}

// answer forgets the invitation to c and sends m to its organiser.
func (p *Participant) answer(c *Conference, m message) {
	p.mu.Lock()
	p.pending = slices.DeleteFunc(p.pending, func(x *Conference) bool { return x.Group() == c.Group() })
	p.mu.Unlock()
	data := encode(m)
	p.wg.Go(func() {
		ctx, cancel := context.WithTimeout(p.ctx, deliverTimeout)
		defer cancel()
		if err := sendTo(ctx, p.node, data, c.Organiser); err != nil {
			p.emit(Event{Kind: EventNotice, Conf: c, Text: fmt.Sprintf("could not tell %s: %v", p.nameOf(c.Organiser, c.Nick), err)})
		}
	})
}

// enter joins conference c: the node joins its group, announces itself in
// the DHT and to the members, and reports who is there.
func (p *Participant) enter(ctx context.Context, c *Conference) error {
	if cur := p.Conference(); cur != nil {
		return fmt.Errorf("already in %q: /leave it first", cur.Name)
	}
	g, err := p.node.Join(ctx, c.Group())
	if err != nil {
		return err
	}
	m := &membership{conf: c, group: g, presence: mustJSON(presence{Nick: p.nick}), done: make(chan struct{})}
	if err := p.dht.Add(ctx, c.PresenceKey(), m.presence, announceTTL); err != nil {
		g.Close()
		return fmt.Errorf("announcing presence: %w", err)
	}
	var lctx context.Context
	lctx, m.stop = context.WithCancel(p.ctx)
	p.mu.Lock()
	p.member = m
	p.mu.Unlock()
	p.wg.Go(func() { p.listen(lctx, m) })

	// From here on the node is in the conference: a failure is worth a
	// notice, not a failed enter.
	if err := g.Send(ctx, encode(message{Type: typeJoined, Nick: p.nick})); err != nil {
		p.emit(Event{Kind: EventNotice, Conf: c, Text: fmt.Sprintf("could not tell the members you joined: %v", err)})
	}
	names, err := p.who(ctx, c)
	if err != nil {
		p.emit(Event{Kind: EventNotice, Conf: c, Text: fmt.Sprintf("could not find out who is there: %v", err)})
		return nil
	}
	p.emit(Event{Kind: EventPresent, Conf: c, Names: names})
	return nil
}

// Say sends a line to the conference.
func (p *Participant) Say(ctx context.Context, text string) error {
	p.op.Lock()
	defer p.op.Unlock()
	m := p.current()
	if m == nil {
		return errNotInConference
	}
	return m.group.Send(ctx, encode(message{Type: typeSaid, Nick: p.nick, Text: text}))
}

// Who returns the display names of the members of the conference, as the DHT
// knows them: everyone who joined and has not left (or crashed a while ago).
func (p *Participant) Who(ctx context.Context) ([]string, error) {
	m := p.current()
	if m == nil {
		return nil, errNotInConference
	}
	return p.who(ctx, m.conf)
}

func (p *Participant) who(ctx context.Context, c *Conference) ([]string, error) {
	recs, err := p.dht.Get(ctx, c.PresenceKey())
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[p2psock.ID]bool{}
	for _, r := range recs {
		var pr presence
		if !c.Admits(r.Owner) || seen[r.Owner] || json.Unmarshal(r.Value, &pr) != nil || checkNick(pr.Nick) != nil {
			continue
		}
		seen[r.Owner] = true
		p.learn(r.Owner, pr.Nick)
		if r.Owner == p.ID() {
			names = append(names, p.nick+" (you)")
		} else {
			names = append(names, p.nameOf(r.Owner, pr.Nick))
		}
	}
	slices.Sort(names)
	return names, nil
}

// Leave leaves the conference: the members are told, the presence record is
// removed, and the node leaves the group.
func (p *Participant) Leave(ctx context.Context) error {
	p.op.Lock()
	defer p.op.Unlock()
	return p.leave(ctx)
}

func (p *Participant) leave(ctx context.Context) error {
	m := p.current()
	if m == nil {
		return errNotInConference
	}
	err := m.group.Send(ctx, encode(message{Type: typeLeft, Nick: p.nick}))
	m.mu.Lock() // waits for a renewal under way
	m.left = true
	m.mu.Unlock()
	err = errors.Join(err, p.dht.Remove(ctx, m.conf.PresenceKey(), m.presence))
	m.stop()
	<-m.done
	err = errors.Join(err, m.group.Close())
	p.mu.Lock()
	p.member = nil
	p.mu.Unlock()
	p.emit(Event{Kind: EventLeft, Conf: m.conf, From: p.ID(), Nick: p.nick})
	return err
}

// Close leaves the conference, takes the nickname out of the DHT and closes
// the node. Then Events is closed.
func (p *Participant) Close() error {
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	p.stop() // ends the goroutines: the loops, and invitations still trying
	p.wg.Wait()
	if p.current() != nil {
		_ = p.leave(ctx) // best effort
	}
	_ = p.dht.Remove(ctx, userKey(p.nick), []byte(p.nick)) // best effort: the TTL ends it otherwise
	p.dht.Close()
	err := p.node.Close()
	close(p.events)
	return err
}

// receive handles the messages sent to this node by ID: invitations, and
// answers to the invitations it sent.
func (p *Participant) receive() {
	for {
		msg, err := p.node.RecvFrom(p.ctx)
		if err != nil {
			return // closed
		}
		if msg.Broadcast || msg.ByKey {
			continue
		}
		m, err := decode(msg.Data)
		if err != nil {
			p.emit(Event{Kind: EventNotice, Text: fmt.Sprintf("dropped a message from %s: %v", short(msg.From), err)})
			continue
		}
		switch m.Type {
		case typeInvite:
			p.invited(msg.From, m)
		case typeAccept, typeDecline:
			p.answered(msg.From, m)
		}
	}
}

func (p *Participant) invited(from p2psock.ID, m message) {
	c := m.Conference
	if c.Organiser != from || !c.Admits(p.ID()) { // signed by someone else, or not for us
		p.emit(Event{Kind: EventNotice, Text: fmt.Sprintf("dropped a forged invitation from %s", short(from))})
		return
	}
	c.Nick = m.Nick
	p.learn(from, m.Nick)
	for _, i := range c.Invitees {
		p.learnIfNew(i.ID, i.Nick)
	}
	p.mu.Lock()
	p.pending = slices.DeleteFunc(p.pending, func(x *Conference) bool { return x.Group() == c.Group() })
	p.pending = append(p.pending, c)
	p.mu.Unlock()
	names := make([]string, len(c.Invitees))
	for k, i := range c.Invitees {
		names[k] = p.nameOf(i.ID, i.Nick)
	}
	p.emit(Event{Kind: EventInvited, Conf: c, From: from, Nick: m.Nick, Names: names})
}

func (p *Participant) answered(from p2psock.ID, m message) {
	p.mu.Lock()
	c := p.organised[m.Group]
	p.mu.Unlock()
	if c == nil || !c.Admits(from) {
		return // not an invitation of ours
	}
	p.learn(from, m.Nick)
	kind := EventAccepted
	if m.Type == typeDecline {
		kind = EventDeclined
	}
	p.emit(Event{Kind: kind, Conf: c, From: from, Nick: p.nameOf(from, m.Nick), Text: m.Text})
}

// listen handles the messages of a conference's group until ctx ends.
func (p *Participant) listen(ctx context.Context, m *membership) {
	defer close(m.done)
	for {
		gm, err := m.group.Recv(ctx)
		if err != nil {
			return
		}
		if !m.conf.Admits(gm.From) {
			continue // not invited: ignored
		}
		msg, err := decode(gm.Data)
		if err != nil {
			continue
		}
		p.learn(gm.From, msg.Nick)
		e := Event{Conf: m.conf, From: gm.From, Nick: p.nameOf(gm.From, msg.Nick), Text: msg.Text}
		switch msg.Type {
		case typeJoined:
			e.Kind = EventJoined
		case typeSaid:
			e.Kind = EventSaid
		case typeLeft:
			if gm.From == p.ID() {
				continue // Leave reports it
			}
			e.Kind = EventLeft
		default:
			continue
		}
		p.emit(e)
	}
}

// announce renews the node's DHT records until the participant closes.
func (p *Participant) announce() {
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		// Errors are not reported: a record that was not renewed this time
		// lives on until its TTL ends, and the next round tries again.
		ctx, cancel := context.WithTimeout(p.ctx, announceEvery)
		_ = p.dht.Add(ctx, userKey(p.nick), []byte(p.nick), announceTTL)
		if m := p.current(); m != nil {
			m.mu.Lock()
			if !m.left {
				_ = p.dht.Add(ctx, m.conf.PresenceKey(), m.presence, announceTTL)
			}
			m.mu.Unlock()
		}
		cancel()
	}
}

// resolve turns a nickname or an ID into an ID. A nickname is looked up in
// the DHT, where every running participant announces its own.
func (p *Participant) resolve(ctx context.Context, who string) (p2psock.ID, error) {
	if id, err := p2psock.ParseID(who); err == nil {
		return id, nil
	}
	if err := checkNick(who); err != nil {
		return p2psock.ID{}, err
	}
	recs, err := p.dht.Get(ctx, userKey(who))
	if err != nil {
		return p2psock.ID{}, fmt.Errorf("looking up %q: %w", who, err)
	}
	var owners []p2psock.ID
	for _, r := range recs {
		if string(r.Value) == who && !slices.Contains(owners, r.Owner) {
			owners = append(owners, r.Owner)
		}
	}
	switch len(owners) {
	case 0:
		return p2psock.ID{}, fmt.Errorf("nobody called %q is online (give an ID instead)", who)
	case 1:
		p.learn(owners[0], who)
		return owners[0], nil
	}
	return p2psock.ID{}, fmt.Errorf("%d nodes call themselves %q (give an ID instead): %v", len(owners), who, owners)
}

// emit reports an event, unless the participant is closing.
func (p *Participant) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	select {
	case p.events <- e:
	case <-p.ctx.Done():
	}
}

func (p *Participant) current() *membership {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.member
}

// learn records the nickname id goes by.
func (p *Participant) learn(id p2psock.ID, nick string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names[id] = nick
}

// learnIfNew records a nickname for id unless it has one already: what
// others say id is called counts less than what id says.
func (p *Participant) learnIfNew(id p2psock.ID, nick string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.names[id]; !ok && nick != "" {
		p.names[id] = nick
	}
}

// knownNick returns the nickname id goes by, or "".
func (p *Participant) knownNick(id p2psock.ID) string {
	if id == p.ID() {
		return p.nick
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.names[id]
}

// nameOf returns what to call id on screen: its nickname, or else hint, or
// else the start of its ID.
func (p *Participant) nameOf(id p2psock.ID, hint string) string {
	if nick := p.knownNick(id); nick != "" {
		return nick
	}
	if hint != "" {
		return hint
	}
	return short(id)
}

// sendTo sends data to a node and waits for its acknowledgement. It gives
// up when ctx ends.
func sendTo(ctx context.Context, n *p2psock.Node, data []byte, to p2psock.ID) error {
	return n.SendTo(ctx, data, to)
}
