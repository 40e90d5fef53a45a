package group_test

import (
	"context"
	"fmt"
	"log"

	"github.com/p2psock/p2psock/group"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// Two overlay nodes on loopback, each with a group service: both join a
// group, a multicast reaches both, and an anycast is delivered to one of
// them (Anycast returns once a member has it).
func Example() {
	ctx := context.Background()
	var gs []*group.Groups
	start := func(entries []string) *ovnet.Node {
		nd, err := ovnet.Open(overlay.Config{}, "127.0.0.1:0", nil, func(nd *ovnet.Node) error {
			g := group.New(nd.Overlay, group.Config{}) // before the overlay joins
			gs = append(gs, g)
			nd.Closers = append(nd.Closers, g.Close)
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
		if err := nd.Join(ctx, entries, len(entries) > 0); err != nil {
			log.Fatal(err)
		}
		return nd
	}
	a := start(nil)
	defer a.Close()
	b := start([]string{a.Addr()})
	defer b.Close()

	chat := overlay.KeyOf([]byte("chat"))
	var members []*group.Member
	for _, g := range gs {
		m, err := g.Join(ctx, chat)
		if err != nil {
			log.Fatal(err)
		}
		members = append(members, m)
	}
	if err := gs[1].Publish(ctx, chat, []byte("hello, group")); err != nil {
		log.Fatal(err)
	}
	for _, m := range members {
		msg, err := m.Recv(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (from b: %v)\n", msg.Data, msg.From == b.ID())
	}
	if err := gs[0].Anycast(ctx, chat, []byte("one of you")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(gs[0].Stats().Busy, "dropped")
	// Output:
	// hello, group (from b: true)
	// hello, group (from b: true)
	// 0 dropped
}
