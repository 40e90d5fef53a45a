package dht_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// Three nodes on this machine, each running the DHT: two of them add a value
// under the same key, and the third reads both. Each value is signed by the
// node that added it, so Record.Owner names its writer.
func ExampleDHT_Get() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // making identities takes a while (their work proof)
	defer cancel()
	var (
		nodes []*p2psock.Node
		dhts  []*dht.DHT
	)
	for i := range 3 {
		cfg := p2psock.Config{ListenAddr: "127.0.0.1:0"}
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].UDPAddr().String()}
			cfg.JoinOnly = true
		}
		n, err := p2psock.NewNode(cfg)
		if err != nil {
			log.Fatal(err)
		}
		defer n.Close()
		d, err := dht.New(n, dht.Config{}) // before Bind
		if err != nil {
			log.Fatal(err)
		}
		defer d.Close()
		if err := n.Bind(ctx); err != nil {
			log.Fatal(err)
		}
		nodes, dhts = append(nodes, n), append(dhts, d)
	}

	const key = "room:lobby"
	if err := dhts[1].Add(ctx, key, []byte("alice"), time.Hour); err != nil {
		log.Fatal(err)
	}
	if err := dhts[2].Add(ctx, key, []byte("bob"), 0); err != nil { // 0: the default TTL
		log.Fatal(err)
	}

	rs, err := dhts[0].Get(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	// Get sorts by owner, then value; owners are random IDs here, so sort by
	// value for a stable output.
	slices.SortFunc(rs, func(a, b dht.Record) int { return slices.Compare(a.Value, b.Value) })
	for _, r := range rs {
		fmt.Printf("%s: by node 1: %v, by node 2: %v\n", r.Value, r.Owner == nodes[1].ID(), r.Owner == nodes[2].ID())
	}
	// Output:
	// alice: by node 1: true, by node 2: false
	// bob: by node 1: false, by node 2: true
}

// A node watches a key; another node adds a value under it, and the watcher
// hears of it once, however many replicas report it.
func ExampleDHT_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // making identities takes a while (their work proof)
	defer cancel()
	var (
		nodes []*p2psock.Node
		dhts  []*dht.DHT
	)
	for i := range 2 {
		cfg := p2psock.Config{ListenAddr: "127.0.0.1:0"}
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].UDPAddr().String()}
			cfg.JoinOnly = true
		}
		n, err := p2psock.NewNode(cfg)
		if err != nil {
			log.Fatal(err)
		}
		defer n.Close()
		d, err := dht.New(n, dht.Config{})
		if err != nil {
			log.Fatal(err)
		}
		defer d.Close()
		if err := n.Bind(ctx); err != nil {
			log.Fatal(err)
		}
		nodes, dhts = append(nodes, n), append(dhts, d)
	}

	events, err := dhts[0].Watch(ctx, "room:lobby") // returns once the replicas registered the watch
	if err != nil {
		log.Fatal(err)
	}
	if err := dhts[1].Add(ctx, "room:lobby", []byte("carol"), time.Minute); err != nil {
		log.Fatal(err)
	}
	ev := <-events
	fmt.Printf("%v %s (owner is node 1: %v)\n", ev.Type, ev.Record.Value, ev.Record.Owner == nodes[1].ID())
	// Output: added carol (owner is node 1: true)
}
