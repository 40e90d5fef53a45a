package p2psock_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/p2psock/p2psock/p2psock"
)

// Two nodes join a group; a multicast from one reaches both, the sender
// included.
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

// A worker joins a group; a node outside it hands the group a job with
// SendAny, which exactly one member receives. A group with no member
// reports ErrEmptyGroup.
func ExampleGroupSocket_SendAny() {
	ctx := context.Background()
	a, b := twoNodes(ctx)
	defer a.Close()
	defer b.Close()

	worker, err := a.Join(ctx, "workers")
	if err != nil {
		log.Fatal(err)
	}
	defer worker.Close()

	if err := b.Group("workers").SendAny(ctx, []byte("job 1")); err != nil {
		log.Fatal(err)
	}
	m, err := worker.Recv(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (anycast: %v, from b: %v)\n", m.Data, m.Anycast, m.From == b.ID())

	err = b.Group("nobody").SendAny(ctx, []byte("job 2"))
	fmt.Println(errors.Is(err, p2psock.ErrEmptyGroup))
	// Output:
	// job 1 (anycast: true, from b: true)
	// true
}

// A broadcast reaches every node of the network, the sender included,
// through RecvFrom.
func ExampleNode_Broadcast() {
	ctx := context.Background()
	a, b := twoNodes(ctx)
	defer a.Close()
	defer b.Close()

	if err := b.Broadcast(ctx, []byte("hello, everyone")); err != nil {
		log.Fatal(err)
	}
	for _, n := range []*p2psock.Node{a, b} {
		m, err := n.RecvFrom(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (broadcast: %v, from b: %v)\n", m.Data, m.Broadcast, m.From == b.ID())
	}
	// Output:
	// hello, everyone (broadcast: true, from b: true)
	// hello, everyone (broadcast: true, from b: true)
}
