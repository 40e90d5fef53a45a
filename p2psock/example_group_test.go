package p2psock_test

import (
	"context"
	"fmt"
	"log"

	"github.com/p2psock/p2psock/p2psock"
)

// Two nodes join a group; a multicast from one reaches both, the sender
// included; an anycast from outside the group reaches exactly one member.
func ExampleNode_Join() {
	ctx := context.Background()
	a, b := twoNodes(ctx)
	defer a.Close()
	defer b.Close()

	ga, err := a.Join(ctx, "room:lobby")
	if err != nil {
		log.Fatal(err)
	}
	defer ga.Close()
	gb, err := b.Join(ctx, "room:lobby")
	if err != nil {
		log.Fatal(err)
	}
	defer gb.Close()

	if err := gb.Send(ctx, []byte("hello, group")); err != nil {
		log.Fatal(err)
	}
	for _, g := range []*p2psock.GroupSocket{ga, gb} {
		m, err := g.Recv(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (from b: %v)\n", m.Data, m.From == b.ID())
	}
	// Output:
	// hello, group (from b: true)
	// hello, group (from b: true)
}
