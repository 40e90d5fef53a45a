package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

// demoDifficulty is the identity work (p2psock.Config.Difficulty) of the
// demo's own network: 8 bits, about a millisecond an identity, where the
// default (about 0.6 s of a core, against Sybil attacks on an open
// network) would make the demo wait for its participants' identities.
const demoDifficulty = 8

// demoTimeout bounds the whole demo; it takes a few seconds.
const demoTimeout = time.Minute

// runDemo runs four participants in this process, on a network of their own
// on 127.0.0.1, and has them type the commands a user would: alice creates a
// conference and invites the others, bob accepts, dave declines, alice and
// bob talk, carol joins late and sees who is there, alice leaves and the
// others go on, bob leaves. Every line a participant's screen shows is
// printed, prefixed with its name. Each step waits for the events it depends
// on (an invitation received, a line heard), never for a fixed time.
func runDemo(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()

	var mu sync.Mutex // one line at a time on out
	quiet := false    // set when the script is over: the goodbyes of Close are not shown
	show := func(who, line string) {
		mu.Lock()
		defer mu.Unlock()
		if !quiet {
			fmt.Fprintf(out, "%-5s │ %s\n", who, line)
		}
	}
	end := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !quiet {
			fmt.Fprintf(out, format, args...)
		}
		quiet = true
	}

	// A network name of its own keeps the demo away from any other p2psock
	// network on this machine; the first node starts it, the others join
	// through it.
	network := fmt.Sprintf("chat-demo-%08x", rand.Uint32())
	fmt.Fprintf(out, "Four participants, each a p2psock node on 127.0.0.1, network %q.\n"+
		"Each line is what one of them sees; lines with > are what they type.\n\n", network)
	var screens []*screen
	defer func() {
		end("")
		var wg sync.WaitGroup
		for _, s := range screens {
			wg.Go(s.close)
		}
		wg.Wait()
	}()
	for i, nick := range []string{"alice", "bob", "carol", "dave"} {
		cfg := p2psock.Config{ListenAddr: "127.0.0.1:0", Network: network, Difficulty: demoDifficulty}
		if i > 0 {
			cfg.Bootstrap = []string{screens[0].p.Node().UDPAddr().String()}
			cfg.JoinOnly = true
		}
		p, err := Start(ctx, Config{Nick: nick, Node: cfg})
		if err != nil {
			return fmt.Errorf("starting %s: %w", nick, err)
		}
		s := newScreen(p, func(line string) { show(nick, line) })
		screens = append(screens, s)
		s.printf("* I am %s, ID %s", nick, p.ID())
	}
	alice, bob, carol, dave := screens[0], screens[1], screens[2], screens[3]

	invited := func(e Event) bool { return e.Kind == EventInvited }
	did := func(kind EventKind, who *screen) func(Event) bool {
		return func(e Event) bool { return e.Kind == kind && e.From == who.p.ID() }
	}
	said := func(who *screen, text string) func(Event) bool {
		return func(e Event) bool { return e.Kind == EventSaid && e.From == who.p.ID() && e.Text == text }
	}

	sc := &script{ctx: ctx}
	// alice creates the conference and invites the others by nickname: the
	// DHT tells her their IDs.
	sc.types(alice, "/create standup now bob,carol,dave Yesterday, today, blockers")
	sc.waits("the invitation", invited, bob, carol, dave)
	// bob accepts and joins; dave declines.
	sc.types(bob, "/accept")
	sc.types(dave, "/decline standup on holiday, sorry")
	sc.waits("bob accepting", did(EventAccepted, bob), alice)
	sc.waits("bob joining", did(EventJoined, bob), alice)
	sc.waits("dave declining", did(EventDeclined, dave), alice)
	// alice and bob talk.
	sc.types(alice, "Morning! Let's start.")
	sc.waits("alice's line", said(alice, "Morning! Let's start."), bob)
	sc.types(bob, "Yesterday I fixed the flaky test; today the release notes.")
	sc.waits("bob's line", said(bob, "Yesterday I fixed the flaky test; today the release notes."), alice)
	// carol accepts late: she sees who is there, and they see her come.
	sc.types(carol, "/accept")
	sc.waits("who is there", func(e Event) bool { return e.Kind == EventPresent }, carol)
	sc.waits("carol joining", did(EventJoined, carol), alice, bob)
	sc.types(carol, "Sorry I'm late. Nothing blocks me.")
	sc.waits("carol's line", said(carol, "Sorry I'm late. Nothing blocks me."), alice, bob)
	// The organiser leaves: the conference goes on without her.
	sc.types(alice, "I have to go, carry on without me.")
	sc.waits("alice's last line", said(alice, "I have to go, carry on without me."), bob, carol)
	sc.types(alice, "/leave")
	sc.waits("alice leaving", did(EventLeft, alice), alice, bob, carol)
	sc.types(carol, "/who")
	sc.types(bob, "Carol, shall we go through the release notes?")
	sc.waits("bob's question", said(bob, "Carol, shall we go through the release notes?"), carol)
	sc.types(carol, "Sure, let's.")
	sc.waits("carol's answer", said(carol, "Sure, let's."), bob)
	// bob leaves too.
	sc.types(bob, "/leave")
	sc.waits("bob leaving", did(EventLeft, bob), carol)
	if sc.err != nil {
		return sc.err
	}
	end("\nThe conversation reached everyone who took part.\n")
	return nil
}

// screen is a participant's terminal in the demo: it shows the participant's
// events, and keeps them so that the demo can wait for one.
type screen struct {
	terminal
	shown chan struct{} // closed once every event is shown

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed, and replaced, when an event arrives
}

func newScreen(p *Participant, print func(string)) *screen {
	s := &screen{terminal: terminal{p: p, print: print}, shown: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		defer close(s.shown)
		for e := range p.Events() {
			s.show(e)
			s.mu.Lock()
			s.events = append(s.events, e)
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
	}()
	return s
}

// await waits until the participant has had an event that matches.
func (s *screen) await(ctx context.Context, what string, match func(Event) bool) error {
	for i := 0; ; {
		s.mu.Lock()
		for ; i < len(s.events); i++ {
			if match(s.events[i]) {
				s.mu.Unlock()
				return nil
			}
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%s never saw %s: %w", s.p.Nick(), what, ctx.Err())
		}
	}
}

// close closes the participant and waits until its events are shown.
func (s *screen) close() {
	s.p.Close()
	<-s.shown
}

// script runs the demo's steps one after the other, until one fails.
type script struct {
	ctx context.Context
	err error // the first step that failed
}

// types has a participant type a line, as a user would at a terminal.
func (sc *script) types(s *screen, line string) {
	if sc.err != nil {
		return
	}
	s.printf("> %s", line)
	if err := s.execute(sc.ctx, line); err != nil {
		sc.err = fmt.Errorf("%s: %s: %w", s.p.Nick(), line, err)
	}
}

// waits waits until each of screens has shown an event that matches.
func (sc *script) waits(what string, match func(Event) bool, screens ...*screen) {
	for _, s := range screens {
		if sc.err != nil {
			return
		}
		sc.err = s.await(sc.ctx, what, match)
	}
}
