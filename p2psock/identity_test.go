package p2psock

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

// TestDefaultDifficulty runs two nodes whose Config leaves Difficulty at
// its default end to end: their fresh identities carry the default work,
// they join and a message passes between them.
func TestDefaultDifficulty(t *testing.T) {
	testnet.CheckLeaks(t)
	a, err := NewNode(Config{ListenAddr: testnet.LoopbackAddr(0)})
	require.NoError(t, err)
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, a.Bind(ctx))
	b, err := NewNode(Config{ListenAddr: testnet.LoopbackAddr(1), Bootstrap: []string{a.UDPAddr().String()}, JoinOnly: true})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Bind(ctx))
	for _, n := range []*Node{a, b} {
		require.GreaterOrEqual(t, n.Identity().Work(), overlay.DefaultDifficulty)
	}
	require.NoError(t, a.SendTo(ctx, []byte("worked"), b.Identity().ID()))
	m, err := b.RecvFrom(ctx)
	require.NoError(t, err)
	require.Equal(t, "worked", string(m.Data))
	require.Equal(t, a.Identity().ID(), m.From)
}

// TestIdentityWork: an identity without the work a network requires fails
// at NewNode with ErrDifficulty (and works where no work is required);
// LoadOrCreateIdentity stores an identity with the default work and loads
// it back, and loads a file written without work as it is.
func TestIdentityWork(t *testing.T) {
	testnet.CheckLeaks(t)
	var lazy *Identity
	for seed := byte(0); lazy == nil; seed++ {
		id, err := IdentityFromSeed(bytes.Repeat([]byte{seed}, 32))
		require.NoError(t, err)
		if id.Work() < 8 {
			lazy = id
		}
	}
	_, err := NewNode(Config{Identity: lazy, ListenAddr: testnet.LoopbackAddr(0), Difficulty: 8})
	require.ErrorIs(t, err, ErrDifficulty)
	n, err := NewNode(Config{Identity: lazy, ListenAddr: testnet.LoopbackAddr(0), Difficulty: -1})
	require.NoError(t, err)
	require.NoError(t, n.Close())

	worked, err := NewIdentityWork(context.Background(), 8)
	require.NoError(t, err)
	require.GreaterOrEqual(t, worked.Work(), 8)

	dir := t.TempDir()
	path := filepath.Join(dir, "id")
	id, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	require.GreaterOrEqual(t, id.Work(), overlay.DefaultDifficulty)
	again, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	require.Equal(t, id.ID(), again.ID())

	old := filepath.Join(dir, "old")
	require.NoError(t, os.WriteFile(old, []byte("-----BEGIN "+pemType+"-----\n"+
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n-----END "+pemType+"-----\n"), 0o600))
	loaded, err := LoadOrCreateIdentity(old)
	require.NoError(t, err)
	seed0, _ := IdentityFromSeed(make([]byte, 32))
	require.Equal(t, seed0.ID(), loaded.ID())
}
