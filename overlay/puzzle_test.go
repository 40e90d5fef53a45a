package overlay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/overlay"
)

func TestNewIdentityKeyCarriesWork(t *testing.T) {
	for _, d := range []int{0, 1, 8} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			priv, err := overlay.NewIdentityKey(context.Background(), d)
			require.NoError(t, err)
			require.True(t, overlay.HasWork(overlay.ID(priv.Public().(ed25519.PublicKey)), d))
		})
	}
	_, err := overlay.NewIdentityKey(context.Background(), overlay.MaxDifficulty+1)
	require.ErrorIs(t, err, overlay.ErrDifficulty)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = overlay.NewIdentityKey(ctx, 30)
	require.ErrorIs(t, err, context.Canceled)
}

// BenchmarkIdentityKeyGeneration is the unit of the work proof's cost: one
// Ed25519 key generation and the SHA-256 that checks it. Creating an
// identity of difficulty D takes 2^D of them on average; grinding one that
// also shares b leading bits with a chosen key takes 2^(D+b).
func BenchmarkIdentityKeyGeneration(b *testing.B) {
	var seed [32]byte
	for b.Loop() {
		rand.Read(seed[:])
		priv := ed25519.NewKeyFromSeed(seed[:])
		overlay.HasWork(overlay.ID(priv[32:]), 1)
	}
}

// BenchmarkNewIdentityKey creates identities at several difficulties.
func BenchmarkNewIdentityKey(b *testing.B) {
	for _, d := range []int{0, 8, 12, 16} {
		b.Run(fmt.Sprintf("D=%d", d), func(b *testing.B) {
			for b.Loop() {
				if _, err := overlay.NewIdentityKey(context.Background(), d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGrindNearKey grinds an identity of difficulty D whose ID shares
// 8 leading bits with a chosen key, as a Sybil placing itself next to the
// key does: 2^(D+8) key generations on average.
func BenchmarkGrindNearKey(b *testing.B) {
	key := overlay.KeyOf([]byte("room:lobby"))
	for _, d := range []int{0, 4, 8} {
		b.Run(fmt.Sprintf("D=%d,b=8", d), func(b *testing.B) {
			var seed [32]byte
			for b.Loop() {
				for {
					rand.Read(seed[:])
					priv := ed25519.NewKeyFromSeed(seed[:])
					id := overlay.ID(priv[32:])
					if id[0] == key[0] && overlay.HasWork(id, d) {
						break
					}
				}
			}
		})
	}
}
