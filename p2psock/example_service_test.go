package p2psock_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"

	"github.com/p2psock/p2psock/p2psock"
)

// Two named services on one node, each reached by its name: messages to
// "chat", calls to "upper".
func ExampleNode_Service() {
	ctx := context.Background()
	a, b := twoNodes(ctx)
	defer a.Close()
	defer b.Close()

	chat := a.Service("chat")
	a.Service("upper").Handle(func(ctx context.Context, req p2psock.Message) ([]byte, error) {
		return []byte(strings.ToUpper(string(req.Data))), nil
	})

	if err := b.Service("chat").SendTo(ctx, []byte("hello, chat"), a.ID()); err != nil {
		log.Fatal(err)
	}
	m, err := chat.RecvFrom(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(m.Data))

	reply, err := b.Service("upper").Call(ctx, a.ID(), []byte("hello, upper"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	// Output:
	// hello, chat
	// HELLO, UPPER
}

// A call's handler error comes back to the caller as a *CallError.
func ExampleService_Call() {
	ctx := context.Background()
	a, b := twoNodes(ctx)
	defer a.Close()
	defer b.Close()

	a.Service("kv").Handle(func(ctx context.Context, req p2psock.Message) ([]byte, error) {
		return nil, fmt.Errorf("no key %q", req.Data)
	})
	_, err := b.Service("kv").Call(ctx, a.ID(), []byte("k"))
	var ce *p2psock.CallError
	fmt.Println(errors.As(err, &ce), ce.Message)

	_, err = b.Service("missing").Call(ctx, a.ID(), []byte("k"))
	fmt.Println(errors.Is(err, p2psock.ErrNoService))
	// Output:
	// true no key "k"
	// true
}

// Datagrams by node ID on a service's net.PacketConn.
func ExampleService_ListenPacket() {
	ctx := context.Background()
	a, b := twoNodes(ctx)
	defer a.Close()
	defer b.Close()

	pa, err := a.Service("dgram").ListenPacket()
	if err != nil {
		log.Fatal(err)
	}
	defer pa.Close()
	pb, err := b.Service("dgram").ListenPacket()
	if err != nil {
		log.Fatal(err)
	}
	defer pb.Close()

	if _, err := pb.WriteTo([]byte("ping"), &p2psock.Addr{ID: a.ID()}); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := pa.ReadFrom(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf[:n]), from.String() == b.ID().String())
	// Output: ping true
}

// HTTP served on a service's stream listener; a peer reaches it with
// Service.Dial, on the same QUIC connection as its other streams to that
// node.
func ExampleService_Listen() {
	ctx := context.Background()
	a, b := twoNodes(ctx)
	defer a.Close()
	defer b.Close()

	l, err := a.Service("web").Listen()
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.URL.Path[1:])
	})}
	go srv.Serve(l)
	defer srv.Close()

	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return b.Service("web").Dial(ctx, a.ID())
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + a.ID().String() + "/web")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	_, err = b.Service("ftp").Dial(ctx, a.ID())
	fmt.Println(errors.Is(err, p2psock.ErrNoService))
	// Output:
	// hello, web
	// true
}
