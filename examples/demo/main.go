// Command demo runs a p2psock network on this machine and shows what it does,
// printed as it happens: nodes join, some of them behind simulated NATs
// (full-cone, port-restricted and symmetric), messages travel by ID and by
// key, acknowledged end to end, and streams connect across the NATs, directly
// or through a relay. Nothing outside this process is used.
//
//	go run ./examples/demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/p2psock/p2psock"
	"github.com/p2psock/p2psock/internal/simnet"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type member struct {
	name string
	kind simnet.Kind
	node *p2psock.Node
}

func run() error {
	public := flag.Int("public", 12, "nodes with a public address")
	natted := flag.Int("nat", 9, "nodes behind NATs (full-cone, port-restricted, symmetric in turn)")
	flag.Parse()

	sn, err := simnet.New()
	if err != nil {
		return err
	}
	defer sn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	fmt.Printf("Building a network of %d nodes on a simulated Internet (%d behind NATs)...\n", *public+*natted, *natted)
	nats := []simnet.Kind{simnet.FullCone, simnet.PortRestricted, simnet.Symmetric}
	var members []member
	var entry string
	for i := range *public + *natted {
		kind := simnet.Public
		if i > 0 && i%2 == 0 && *natted > 0 { // interleave NATed nodes with public ones
			kind = nats[(i/2-1)%3]
			*natted--
		}
		h, err := sn.AddHost(kind)
		if err != nil {
			return err
		}
		pc, err := h.ListenUDP(4000)
		if err != nil {
			return err
		}
		cfg := p2psock.Config{PacketConn: pc}
		if kind == simnet.Public {
			cfg.RelayAddr = ":3478" // public nodes offer a TURN relay
		}
		if entry != "" {
			cfg.Bootstrap, cfg.JoinOnly = []string{entry}, true
		}
		n, err := p2psock.NewNode(cfg)
		if err != nil {
			return err
		}
		defer n.Close()
		start := time.Now()
		if err := n.Bind(ctx); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		if entry == "" {
			entry = pc.LocalAddr().String()
		}
		m := member{name: fmt.Sprintf("n%02d", i), kind: kind, node: n}
		members = append(members, m)
		inf := n.Info()
		where := inf.LocalAddr.String()
		if kind != simnet.Public {
			where += " seen as " + inf.PublicAddr.String()
		}
		fmt.Printf("  %s %-15s %-32s joined in %5.1f ms, id %s…\n", m.name, kind, where,
			float64(time.Since(start).Microseconds())/1000, n.ID().String()[:12])
	}

	pick := func(k simnet.Kind) member {
		for _, m := range members {
			if m.kind == k {
				return m
			}
		}
		return members[1]
	}
	sym, prc := pick(simnet.Symmetric), pick(simnet.PortRestricted)
	fmt.Printf("\nA symmetric NAT and a port-restricted NAT admit no hole punch between them.\n")
	fmt.Printf("%s (%s) has %d contacts, %d of them reached through a relay node.\n",
		sym.name, sym.kind, sym.node.Info().Contacts, sym.node.Info().Relayed)

	say := func(from member, data string, to p2psock.ID) error {
		start := time.Now()
		if err := from.node.SendTo(ctx, []byte(data), to); err != nil {
			return err
		}
		fmt.Printf("  %s SendTo %q: acknowledged in %.2f ms\n", from.name, data, float64(time.Since(start).Microseconds())/1000)
		return nil
	}
	receive := func(m member) error {
		msg, err := m.node.RecvFrom(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("  %s RecvFrom: %q from %s, %d hop(s), by key: %v\n", m.name, msg.Data, nameOf(members, msg.From), msg.Hops, msg.ByKey)
		return nil
	}
	fmt.Println("\nBy ID, both ways:")
	if err := say(sym, "hello from behind a symmetric NAT", prc.node.ID()); err != nil {
		return err
	}
	if err := receive(prc); err != nil {
		return err
	}
	if err := say(prc, "hello back", sym.node.ID()); err != nil {
		return err
	}
	if err := receive(sym); err != nil {
		return err
	}

	fmt.Println("\nStreams: Connect finds a path with ICE, then QUIC runs on it.")
	full := pick(simnet.FullCone)
	for _, p := range [][2]member{{full, prc}, {sym, prc}} {
		if err := stream(ctx, p[0], p[1]); err != nil {
			return err
		}
	}

	fmt.Println("\nBy key: a message to KeyOf(\"room:lobby\") goes to the node whose ID is closest to it.")
	key := p2psock.KeyOf([]byte("room:lobby"))
	closest := members[0]
	for _, m := range members[1:] {
		if key.Closer(m.node.ID().Key(), closest.node.ID().Key()) {
			closest = m
		}
	}
	start := time.Now()
	if err := members[1].node.SendToKey(ctx, []byte("who keeps the lobby?"), key); err != nil {
		return err
	}
	fmt.Printf("  %s SendToKey: acknowledged in %.2f ms; the closest node is %s (%s)\n",
		members[1].name, float64(time.Since(start).Microseconds())/1000, closest.name, closest.kind)
	if err := receive(closest); err != nil {
		return err
	}

	fmt.Println("\nTo an ID nobody has:")
	ghost, _ := p2psock.NewIdentity()
	err = members[2].node.SendTo(ctx, []byte("anyone?"), ghost.ID())
	fmt.Printf("  SendTo: %v (errors.Is ErrUnreachable: %v)\n", err, errors.Is(err, p2psock.ErrUnreachable))

	fmt.Println("\nCounters of", sym.name+":")
	c := sym.node.Info().Counters
	fmt.Printf("  packets in/out %d/%d, messages sent/received/forwarded %d/%d/%d, dropped %d\n",
		c.PacketsIn, c.PacketsOut, c.MessagesSent, c.MessagesReceived, c.MessagesForwarded, c.Dropped)
	return nil
}

// stream opens a stream from a to b, sends a greeting, reads the echo, and
// says which path the connection took.
func stream(ctx context.Context, a, b member) error {
	done := make(chan error, 1)
	go func() {
		c, err := b.node.AcceptContext(ctx)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c) // echo until a closes its side
		done <- err
	}()
	start := time.Now()
	c, err := a.node.Connect(ctx, b.node.ID())
	if err != nil {
		return fmt.Errorf("%s Connect %s: %w", a.name, b.name, err)
	}
	took := time.Since(start)
	defer c.Close()
	msg := fmt.Sprintf("hello %s, from %s behind a %s NAT", b.name, a.name, a.kind)
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	c.CloseWrite()
	echo, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	path := "direct"
	if c.Path().Relayed {
		path = "through a TURN relay"
	}
	fmt.Printf("  %s (%s) -> %s (%s): connected in %.1f ms, %s; echoed %q\n",
		a.name, a.kind, b.name, b.kind, float64(took.Microseconds())/1000, path, echo)
	return nil
}

func nameOf(ms []member, id p2psock.ID) string {
	for _, m := range ms {
		if m.node.ID() == id {
			return m.name
		}
	}
	return id.String()[:12] + "…"
}
