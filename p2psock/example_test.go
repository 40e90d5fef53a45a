package p2psock_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/p2psock/p2psock/p2psock"
)

// Two nodes on this machine: the first starts a network, the second joins it
// through the first and sends it a message by ID.
func ExampleNode_SendTo() {
	ctx := context.Background()
	a, err := p2psock.NewNode(p2psock.Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	if err := a.Bind(ctx); err != nil { // no entry point: a new network
		log.Fatal(err)
	}

	b, err := p2psock.NewNode(p2psock.Config{
		ListenAddr: "127.0.0.1:0",
		Bootstrap:  []string{a.UDPAddr().String()},
		JoinOnly:   true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.Bind(ctx); err != nil {
		log.Fatal(err)
	}

	if err := b.SendTo(ctx, []byte("hello, a"), a.ID()); err != nil {
		log.Fatal(err)
	}
	m, err := a.RecvFrom(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (from b: %v, by key: %v)\n", m.Data, m.From == b.ID(), m.ByKey)
	// Output: hello, a (from b: true, by key: false)
}

// A message sent to a key reaches the node whose ID is closest to the key.
func ExampleNode_SendToKey() {
	ctx := context.Background()
	var nodes []*p2psock.Node
	for i := range 5 {
		cfg := p2psock.Config{ListenAddr: "127.0.0.1:0"}
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].UDPAddr().String()}
		}
		n, err := p2psock.NewNode(cfg)
		if err != nil {
			log.Fatal(err)
		}
		defer n.Close()
		if err := n.Bind(ctx); err != nil {
			log.Fatal(err)
		}
		nodes = append(nodes, n)
	}

	key := p2psock.KeyOf([]byte("room:lobby"))
	if err := nodes[1].SendToKey(ctx, []byte("who keeps the lobby?"), key); err != nil {
		log.Fatal(err)
	}
	// Find the closest node ourselves, and read the message there.
	closest := nodes[0]
	for _, n := range nodes[1:] {
		if key.Closer(n.ID().Key(), closest.ID().Key()) {
			closest = n
		}
	}
	m, err := closest.RecvFrom(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s to=%v by key=%v\n", m.Data, m.To == key, m.ByKey)
	// Output: who keeps the lobby? to=true by key=true
}

// An identity stored in a file gives a node the same ID on every start.
func ExampleLoadOrCreateIdentity() {
	dir, err := os.MkdirTemp("", "p2psock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "identity")

	first, err := p2psock.LoadOrCreateIdentity(path) // created, mode 0600
	if err != nil {
		log.Fatal(err)
	}
	again, err := p2psock.LoadOrCreateIdentity(path) // read back
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.ID() == again.ID(), len(first.ID().String()))
	// Output: true 52
}

// Info reports what a node knows about itself.
func ExampleNode_Info() {
	ctx := context.Background()
	n, err := p2psock.NewNode(p2psock.Config{ListenAddr: "127.0.0.1:0", Network: "example"})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	if err := n.Bind(ctx); err != nil {
		log.Fatal(err)
	}
	inf := n.Info()
	fmt.Println(inf.ID == n.ID(), inf.Network, inf.Contacts, inf.LocalAddr.IP)
	// Output: true example 0 127.0.0.1
}

// CheckNAT asks the node's public contacts for probes from other sources
// and reports how its NAT maps and filters, and the NAT type that makes.
// Here, on loopback, there is no NAT.
func ExampleNode_CheckNAT() {
	ctx := context.Background()
	a, err := p2psock.NewNode(p2psock.Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	if err := a.Bind(ctx); err != nil {
		log.Fatal(err)
	}
	b, err := p2psock.NewNode(p2psock.Config{ListenAddr: "127.0.0.1:0", Bootstrap: []string{a.UDPAddr().String()}, JoinOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.Bind(ctx); err != nil {
		log.Fatal(err)
	}
	nat, err := b.CheckNAT(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(nat.Type, nat.Mapping, nat.PublicAddrs[0] == b.UDPAddr().AddrPort())
	// Output: open none true
}
