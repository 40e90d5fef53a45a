// Command demo runs a p2psock network on this machine and shows what it does,
// printed as it happens: nodes join, some of them behind simulated NATs
// (full-cone, port-restricted and symmetric), messages travel by ID and by
// key, acknowledged end to end, streams connect across the NATs, directly or
// through a relay, a group gets a multicast and an anycast, and the DHT
// stores and returns values. Nothing outside this process is used.
//
//	go run ./examples/demo
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/p2psock"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err and maps it to the exit status: 0 ok, 1 failure,
// 2 usage.
func exitCode(err error, stderr io.Writer) int {
	return cli.Program{Name: "demo", Usage: usage}.ExitStatus(err, stderr)
}

const usage = "usage: demo [-public n] [-nat n] [-view]\n"

// demoDifficulty is the identity work (p2psock.Config.Difficulty) of the
// demo's network: 8 bits.
const demoDifficulty = 8

type member struct {
	name string
	kind simnet.Kind
	node *p2psock.Node
	dht  *dht.DHT
}

// run is the demo, with its arguments (without the program name) and its
// output passed in, so that tests run it in-process, as often as they like.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("demo", usage, stderr)
	public := fs.Int("public", 12, "nodes with a public address")
	natted := fs.Int("nat", 9, "nodes behind NATs (full-cone, port-restricted, symmetric in turn)")
	view := fs.Bool("view", false, "serve each node's live view page on 127.0.0.1 and keep the network up until interrupted")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}

	sn, err := simnet.New()
	if err != nil {
		return err
	}
	defer sn.Close()
	interrupt := ctx
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	fmt.Fprintf(stdout, "Building a network of %d nodes on a simulated Internet (%d behind NATs)...\n", *public+*natted, *natted)
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
		// The demo's network is its own, so it picks its identity work:
		// a little (about a millisecond an identity), where the default
		// (about 0.6 s of a core, against Sybil attacks on an open
		// network) would take most of the demo's time for 21 identities.
		cfg := p2psock.Config{PacketConn: pc, Difficulty: demoDifficulty}
		if *view {
			cfg.DebugAddr = "127.0.0.1:0" // a page per node (view.go)
		}
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
		d, err := dht.New(n, dht.Config{}) // every node stores records for the network
		if err != nil {
			return err
		}
		defer d.Close()
		start := time.Now()
		if err := n.Bind(ctx); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		if entry == "" {
			entry = pc.LocalAddr().String()
		}
		m := member{name: fmt.Sprintf("n%02d", i), kind: kind, node: n, dht: d}
		members = append(members, m)
		inf := n.Info()
		where := inf.LocalAddr.String()
		if kind != simnet.Public {
			where += " seen as " + inf.PublicAddr.String()
		}
		fmt.Fprintf(stdout, "  %s %-15s %-32s joined in %5.1f ms, id %s…\n", m.name, kind, where,
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
	fmt.Fprintf(stdout, "\nA symmetric NAT and a port-restricted NAT admit no hole punch between them.\n")
	fmt.Fprintf(stdout, "%s (%s) has %d contacts, %d of them reached through a relay node.\n",
		sym.name, sym.kind, sym.node.Info().Contacts, sym.node.Info().Relayed)

	say := func(from member, data string, to p2psock.ID) error {
		start := time.Now()
		if err := from.node.SendTo(ctx, []byte(data), to); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %s SendTo %q: acknowledged in %.2f ms\n", from.name, data, float64(time.Since(start).Microseconds())/1000)
		return nil
	}
	receive := func(m member) error {
		msg, err := m.node.RecvFrom(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %s RecvFrom: %q from %s, %d hop(s), by key: %v\n", m.name, msg.Data, nameOf(members, msg.From), msg.Hops, msg.ByKey)
		return nil
	}
	fmt.Fprintln(stdout, "\nBy ID, both ways:")
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

	fmt.Fprintln(stdout, "\nStreams: Connect finds a path with ICE, then QUIC runs on it.")
	full := pick(simnet.FullCone)
	for _, p := range [][2]member{{full, prc}, {sym, prc}} {
		if err := stream(ctx, stdout, p[0], p[1]); err != nil {
			return err
		}
	}

	fmt.Fprintln(stdout, "\nBy key: a message to KeyOf(\"room:lobby\") goes to the node whose ID is closest to it.")
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
	fmt.Fprintf(stdout, "  %s SendToKey: acknowledged in %.2f ms; the closest node is %s (%s)\n",
		members[1].name, float64(time.Since(start).Microseconds())/1000, closest.name, closest.kind)
	if err := receive(closest); err != nil {
		return err
	}

	if err := groups(ctx, stdout, members, full, prc, sym); err != nil {
		return err
	}
	if err := storage(ctx, stdout, members, sym, full); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\nTo an ID nobody has:")
	ghost, _ := p2psock.NewIdentityWork(ctx, demoDifficulty)
	err = members[2].node.SendTo(ctx, []byte("anyone?"), ghost.ID())
	fmt.Fprintf(stdout, "  SendTo: %v (errors.Is ErrUnreachable: %v)\n", err, errors.Is(err, p2psock.ErrUnreachable))

	fmt.Fprintln(stdout, "\nCounters of", sym.name+":")
	c := sym.node.Info().Counters
	fmt.Fprintf(stdout, "  packets in/out %d/%d, messages sent/received/forwarded %d/%d/%d, dropped %d\n",
		c.PacketsIn, c.PacketsOut, c.MessagesSent, c.MessagesReceived, c.MessagesForwarded, c.Dropped)
	if *view {
		return serveViews(interrupt, stdout, members)
	}
	return nil
}

// groups shows a multicast to a group with members behind three kinds of NAT,
// from a node outside the group, and an anycast to "any one member".
func groups(ctx context.Context, out io.Writer, members []member, in ...member) error {
	fmt.Fprintln(out, "\nGroups: a multicast reaches every member through a tree over the overlay.")
	var socks []*p2psock.GroupSocket
	for _, m := range in {
		g, err := m.node.Join(ctx, "room:lobby")
		if err != nil {
			return fmt.Errorf("%s Join: %w", m.name, err)
		}
		defer g.Close()
		socks = append(socks, g)
		fmt.Fprintf(out, "  %s (%s) joined \"room:lobby\"\n", m.name, m.kind)
	}
	outsider := members[3]
	start := time.Now()
	if err := outsider.node.Group("room:lobby").Send(ctx, []byte("welcome, all of you")); err != nil {
		return err
	}
	for i, g := range socks {
		msg, err := g.Recv(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s got %q from %s (not a member) after %.1f ms\n", in[i].name, msg.Data,
			nameOf(members, msg.From), float64(time.Since(start).Microseconds())/1000)
	}
	if err := outsider.node.Group("room:lobby").SendAny(ctx, []byte("one of you, please")); err != nil {
		return err
	}
	got := make(chan string, len(socks))
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, g := range socks {
		go func() {
			if msg, err := g.Recv(actx); err == nil && msg.Anycast {
				got <- in[i].name
			}
		}()
	}
	fmt.Fprintf(out, "  %s SendAny: handed to exactly one member, %s\n", outsider.name, <-got)
	return nil
}

// storage shows a value stored in the DHT by a node behind a symmetric NAT
// and read by another node.
func storage(ctx context.Context, out io.Writer, members []member, owner, reader member) error {
	fmt.Fprintln(out, "\nDHT: owner-signed values under a key, each with its own lifetime.")
	for _, m := range []member{owner, reader} {
		value := fmt.Sprintf("%s is online", m.name)
		if err := m.dht.Add(ctx, "presence:lobby", []byte(value), time.Minute); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s Add(\"presence:lobby\", %q, 1m)\n", m.name, value)
	}
	recs, err := members[5].dht.Get(ctx, "presence:lobby")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %s Get(\"presence:lobby\"): %d values\n", members[5].name, len(recs))
	for _, r := range recs {
		fmt.Fprintf(out, "    %q, signed by %s, expires in %.0f s\n", r.Value, nameOf(members, r.Owner), time.Until(r.Expires).Seconds())
	}
	return nil
}

// stream opens a stream from a to b, sends a greeting, reads the echo, and
// says which path the connection took.
func stream(ctx context.Context, out io.Writer, a, b member) error {
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
	fmt.Fprintf(out, "  %s (%s) -> %s (%s): connected in %.1f ms, %s; echoed %q\n",
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
