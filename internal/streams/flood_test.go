package streams

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Floods from peers and strangers (docs/SECURITY.md, "Streams and
// connections"): what they cost the node is bounded, and honest peers still
// connect.

// floodStreams opens up to n streams on qc, writing the version byte on
// each and never reading, until the peer stops granting streams.
func floodStreams(ctx context.Context, qc *quic.Conn, n int) int {
	opened := 0
	for opened < n {
		octx, cancel := context.WithTimeout(ctx, time.Second)
		qs, err := qc.OpenStreamSync(octx)
		cancel()
		if err != nil {
			break
		}
		if _, err := qs.Write([]byte{streamVersion}); err != nil {
			break
		}
		opened++
	}
	return opened
}

// TestLoopbackStreamFloodBounded: a peer opens thousands of streams that the
// node's application never accepts. They cost no goroutine, at most
// AcceptQueuePerPeer of them wait (the rest are refused and counted), those
// that wait are reset after UnacceptedTimeout, and meanwhile another peer
// connects and exchanges data.
func TestLoopbackStreamFloodBounded(t *testing.T) {
	const unaccepted = 2 * time.Second
	nodes := newNet(t, 3, func(_ int, c *Config) { c.UnacceptedTimeout = unaccepted })
	b, a, c := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sa, sb := pair(t, ctx, a, b) // a's connection to b is up
	sa.Close()
	sb.Close()
	before := runtime.NumGoroutine()

	opened := floodStreams(ctx, sa.pc.qc, 4096)
	require.Greater(t, opened, 1024, "the peer opened streams")
	perPeer := b.eng.cfg.AcceptQueuePerPeer
	testnet.Eventually(t, 20*time.Second, "the streams past the peer's share to be refused", func() bool {
		return b.eng.Counters().StreamsRefused >= uint64(opened-perPeer)
	})
	require.LessOrEqual(t, b.eng.Counters().Waiting, perPeer)
	grown := runtime.NumGoroutine() - before
	require.Less(t, grown, 50, "goroutines grew by %d for %d streams", grown, opened)

	testnet.Eventually(t, 10*unaccepted, "the waiting streams to be reset", func() bool {
		c := b.eng.Counters()
		return c.Waiting == 0 && c.Unaccepted >= uint64(perPeer)
	})

	// The flood goes on; an honest peer connects and is served.
	floodStreams(ctx, sa.pc.qc, 4096)
	sc, err := c.eng.Dial(ctx, b.ID())
	require.NoError(t, err)
	defer sc.Close()
	_, err = sc.Write([]byte("hello"))
	require.NoError(t, err)
	for {
		s, err := b.eng.Accept(ctx)
		require.NoError(t, err)
		if s.Peer() != c.ID() {
			s.Close() // the application turns the flood away
			continue
		}
		got := make([]byte, 5)
		_, err = io.ReadFull(s, got)
		require.NoError(t, err)
		require.Equal(t, "hello", string(got))
		s.Close()
		break
	}
}

// attacker is a QUIC client on its own socket that dials with a fresh
// identity each time.
type attacker struct {
	tr *quic.Transport
}

func newAttacker(t *testing.T, addr string) *attacker {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	require.NoError(t, err)
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() {
		tr.Close()
		pc.Close()
	})
	return &attacker{tr: tr}
}

// dial connects to nd as a fresh identity.
func (at *attacker) dial(ctx context.Context, nd *node) (*quic.Conn, error) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := certificate(priv)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return at.tr.Dial(dctx, nd.Sock.LocalAddr(), clientTLS(cert, nd.ID()), QUICConfig())
}

// TestLoopbackConnFloodOneIP: 500 connections from 500 fresh identities on
// one IP: at most MaxConnsPerIP are admitted, the rest are refused and
// counted, and a peer on another IP still connects.
func TestLoopbackConnFloodOneIP(t *testing.T) {
	nodes := newNetAt(t, 2, testnet.DistinctLoopbackAddr, nil)
	b, c := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	at := newAttacker(t, "127.0.0.1:0")
	var admitted atomic.Int64
	var mu sync.Mutex
	var conns []*quic.Conn
	var wg sync.WaitGroup
	next := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			for range next {
				qc, err := at.dial(ctx, b)
				if err != nil {
					continue
				}
				admitted.Add(1)
				mu.Lock()
				conns = append(conns, qc)
				mu.Unlock()
			}
		})
	}
	for range 500 {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, qc := range conns {
			qc.CloseWithError(0, "")
		}
	}()
	perIP := b.eng.cfg.MaxConnsPerIP
	require.LessOrEqual(t, int(admitted.Load()), perIP, "connections admitted from one IP")
	require.GreaterOrEqual(t, b.eng.Counters().ConnsPerIP, uint64(500-perIP-20), "refusals counted")
	require.Positive(t, b.eng.Counters().Retries, "strangers got a Retry first")

	sc, sb := pair(t, ctx, c, b)
	echoed(t, sc, sb)
}

// echoed checks that data written on a reaches b.
func echoed(t *testing.T, a, b *Stream) {
	t.Helper()
	_, err := a.Write([]byte("ping"))
	require.NoError(t, err)
	got := make([]byte, 4)
	require.NoError(t, b.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadFull(b, got)
	require.NoError(t, err)
	require.Equal(t, "ping", string(got))
}

// TestLoopbackConnBudgetKeepsHistory: when MaxConns connections are up, a
// newcomer takes the place of a peer without history, never of a peer
// whose streams the application accepted.
func TestLoopbackConnBudgetKeepsHistory(t *testing.T) {
	const maxConns = 3
	nodes := newNetAt(t, 2, testnet.DistinctLoopbackAddr, func(_ int, c *Config) { c.MaxConns = maxConns })
	b, c := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc, sb := pair(t, ctx, c, b) // b accepted c's stream: c has history
	var conns []*quic.Conn
	defer func() {
		for _, qc := range conns {
			qc.CloseWithError(0, "")
		}
	}()
	for i := range 6 {
		at := newAttacker(t, testnet.DistinctLoopbackAddr(100+i))
		qc, err := at.dial(ctx, b)
		require.NoError(t, err, "newcomer %d", i)
		conns = append(conns, qc)
		// The dialler's handshake ends before b has the connection among its
		// peers (only those can be evicted): wait for it, as a newcomer
		// arriving a round trip later would.
		testnet.Eventually(t, 10*time.Second, "b to take the newcomer", func() bool {
			b.eng.mu.Lock()
			defer b.eng.mu.Unlock()
			return len(b.eng.peers) == min(i+2, maxConns)
		})
	}
	testnet.Eventually(t, 10*time.Second, "newcomers to take the place of peers without history", func() bool {
		return b.eng.Counters().ConnsEvicted >= 6-(maxConns-1)
	})
	require.NoError(t, sc.pc.qc.Context().Err(), "the peer with history kept its connection")
	echoed(t, sc, sb)
	s2, err := c.eng.Dial(ctx, b.ID())
	require.NoError(t, err)
	require.Same(t, sc.pc, s2.pc, "on the same connection")
	s2.Close()
}

// retrySpy records the first datagram its socket receives.
type retrySpy struct {
	net.PacketConn
	once  sync.Once
	first chan []byte
}

func (r *retrySpy) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := r.PacketConn.ReadFrom(b)
	if err == nil {
		r.once.Do(func() { r.first <- append([]byte(nil), b[:n]...) })
	}
	return n, addr, err
}

// SetReadBuffer and SetWriteBuffer keep quic-go from warning about a socket
// it cannot tune.
func (r *retrySpy) SetReadBuffer(int) error  { return nil }
func (r *retrySpy) SetWriteBuffer(int) error { return nil }

// TestLoopbackRetryForStrangers: a QUIC client whose address no ICE session
// validated is answered with a Retry (RFC 9000 §8.1.2), smaller than its
// Initial, before the node keeps any state for it.
func TestLoopbackRetryForStrangers(t *testing.T) {
	b := newNet(t, 1, nil)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	spy := &retrySpy{PacketConn: pc, first: make(chan []byte, 1)}
	tr := &quic.Transport{Conn: spy}
	defer pc.Close()
	defer tr.Close()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := certificate(priv)
	require.NoError(t, err)
	qc, err := tr.Dial(ctx, b.Sock.LocalAddr(), clientTLS(cert, b.ID()), QUICConfig())
	require.NoError(t, err, "the client completes the handshake after the Retry")
	qc.CloseWithError(0, "")
	first := <-spy.first
	require.NotEmpty(t, first)
	const longHeader, typeBits, retry = 0x80, 0x30, 0x30 // QUIC v1 long header, type Retry
	require.Equal(t, byte(longHeader), first[0]&longHeader)
	require.Equal(t, byte(retry), first[0]&typeBits, "the first reply is a Retry")
	require.Less(t, len(first), 1200, "smaller than the client's Initial")
	require.Positive(t, b.eng.Counters().Retries)
}

// offerFrom hands nd's signalling service an offer from the identity from,
// as the overlay would after checking its signature, and returns the reply.
func offerFrom(t *testing.T, nd *node, from overlay.ID, cands []string) (wire.Signal, int) {
	t.Helper()
	var sid [8]byte
	rand.Read(sid[:])
	msg, err := wire.AppendSignal(nil, wire.Signal{Kind: wire.SignalOffer, Session: sid,
		Ufrag: "abcdefghijklmnop", Pwd: "abcdefghijklmnopqrstuvwxyz012345", Candidates: cands})
	require.NoError(t, err)
	reply, ok := nd.eng.handleSignal(overlay.Message{Data: msg, From: from, To: nd.ID().Key(), Service: wire.ServiceSignal})
	require.True(t, ok)
	sig, err := wire.ParseSignal(reply)
	require.NoError(t, err)
	return sig, len(msg)
}

func randomID() overlay.ID {
	var id overlay.ID
	rand.Read(id[:])
	return id
}

// victim is a UDP socket that never answers and counts what it receives.
type victim struct {
	pc    net.PacketConn
	bytes atomic.Int64
	done  chan struct{}
}

func newVictim(t *testing.T, addr string) *victim {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	require.NoError(t, err)
	v := &victim{pc: pc, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			v.bytes.Add(int64(n))
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-v.done
	})
	return v
}

// cand is a host candidate naming addr.
func cand(addr net.Addr) string {
	ua := addr.(*net.UDPAddr)
	return fmt.Sprintf("1020016950 1 udp 2130706431 %s %d typ host", ua.IP, ua.Port)
}

// TestLoopbackOfferFlood: 320 offers without candidates from 80 fresh
// identities take no ICE session, and 160 more that name an address that
// never answers cannot pin the incoming sessions: an honest peer connects to
// the node, and the node's own connects go out.
func TestLoopbackOfferFlood(t *testing.T) {
	nodes := newNet(t, 3, nil)
	b, a, c := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range 80 {
		from := randomID()
		for range 4 {
			sig, _ := offerFrom(t, b, from, nil)
			require.Equal(t, wire.SignalReject, sig.Kind)
			require.Equal(t, wire.RejectNoCandidates, sig.Reason)
		}
	}
	require.Zero(t, b.eng.Counters().Sessions)
	require.EqualValues(t, 320, b.eng.Counters().OffersEmpty)

	v := newVictim(t, testnet.DistinctLoopbackAddr(200))
	for range 40 {
		from := randomID()
		for range 4 {
			offerFrom(t, b, from, []string{cand(v.pc.LocalAddr())})
		}
	}
	require.LessOrEqual(t, b.eng.Counters().Sessions, maxIncomingSessions)

	sa, sb := pair(t, ctx, a, b)
	echoed(t, sa, sb)
	sb2, sc := pair(t, ctx, b, c)
	echoed(t, sb2, sc)
}

// TestLoopbackOfferAmplification: offers that name a third party's address
// make the node send it fewer bytes of ICE checks than the offers held,
// however many offers and identities.
func TestLoopbackOfferAmplification(t *testing.T) {
	b := newNet(t, 1, nil)[0]
	v := newVictim(t, testnet.DistinctLoopbackAddr(201))
	offered := 0
	for range 16 {
		sig, n := offerFrom(t, b, randomID(), []string{cand(v.pc.LocalAddr())})
		require.Equal(t, wire.SignalAnswer, sig.Kind)
		offered += n
	}
	testnet.Eventually(t, 30*time.Second, "the sessions to fail", func() bool { return b.eng.Counters().Sessions == 0 })
	got := v.bytes.Load()
	t.Logf("offers: %d bytes; sent to the address they named: %d bytes; checks held back: %d",
		offered, got, b.eng.Counters().ChecksThrottled)
	require.LessOrEqual(t, got, int64(offered))
	require.LessOrEqual(t, got, int64(600), "about two checks")
}
