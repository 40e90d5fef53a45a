package p2psock

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// Two services on one node are reached each by its name, by ID and by key,
// apart from each other and from the node's default messages.
func TestServiceMessages(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[0], tn.nodes[1]
	chat, files := a.Service("chat"), a.Service("files")
	require.Same(t, chat, a.Service("chat"))
	bchat, bfiles := b.Service("chat"), b.Service("files")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	require.NoError(t, bchat.SendTo(ctx, []byte("to chat"), a.ID()))
	require.NoError(t, bfiles.SendTo(ctx, []byte("to files"), a.ID()))
	require.NoError(t, bchat.SendToKey(ctx, []byte("chat by key"), a.ID().Key()))
	m, err := chat.RecvFrom(ctx)
	require.NoError(t, err)
	require.Equal(t, "to chat", string(m.Data))
	require.Equal(t, b.ID(), m.From)
	m, err = chat.RecvFrom(ctx)
	require.NoError(t, err)
	require.Equal(t, "chat by key", string(m.Data))
	require.True(t, m.ByKey)
	m, err = files.RecvFrom(ctx)
	require.NoError(t, err)
	require.Equal(t, "to files", string(m.Data))

	// The default service is the Node's own.
	require.NoError(t, b.Service("").SendTo(ctx, []byte("default"), a.ID()))
	r := tn.expect([]byte("default"))
	require.Equal(t, a.ID(), r.at)
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	_, err = chat.RecvFrom(short)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the default message did not reach a named service")
}

// Messages, calls and datagrams to a service the peer does not offer (or
// to a part of it not set up) fail at once with ErrNoService, long before
// their deadline.
func TestServiceUnknownFailsFast(t *testing.T) {
	tn := newLoopbackNet(t, 2, Config{})
	a, b := tn.nodes[0], tn.nodes[1]
	a.Service("offered") // no handler, no packet conn
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	missing := b.Service("missing")
	offered := b.Service("offered")

	err := missing.SendTo(ctx, []byte("x"), a.ID())
	require.ErrorIs(t, err, ErrNoService)
	_, err = missing.Call(ctx, a.ID(), []byte("x"))
	require.ErrorIs(t, err, ErrNoService)
	_, _, err = missing.CallKey(ctx, a.ID().Key(), []byte("x"))
	require.ErrorIs(t, err, ErrNoService)
	_, err = offered.Call(ctx, a.ID(), []byte("x"))
	require.ErrorIs(t, err, ErrNoService, "a service without a handler serves no calls")
	pc, err := offered.ListenPacket()
	require.NoError(t, err)
	defer pc.Close()
	_, err = pc.WriteTo([]byte("x"), &Addr{a.ID()})
	require.ErrorIs(t, err, ErrNoService, "a service without a packet conn takes no datagrams")
	require.NoError(t, ctx.Err(), "every failure came before the deadline")
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, uint64(5), a.Info().Services.NoService)

	// A closed service is no longer offered.
	chat := a.Service("chat")
	require.NoError(t, b.Service("chat").SendTo(ctx, []byte("x"), a.ID()))
	require.NoError(t, chat.Close())
	_, err = chat.RecvFrom(ctx)
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, b.Service("chat").SendTo(ctx, []byte("x"), a.ID()), ErrNoService)
}

// Calls by ID and by key get the handler's reply; its errors and panics
// come back as *CallError and the node keeps serving; replies of
// MaxMessageSize bytes fit.
func TestServiceCall(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[0], tn.nodes[1]
	echo := a.Service("echo")
	echo.Handle(func(ctx context.Context, req Message) ([]byte, error) {
		if len(req.Data) == MaxMessageSize {
			return []byte("whole"), nil
		}
		switch string(req.Data) {
		case "fail":
			return nil, errors.New("no such thing")
		case "panic":
			panic("handler bug")
		case "big":
			big := make([]byte, MaxMessageSize)
			big[len(big)-1] = 7
			return big, nil
		case "too big":
			return make([]byte, MaxMessageSize+1), nil
		}
		return append([]byte(req.From.String()[:8]+":"), req.Data...), nil
	})
	bs := b.Service("echo")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	reply, err := bs.Call(ctx, a.ID(), []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, b.ID().String()[:8]+":hello", string(reply))

	reply, from, err := bs.CallKey(ctx, a.ID().Key(), []byte("by key"))
	require.NoError(t, err)
	require.Equal(t, a.ID(), from)
	require.Equal(t, b.ID().String()[:8]+":by key", string(reply))

	_, err = bs.Call(ctx, a.ID(), []byte("fail"))
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "no such thing", ce.Message)
	require.Equal(t, a.ID(), ce.Peer)
	require.Equal(t, "echo", ce.Service)

	_, err = bs.Call(ctx, a.ID(), []byte("panic"))
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Message, "handler bug")
	require.Equal(t, uint64(1), a.Info().Services.CallPanics)

	reply, err = bs.Call(ctx, a.ID(), []byte("after the panic"))
	require.NoError(t, err, "the node still serves")
	require.Equal(t, b.ID().String()[:8]+":after the panic", string(reply))

	reply, err = bs.Call(ctx, a.ID(), []byte("big"))
	require.NoError(t, err)
	require.Len(t, reply, MaxMessageSize)
	require.Equal(t, byte(7), reply[len(reply)-1])

	_, err = bs.Call(ctx, a.ID(), []byte("too big"))
	require.ErrorAs(t, err, &ce)

	reply, err = bs.Call(ctx, a.ID(), make([]byte, MaxMessageSize))
	require.NoError(t, err, "a request of MaxMessageSize bytes")
	require.Equal(t, "whole", string(reply))
	_, err = bs.Call(ctx, a.ID(), make([]byte, MaxMessageSize+1))
	require.ErrorIs(t, err, ErrMessageTooLarge)

	// A call to itself runs its own handler.
	reply, err = echo.Call(ctx, a.ID(), []byte("self"))
	require.NoError(t, err)
	require.Equal(t, a.ID().String()[:8]+":self", string(reply))
}

// Past Config.MaxCallHandlers running handlers, a call is refused at once
// with ErrBusy, and counted.
func TestServiceCallBound(t *testing.T) {
	tn := newLoopbackNet(t, 2, Config{MaxCallHandlers: 1})
	a, b := tn.nodes[0], tn.nodes[1]
	started, release := make(chan struct{}), make(chan struct{})
	a.Service("slow").Handle(func(ctx context.Context, req Message) ([]byte, error) {
		started <- struct{}{}
		<-release
		return []byte("done"), nil
	})
	bs := b.Service("slow")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		reply, err := bs.Call(ctx, a.ID(), []byte("1"))
		if err == nil && string(reply) != "done" {
			err = errors.New("wrong reply " + string(reply))
		}
		first <- err
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the first call's handler did not start")
	}
	_, err := bs.Call(ctx, a.ID(), []byte("2"))
	require.ErrorIs(t, err, ErrBusy)
	require.Equal(t, uint64(1), a.Info().Services.CallsBusy)
	close(release)
	require.NoError(t, <-first)
}

// A service's broadcast reaches the service on every node that offers it,
// the sender's included, passes through a node that does not (counted
// there), and never reaches the nodes' default RecvFrom.
func TestServiceBroadcast(t *testing.T) {
	tn := newLoopbackNet(t, 5, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var news []*Service
	for _, nd := range tn.nodes[:4] {
		news = append(news, nd.Service("news"))
	}
	other := tn.nodes[4]
	tn.nodes[0].Service("weather") // another service gets nothing

	require.NoError(t, news[1].Broadcast(ctx, []byte("headline")))
	for i, s := range news {
		m, err := s.RecvFrom(ctx)
		require.NoError(t, err, "node %d", i)
		require.Equal(t, "headline", string(m.Data))
		require.True(t, m.Broadcast)
		require.Equal(t, tn.nodes[1].ID(), m.From)
	}
	testnet.Eventually(t, 10*time.Second, "the node without the service to pass the broadcast on", func() bool {
		return other.Info().Services.OtherBroadcasts == 1
	})

	// The default service's broadcasts still reach RecvFrom, and no
	// "headline" came there before them.
	require.NoError(t, tn.nodes[2].Broadcast(ctx, []byte("marker")))
	seen := map[ID]bool{}
	for len(seen) < len(tn.nodes) {
		r := tn.expectFunc(func(r received) bool {
			require.NotEqual(t, "headline", string(r.msg.Data), "a service broadcast reached the default queue")
			return string(r.msg.Data) == "marker"
		})
		seen[r.at] = true
	}
	require.ErrorIs(t, tn.nodes[0].Service("weather").Broadcast(ctx, make([]byte, 2*MaxMessageSize)), ErrMessageTooLarge)
}
