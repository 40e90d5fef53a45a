package streams

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// The engine's tests run engines on overlay nodes of the project's harness
// (package testnet, ovnet): real UDP sockets on loopback, real ICE and QUIC.

// node is an overlay node with its engine.
type node struct {
	*ovnet.Node
	eng *Engine
}

// newNet starts n nodes on loopback, each joined through a random earlier
// one, with engines configured by cfg (the identity is filled in), after
// registering the leak check. The nodes close at the end of the test.
func newNet(t *testing.T, n int, cfg func(i int, c *Config)) []*node {
	return newNetAt(t, n, testnet.LoopbackAddr, cfg)
}

// newNetAt is newNet with node i listening on addr(i).
func newNetAt(t *testing.T, n int, addr func(i int) string, cfg func(i int, c *Config)) []*node {
	t.Helper()
	testnet.CheckLeaks(t)
	start := func(i int, entries []string) (*node, error) {
		return startNodeAt(t, i, addr(i), entries, cfg)
	}
	return testnet.Start(t, n, start, func(nd *node) string { return nd.Addr() }).Nodes
}

// startNodeAt opens an overlay node with an engine listening on addr and
// joins it through entries.
func startNodeAt(t testing.TB, i int, addr string, entries []string, cfg func(i int, c *Config)) (*node, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	c := Config{Identity: priv, Logger: testnet.Logger(t)}
	if cfg != nil {
		cfg(i, &c)
	}
	var eng *Engine
	nd, err := ovnet.Open(overlay.Config{Identity: priv, Logger: testnet.Logger(t)}, addr, nil,
		func(nd *ovnet.Node) error {
			e, err := New(c, nd.Overlay, nd.Sock)
			if err != nil {
				return err
			}
			eng = e
			nd.Closers = append(nd.Closers, func() error { e.Close(); return nil })
			return nil
		})
	if err != nil {
		return nil, err
	}
	if err := eng.Start(); err != nil {
		nd.Close()
		return nil, err
	}
	if err := nd.Bind(entries); err != nil {
		return nil, err
	}
	return &node{Node: nd, eng: eng}, nil
}

// pair opens a stream from a to b and returns both ends; a failure fails
// the test.
func pair(t testing.TB, ctx context.Context, a, b *node) (*Stream, *Stream) {
	t.Helper()
	type res struct {
		s   *Stream
		err error
	}
	acc := make(chan res, 1)
	go func() {
		s, err := b.eng.Accept(ctx)
		acc <- res{s, err}
	}()
	sa, err := a.eng.Dial(ctx, b.ID())
	require.NoError(t, err)
	r := <-acc
	require.NoError(t, r.err)
	return sa, r.s
}

// echoAll accepts every stream of nd and echoes it, until ctx ends.
func echoAll(ctx context.Context, nd *node) {
	go func() {
		for {
			s, err := nd.eng.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				io.Copy(s, s)
				s.Close()
			}()
		}
	}()
}
