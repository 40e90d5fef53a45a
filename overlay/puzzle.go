package overlay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/bits"
)

// The identity work proof (the static crypto puzzle of S/Kademlia). An ID is
// an Ed25519 public key; it carries work w when SHA-256 of the domain tag
// followed by the 32 key bytes starts with w zero bits. A network requires a
// difficulty D (Config.Difficulty): its nodes take no frame from a sender
// whose ID has less work, and name no such node in lookup answers. Finding a
// key with D bits of work takes 2^D key generations on average; finding one
// whose ID also shares b leading bits with a chosen key (to sit next to it)
// takes 2^(D+b), because the ID is the key itself and the two conditions are
// independent. The proof needs no bytes on the wire: it is the ID.

// DefaultDifficulty is the work, in leading zero bits, that identities need
// when Config.Difficulty is 0. Creating one takes 2^14 key generations on
// average, each about 35 µs of one core of a 2 GHz server (see
// BenchmarkIdentityKeyGeneration): about 0.6 s, once per identity
// (identities are saved and reused). An attacker who wants many identities
// pays as much for each (100,000 identities: 16 hours of one core), and
// one who grinds an identity sharing 9 leading bits with a chosen key pays
// 2^23 generations, about 5 minutes, for each.
const DefaultDifficulty = 14

// MaxDifficulty is the largest difficulty accepted; more would take years.
const MaxDifficulty = 40

// workTag is the domain tag hashed before the key in the work proof.
const workTag = "p2psock identity work v1\x00"

// Work returns the work an ID carries: the number of leading zero bits of
// SHA-256(tag || id).
func Work(id ID) int {
	h := sha256.New()
	h.Write([]byte(workTag))
	h.Write(id[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// HasWork reports whether id carries the work of difficulty d (d <= 0: any
// ID has it).
func HasWork(id ID, d int) bool { return d <= 0 || Work(id) >= d }

// NewIdentityKey generates an Ed25519 key whose ID carries the work of
// difficulty d (d <= 0: any key), taking 2^d key generations on average. It
// fails when ctx ends first, or when d exceeds MaxDifficulty.
func NewIdentityKey(ctx context.Context, d int) (ed25519.PrivateKey, error) {
	if d > MaxDifficulty {
		return nil, fmt.Errorf("%w: %d bits (at most %d)", ErrDifficulty, d, MaxDifficulty)
	}
	var seed [ed25519.SeedSize]byte
	for i := 0; ; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, err := rand.Read(seed[:]); err != nil {
			return nil, err
		}
		priv := ed25519.NewKeyFromSeed(seed[:])
		if HasWork(ID(priv[32:]), d) {
			return priv, nil
		}
	}
}

// difficulty returns the configured difficulty: 0 gives DefaultDifficulty, a
// negative value none.
func (c *Config) difficulty() int {
	switch {
	case c.Difficulty == 0:
		return DefaultDifficulty
	case c.Difficulty < 0:
		return 0
	}
	return c.Difficulty
}
