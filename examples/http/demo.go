package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

// demoDifficulty is the identity work (p2psock.Config.Difficulty) of the
// demo's own network: 8 bits, about a millisecond an identity, where the
// default (about 0.6 s of a core, against Sybil attacks on an open
// network) would make the demo wait for its participants' identities.
const demoDifficulty = 8

// runDemo starts a server node and a client node on 127.0.0.1, in a network
// of their own (explicit Bootstrap, no local discovery), and fetches two
// pages from the server by its ID.
func runDemo(ctx context.Context, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	const network = "p2psock-http-demo"

	server, err := p2psock.NewNode(p2psock.Config{ListenAddr: "127.0.0.1:0", Network: network, Difficulty: demoDifficulty})
	if err != nil {
		return err
	}
	defer server.Close()
	if err := server.Bind(ctx); err != nil { // the first node starts the network
		return err
	}
	client, err := p2psock.NewNode(p2psock.Config{
		ListenAddr: "127.0.0.1:0",
		Network:    network,
		Difficulty: demoDifficulty,
		Bootstrap:  []string{server.UDPAddr().String()},
		JoinOnly:   true,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Bind(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "server %s\nclient %s\n", server.ID(), client.ID())

	srv := newServer(server.ID(), io.Discard)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(server); !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stdout, "serve:", err)
		}
	})
	defer wg.Wait()
	defer srv.Close()

	hc := newClient(client)
	defer hc.CloseIdleConnections()
	for _, path := range []string{"/hello", "/time"} {
		url := "http://" + server.ID().String() + path
		fmt.Fprintf(stdout, "\nGET %s\n", url)
		if err := fetch(ctx, hc, url, stdout); err != nil {
			return err
		}
	}
	return nil
}
