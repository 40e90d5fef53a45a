package p2psock

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// TestLoopbackConnNettest runs the net.Conn conformance suite on streams
// between two loopback nodes.
func TestLoopbackConnNettest(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[1], tn.nodes[2]
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c1, c2, err := openPair(ctx, a, b)
		if err != nil {
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestLoopbackConnCloseSemantics: CloseWrite half-closes (the peer reads
// EOF, the stream still reads); Close makes the peer read EOF after the data
// and makes local calls fail with net.ErrClosed; deadlines time out with a
// net.Error whose Timeout is true.
func TestLoopbackConnCloseSemantics(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	ca, cb := connectPair(t, ctx, a, b)
	_, err := ca.Write([]byte("request"))
	require.NoError(t, err)
	require.NoError(t, ca.CloseWrite())
	got, err := io.ReadAll(cb)
	require.NoError(t, err)
	require.Equal(t, "request", string(got))
	_, err = cb.Write([]byte("reply"))
	require.NoError(t, err)
	require.NoError(t, cb.Close())
	got, err = io.ReadAll(ca)
	require.NoError(t, err, "the half-closed side still reads")
	require.Equal(t, "reply", string(got))
	_, err = cb.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = cb.Write([]byte("x"))
	require.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, cb.Close(), "Close is idempotent")

	ca, cb = connectPair(t, ctx, a, b)
	require.NoError(t, ca.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = ca.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, ca.SetReadDeadline(time.Time{}))
	_, err = cb.Write([]byte("late"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(ca, buf)
	require.NoError(t, err, "a stream works again after a timeout")
}

// TestLoopbackNodeCloseFailsCalls: after Node.Close, Connect, Accept and
// the node's open streams fail with net.ErrClosed, the peer's streams end,
// and no goroutine of the node is left.
func TestLoopbackNodeCloseFailsCalls(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{}) // registers the leak check
	a, b := tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, cb := connectPair(t, ctx, a, b)

	acceptErr := make(chan error, 1)
	go func() { _, err := a.Accept(); acceptErr <- err }()
	readErr := make(chan error, 1)
	go func() { _, err := ca.Read(make([]byte, 1)); readErr <- err }()

	require.NoError(t, a.Close())
	require.ErrorIs(t, <-acceptErr, net.ErrClosed)
	require.ErrorIs(t, <-readErr, net.ErrClosed)
	_, err := ca.Write([]byte("x"))
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = a.Connect(ctx, b.ID())
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = a.AcceptContext(ctx)
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = cb.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the peer's stream ends cleanly when the node closes")
}

// TestLoopbackHTTPOverNode: http.Serve on a Node answers a client whose
// transport dials with Connect.
func TestLoopbackHTTPOverNode(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	server, client := tn.nodes[1], tn.nodes[2]
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + r.RemoteAddr))
	})}
	go srv.Serve(server)
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			id, err := ParseID(strings.TrimSuffix(addr, ":80"))
			if err != nil {
				return nil, err
			}
			return client.Connect(ctx, id)
		},
	}}
	resp, err := hc.Get("http://" + server.ID().String() + "/")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, "hello "+client.ID().String(), string(body))
}

// TestLoopbackNodeCloseDeliversWritten: a node that writes to a stream and
// closes at once (a program that exits) still gets every byte to the peer,
// which reads them, then EOF, after the node is gone; and the connection is
// not the peer's current one any more (a later Connect would set up a new
// one).
func TestLoopbackNodeCloseDeliversWritten(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, cb := connectPair(t, ctx, a, b)
	data := make([]byte, 4<<20)
	rand.Read(data)
	type result struct {
		b   []byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(cb)
		read <- result{b, err}
	}()
	_, err := ca.Write(data) // returns once the tail is queued, not delivered
	require.NoError(t, err)
	require.NoError(t, a.Close())
	r := <-read
	require.NoError(t, r.err)
	require.True(t, bytes.Equal(data, r.b), "got %d of %d bytes", len(r.b), len(data))
	require.Equal(t, 0, b.Info().Streams.Conns, "a leaving peer's connection takes no new stream")
	require.NoError(t, cb.Close())
}
