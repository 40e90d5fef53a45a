package p2psock_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	"github.com/p2psock/p2psock/p2psock"
)

// A light client joins a network through a full node, which becomes its
// proxy: the client is reached by its ID, yet is in no routing table.
func ExampleConfig_client() {
	ctx := context.Background()
	full, err := p2psock.NewNode(p2psock.Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer full.Close()
	if err := full.Bind(ctx); err != nil { // no entry point: a new network
		log.Fatal(err)
	}

	client, err := p2psock.NewNode(p2psock.Config{
		ListenAddr: "127.0.0.1:0",
		Bootstrap:  []string{full.UDPAddr().String()},
		Client:     true, // a client needs an entry point: it cannot start a network
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.Bind(ctx); err != nil {
		log.Fatal(err)
	}

	if err := full.SendTo(ctx, []byte("hello, client"), client.ID()); err != nil {
		log.Fatal(err)
	}
	m, err := client.RecvFrom(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", m.Data)
	fmt.Println("proxied by the full node:", slices.Contains(client.Info().Proxies, full.ID()))
	fmt.Println("in the full node's routing table:", slices.Contains(full.Contacts(), client.ID()))
	// Output:
	// hello, client
	// proxied by the full node: true
	// in the full node's routing table: false
}
