package p2psock_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"

	"github.com/p2psock/p2psock/p2psock"
)

// twoNodes starts a network on this machine and joins a second node to it.
func twoNodes(ctx context.Context) (a, b *p2psock.Node) {
	a, err := p2psock.NewNode(p2psock.Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	if err := a.Bind(ctx); err != nil {
		log.Fatal(err)
	}
	b, err = p2psock.NewNode(p2psock.Config{
		ListenAddr: "127.0.0.1:0",
		Bootstrap:  []string{a.UDPAddr().String()},
		JoinOnly:   true,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Bind(ctx); err != nil {
		log.Fatal(err)
	}
	return a, b
}

// A stream to a peer named by its ID: b connects, a accepts and echoes.
func ExampleNode_Connect() {
	ctx := context.Background()
	a, b := twoNodes(ctx)
	defer a.Close()
	defer b.Close()

	go func() { // a: echo every stream back
		for {
			c, err := a.Accept()
			if err != nil {
				return // a closed
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()

	c, err := b.Connect(ctx, a.ID())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hello over QUIC")
	c.CloseWrite() // a reads EOF, so its io.Copy returns
	reply, err := io.ReadAll(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (peer is a: %v, relayed: %v)\n", reply,
		c.RemoteAddr().(*p2psock.Addr).ID == a.ID(), c.Path().Relayed)
	// Output: hello over QUIC (peer is a: true, relayed: false)
}

// A Node is a net.Listener: http.Serve serves HTTP on it, and a client
// reaches the server by its ID with a transport that dials with Connect.
func ExampleNode_Accept_http() {
	ctx := context.Background()
	server, client := twoNodes(ctx)
	defer server.Close()
	defer client.Close()

	go http.Serve(server, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// r.RemoteAddr is the client's ID, which it proved in the handshake.
		fmt.Fprintf(w, "hello, %s", r.RemoteAddr[:8])
	}))

	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			id, err := p2psock.ParseID(host)
			if err != nil {
				return nil, err
			}
			return client.Connect(ctx, id)
		},
	}}
	resp, err := hc.Get("http://" + server.ID().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(string(body), "hello, "+client.ID().String()[:8]))
	// Output: true
}
