package p2psock

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/stretchr/testify/require"
)

func TestLoopbackLargeMessages(t *testing.T) {
	tn := newLoopbackNet(t, 12, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := tn.nodes[1], tn.nodes[7]

	for _, size := range []int{0, 1, wire.MaxChunk, wire.MaxChunk + 1, 20000, MaxMessageSize} {
		data := make([]byte, size)
		rand.Read(data)
		data = append(data[:0:0], data...)
		require.NoError(t, a.SendTo(ctx, data, b.ID()), "size %d", size)
		r := tn.expectFunc(func(r received) bool { return r.msg.From == a.ID() && len(r.msg.Data) == size })
		require.Equal(t, b.ID(), r.at)
		require.Equal(t, data, r.msg.Data, "size %d arrived changed", size)
	}
	err := a.SendTo(ctx, make([]byte, MaxMessageSize+1), b.ID())
	require.ErrorIs(t, err, ErrMessageTooLarge)
	err = a.SendToKey(ctx, make([]byte, MaxMessageSize+1), KeyOf([]byte("k")))
	require.ErrorIs(t, err, ErrMessageTooLarge)
}

func TestLoopbackUnknownIDIsUnreachable(t *testing.T) {
	tn := newLoopbackNet(t, 10, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ghost, err := NewIdentity()
	require.NoError(t, err)
	err = tn.nodes[3].SendTo(ctx, []byte("anyone?"), ghost.ID())
	require.ErrorIs(t, err, ErrUnreachable)
	// The answer came from the network (a signed refusal), not from our deadline.
	require.NotErrorIs(t, err, context.DeadlineExceeded)
}

func TestLoopbackSendToSelf(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := tn.nodes[1]
	require.NoError(t, n.SendTo(ctx, []byte("me"), n.ID()))
	r := tn.expect([]byte("me"))
	require.Equal(t, n.ID(), r.at)
	require.Equal(t, n.ID(), r.msg.From)
	// A key equal to this node's ID is closest to this node.
	require.NoError(t, n.SendToKey(ctx, []byte("my key"), n.ID().Key()))
	r = tn.expect([]byte("my key"))
	require.Equal(t, n.ID(), r.at)
	require.True(t, r.msg.ByKey)
}

// After a quarter of the nodes close, routing by key is exact again within 30 s.
func TestLoopbackChurnQuarterLeaves(t *testing.T) {
	tn := newLoopbackNet(t, 40, Config{})
	for _, n := range tn.nodes[len(tn.nodes)-10:] {
		require.NoError(t, n.Close())
	}
	live := tn.nodes[:len(tn.nodes)-10]
	requireExactWithin(t, tn, live, "churn", 30*time.Second)
}

func TestLoopbackNetworksDoNotMix(t *testing.T) {
	alpha := newLoopbackNet(t, 2, Config{Network: "alpha"})
	n, err := NewNode(Config{ListenAddr: "127.0.0.1:0", Network: "beta", JoinOnly: true,
		Bootstrap: []string{alpha.nodes[0].UDPAddr().String()}})
	require.NoError(t, err)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = n.Bind(ctx)
	require.ErrorIs(t, err, ErrNoEntryPoint)
	require.Positive(t, alpha.nodes[0].Info().Counters.DroppedWrongNet)
	require.Equal(t, 1, alpha.nodes[0].Info().Contacts, "the beta node must not enter alpha's table")
}

func TestLoopbackJoinOnlyWithoutEntryPoint(t *testing.T) {
	// A port with nobody behind it.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := pc.LocalAddr().String()
	pc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, boot := range [][]string{nil, {dead}, {"no-such-host.invalid:1"}} {
		n, err := NewNode(Config{ListenAddr: "127.0.0.1:0", JoinOnly: true, Bootstrap: boot})
		require.NoError(t, err)
		err = n.Bind(ctx)
		require.ErrorIs(t, err, ErrNoEntryPoint, "bootstrap %v", boot)
		require.NoError(t, n.Close())
	}
	// Without JoinOnly the node starts a network of its own.
	n, err := NewNode(Config{ListenAddr: "127.0.0.1:0", Bootstrap: []string{dead}})
	require.NoError(t, err)
	defer n.Close()
	require.NoError(t, n.Bind(ctx))
	require.NoError(t, n.SendToKey(ctx, []byte("alone"), KeyOf([]byte("x"))))
	m, err := n.RecvFrom(ctx)
	require.NoError(t, err)
	require.Equal(t, "alone", string(m.Data))
}

func TestLoopbackCloseSemantics(t *testing.T) {
	before := runtime.NumGoroutine()
	tn := newLoopbackNet(t, 4, Config{})
	n := tn.nodes[2]
	ctx := context.Background()

	n2, err := NewNode(Config{ListenAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	require.ErrorIs(t, n2.SendTo(ctx, nil, n.ID()), ErrNotBound)
	recvErr := make(chan error, 1)
	go func() {
		_, err := n2.RecvFrom(ctx)
		recvErr <- err
	}()
	require.NoError(t, n2.Close())
	require.ErrorIs(t, <-recvErr, net.ErrClosed, "a pending RecvFrom must be released by Close")
	require.NoError(t, n2.Close(), "Close is idempotent")
	require.ErrorIs(t, n2.Bind(ctx), net.ErrClosed)
	require.ErrorIs(t, n2.SendTo(ctx, nil, n.ID()), net.ErrClosed)
	require.ErrorIs(t, n2.SendToKey(ctx, nil, Key{}), net.ErrClosed)
	_, err = n2.RecvFrom(ctx)
	require.ErrorIs(t, err, net.ErrClosed)

	// A closed node leaves: its contacts drop it at once.
	require.NoError(t, n.Close())
	require.Eventually(t, func() bool {
		for _, other := range tn.nodes {
			if other != n && slices.Contains(other.Contacts(), n.ID()) {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "a closed node stays in its contacts' tables")
	tn.close()
	requireNoGoroutineLeak(t, before)
}

// rawSender sends hand-made frames to a node from a plain UDP socket.
type rawSender struct {
	t    *testing.T
	pc   net.PacketConn
	to   net.Addr
	priv ed25519.PrivateKey
	id   [32]byte
	net  [8]byte
}

func newRawSender(t *testing.T, to *Node) *rawSender {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s := &rawSender{t: t, pc: pc, to: to.UDPAddr(), priv: priv, net: wire.NetworkTag(DefaultNetwork)}
	copy(s.id[:], priv.Public().(ed25519.PublicKey))
	return s
}

func (s *rawSender) send(b []byte) {
	_, err := s.pc.WriteTo(b, s.to)
	require.NoError(s.t, err)
}

// message builds a single-fragment route frame signed by signer.
func (s *rawSender) message(dest ID, payload []byte, ts time.Time, signer ed25519.PrivateKey) []byte {
	h := wire.MsgHeader{Kind: wire.KindData, Mode: wire.ModeID, Origin: s.id, Dest: dest, Timestamp: ts.UnixMilli(), Length: uint32(len(payload))}
	rand.Read(h.MsgID[:])
	r := wire.Route{FragCount: 1, Msg: h, Chunk: payload}
	copy(r.Sig[:], ed25519.Sign(signer, h.Signed(s.net, payload)))
	return r.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeRoute, Net: s.net, Sender: s.id}))
}

func TestLoopbackHostileInputIsDroppedAndCounted(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	target := tn.nodes[1]
	s := newRawSender(t, target)
	counters := func() Counters { return target.Info().Counters }
	eventually := func(what string, cond func(c Counters) bool) {
		t.Helper()
		require.Eventually(t, func() bool { return cond(counters()) }, 5*time.Second, 5*time.Millisecond, what)
	}

	// Garbage in the overlay's first-byte range.
	garbage := make([]byte, 100)
	rand.Read(garbage)
	garbage[0] = wire.TypeRoute
	s.send(garbage)
	eventually("malformed", func(c Counters) bool { return c.DroppedMalformed >= 1 })

	// A frame of another network.
	other := wire.NetworkTag("other")
	s.send(wire.Ping{Nonce: 1}.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypePing, Net: other, Sender: s.id})))
	eventually("wrong network", func(c Counters) bool { return c.DroppedWrongNet >= 1 })

	// Oversized.
	big := make([]byte, 1400)
	copy(big, wire.AppendHeader(nil, wire.Header{Type: wire.TypeRoute, Net: s.net, Sender: s.id}))
	s.send(big)
	eventually("oversized", func(c Counters) bool { return c.DroppedOversized >= 1 })

	// A message whose From is forged: signed by a key that is not the sender's.
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	s.send(s.message(target.ID(), []byte("forged"), time.Now(), mallory))
	eventually("forged", func(c Counters) bool { return c.DroppedForged >= 1 })

	// A stale message (signed an hour ago) is refused as a replay.
	s.send(s.message(target.ID(), []byte("stale"), time.Now().Add(-time.Hour), s.priv))
	eventually("stale", func(c Counters) bool { return c.DroppedReplayed >= 1 })

	// A valid message sent twice is delivered once.
	replayed := counters().DroppedReplayed
	valid := s.message(target.ID(), []byte("once"), time.Now(), s.priv)
	s.send(valid)
	r := tn.expect([]byte("once"))
	require.Equal(t, target.ID(), r.at)
	require.Equal(t, ID(s.id), r.msg.From)
	s.send(valid)
	eventually("replayed", func(c Counters) bool { return c.DroppedReplayed > replayed })
	require.Equal(t, uint64(1), counters().MessagesReceived)
	select {
	case r := <-tn.got:
		require.NotEqual(t, "once", string(r.msg.Data), "a replayed message was delivered twice")
	default:
	}
	require.Positive(t, counters().Dropped)
}

func TestIDStringRoundTrip(t *testing.T) {
	id, err := NewIdentity()
	require.NoError(t, err)
	s := id.ID().String()
	require.Len(t, s, 52)
	for _, in := range []string{s, " " + s + "\n", upper(s)} {
		got, err := ParseID(in)
		require.NoError(t, err)
		require.Equal(t, id.ID(), got)
	}
	for _, bad := range []string{"", "abc", s[:51], s + "a", s[:51] + "1", s[:51] + "!"} {
		_, err := ParseID(bad)
		require.Error(t, err, "%q", bad)
	}
	require.Equal(t, Key(id.ID()), id.ID().Key())
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestIdentityFileKeepsID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "identity")
	a, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	b, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	require.Equal(t, a.ID(), b.ID())

	require.NoError(t, os.WriteFile(path, []byte("not a key"), 0o600))
	_, err = LoadOrCreateIdentity(path)
	require.Error(t, err)
}

func TestKeyCloser(t *testing.T) {
	var k, a, b Key
	a[0], b[0] = 0x01, 0x02
	require.True(t, k.Closer(a, b))
	require.False(t, k.Closer(b, a))
	require.False(t, k.Closer(a, a))
	require.Equal(t, KeyOf([]byte("x")), KeyOf([]byte("x")))
	require.NotEqual(t, KeyOf([]byte("x")), KeyOf([]byte("y")))
}

// requireNoGoroutineLeak waits for the goroutine count to fall back to before,
// and dumps the goroutines if it does not.
func requireNoGoroutineLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left behind (before: %d):\n%s", runtime.NumGoroutine()-before, before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // polling the count: there is no event to wait on
	}
}

// Nodes that vanish without leaving (their socket just closes) are detected
// as dead when a hop to them goes unanswered, and routing is exact again.
func TestLoopbackCrashedNodesAreRoutedAround(t *testing.T) {
	tn := newLoopbackNet(t, 30, Config{})
	for _, n := range tn.nodes[len(tn.nodes)-6:] {
		require.NoError(t, n.sock.Close()) // a crash: no leave message
	}
	live := tn.nodes[:len(tn.nodes)-6]
	requireExactWithin(t, tn, live, "crashes", 30*time.Second)
	dead := 0
	for _, n := range live {
		for _, c := range n.Contacts() {
			for _, gone := range tn.nodes[len(tn.nodes)-6:] {
				if c == gone.ID() {
					dead++
				}
			}
		}
	}
	t.Logf("contacts still pointing at crashed nodes: %d", dead)
}

// requireExactWithin sends rounds of 100 SendToKey from live nodes to random
// keys until at least 99 of a round reach the XOR-closest live node, and
// fails if that takes longer than limit.
func requireExactWithin(t *testing.T, tn *testNet, live []*Node, after string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for round := 1; ; round++ {
		exact := 0
		for i := range 100 {
			from := live[mrand(len(live))]
			var key Key
			rand.Read(key[:])
			data := fmt.Appendf(nil, "%s round %d message %d", after, round, i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := from.SendToKey(ctx, data, key)
			cancel()
			if err != nil {
				t.Logf("send %d: %v", i, err)
				continue
			}
			if tn.expect(data).at == closestID(live, key) {
				exact++
			}
		}
		t.Logf("round %d: %d/100 exact", round, exact)
		if exact >= 99 {
			return
		}
		require.True(t, time.Now().Before(deadline), "routing not exact %v after %s: %d/100", limit, after, exact)
	}
}
