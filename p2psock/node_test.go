package p2psock

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
)

func TestLoopbackCloseSemantics(t *testing.T) {
	tn := newLoopbackNet(t, 4, Config{}) // registers the leak check first
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
}

// Close with a peer that stopped answering in the middle of a SendTo (which
// would go on until its 30 s context ends) returns, and the pending SendTo
// fails with net.ErrClosed.
func TestLoopbackCloseEndsSendToSilentPeer(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{}) // registers the leak check first
	sc, err := ovnet.ListenSilent("127.0.0.1:0")
	require.NoError(t, err)
	peer := tn.add(Config{PacketConn: sc, Bootstrap: []string{tn.nodes[0].UDPAddr().String()}, JoinOnly: true})
	n := tn.nodes[1]
	sc.Silence()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- n.SendTo(ctx, []byte("are you there?"), peer.ID()) }()
	testnet.Eventually(t, 10*time.Second, "the message reaches the silent peer", func() bool { return sc.Dropped() > 0 })
	select {
	case err := <-sent:
		t.Fatalf("SendTo ended before Close: %v", err)
	default:
	}
	require.NoError(t, n.Close())
	err = <-sent
	require.ErrorIs(t, err, net.ErrClosed)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
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
