package main

// The HTTP parts: a server that serves on a Node, and a client that dials
// nodes by ID.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

// connKey is the context key under which the server keeps each request's
// stream (see ConnContext below).
type connKey struct{}

// newServer returns an http.Server for a node: srv.Serve(node) serves on it,
// since a Node is a net.Listener whose Accept returns the streams peers open
// with Connect. Requests are logged to log.
func newServer(self p2psock.ID, log io.Writer) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, time.Now().Format(time.RFC3339))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		// r.RemoteAddr is the text form of the client's ID (its *p2psock.Addr),
		// which the client proved in the TLS handshake: it can be trusted to
		// decide who may see what, with no login.
		client, err := p2psock.ParseID(r.RemoteAddr)
		if err != nil {
			http.Error(w, "not a p2psock client", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "Hello, %s!\n", client)
		fmt.Fprintf(w, "You asked for %s from %s.\n", r.URL.Path, self)
		// The stream itself, kept by ConnContext, tells how the bytes travel.
		if c, ok := r.Context().Value(connKey{}).(*p2psock.Conn); ok {
			p := c.Path()
			how := "a direct path"
			if p.Relayed {
				how = "a TURN relay"
			}
			fmt.Fprintf(w, "This page came over a p2psock stream on %s (round trip %v).\n", how, p.RTT.Round(time.Microsecond))
		}
		fmt.Fprintln(w, "Try /time too.")
	})
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(log, "%s %s from %s\n", r.Method, r.URL.Path, r.RemoteAddr)
		mux.ServeHTTP(w, r)
	})
	return &http.Server{
		Handler: logged,
		// Keep each connection (a *p2psock.Conn from the node's Accept) in
		// its requests' context.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
}

// newClient returns an http.Client that reaches servers by node ID: a URL
// http://<ID>/path makes the transport dial "<ID>:80", and DialContext opens
// a stream to that ID with Connect. The transport keeps the stream for
// further requests, like any HTTP/1.1 keep-alive connection.
func newClient(n *p2psock.Node) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			id, err := p2psock.ParseID(host)
			if err != nil {
				return nil, fmt.Errorf("%q is not a node ID: %w", host, err)
			}
			c, err := n.Connect(ctx, id)
			if err != nil {
				return nil, err // not c: a nil *Conn in a net.Conn is not nil
			}
			return c, nil
		},
	}}
}
