package p2psock

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// One node serves HTTP on a service listener and an echo protocol on its
// default Accept, side by side; a peer uses both over one QUIC connection.
func TestServiceStreamsHTTP(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	l, err := a.Service("web").Listen()
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "web: "+r.URL.Path+" from "+r.RemoteAddr)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		srv.Close()
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	}()
	echoed := make(chan error, 1)
	go func() { // the default service: one line echoed back
		c, err := a.AcceptContext(ctx)
		if err != nil {
			echoed <- err
			return
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			_, err = io.WriteString(c, "echo: "+line)
		}
		echoed <- err
	}()

	var webConn *Conn
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := b.Service("web").Dial(ctx, a.ID())
		if err == nil {
			webConn = c
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+a.ID().String()+"/hello", nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, "web: /hello from "+b.ID().String(), string(body))

	c, err := b.Connect(ctx, a.ID())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "hi\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "echo: hi\n", line)
	require.NoError(t, <-echoed)

	require.NotNil(t, webConn)
	require.Equal(t, webConn.Path().Local.String(), c.Path().Local.String(), "one QUIC connection")
	require.Equal(t, webConn.Path().Remote.String(), c.Path().Remote.String(), "one QUIC connection")
	require.Equal(t, 1, b.Info().Streams.Conns)
}

// A stream to a service the peer does not listen to fails at once with
// ErrNoService, long before its deadline, and is counted; the peer's other
// services and its default streams are unaffected.
func TestServiceDialNoService(t *testing.T) {
	tn := newLoopbackNet(t, 2, Config{})
	a, b := tn.nodes[0], tn.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := b.Service("missing").Dial(ctx, a.ID())
	require.ErrorIs(t, err, ErrNoService)
	a.Service("quiet") // offered, but without a listener
	_, err = b.Service("quiet").Dial(ctx, a.ID())
	require.ErrorIs(t, err, ErrNoService)

	chat := a.Service("chat")
	l, err := chat.Listen()
	require.NoError(t, err)
	_, err = chat.Listen()
	require.ErrorIs(t, err, ErrInUse)
	c, err := b.Service("chat").Dial(ctx, a.ID())
	require.NoError(t, err)
	c.Close()
	ac, err := l.AcceptContext(ctx)
	require.NoError(t, err)
	ac.Close()

	accepting := make(chan error, 1)
	go func() { _, err := l.Accept(); accepting <- err }()
	require.NoError(t, l.Close())
	require.ErrorIs(t, <-accepting, net.ErrClosed, "Close unblocks a pending Accept")
	_, err = b.Service("chat").Dial(ctx, a.ID())
	require.ErrorIs(t, err, ErrNoService, "a closed listener takes no more streams")
	var oe *net.OpError
	require.True(t, errors.As(err, &oe))

	require.NoError(t, ctx.Err(), "every failure came before the deadline")
	require.Equal(t, uint64(3), a.Info().Streams.NoService)

	// The default service still takes streams on the same connection.
	ca, cb := connectPair(t, ctx, b, a)
	ca.Close()
	cb.Close()
}

// Streams of a named service pass the net.Conn conformance suite.
func TestServiceStreamNettest(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[1], tn.nodes[2]
	l, err := b.Service("svc").Listen()
	require.NoError(t, err)
	defer l.Close()
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c1, err := a.Service("svc").Dial(ctx, b.ID())
		if err != nil {
			return nil, nil, nil, err
		}
		c2, err := l.AcceptContext(ctx)
		if err != nil {
			c1.Close()
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}
