package p2psock

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/p2psock/p2psock/overlay"
)

// Identity is a node's Ed25519 key pair. Its ID is the public key.
type Identity struct {
	priv ed25519.PrivateKey
}

// NewIdentity creates a fresh random identity that carries the work proof of
// the default difficulty (overlay.DefaultDifficulty, the one a Config with
// Difficulty 0 requires): about 0.6 s of one core.
func NewIdentity() (*Identity, error) {
	return NewIdentityWork(context.Background(), overlay.DefaultDifficulty)
}

// NewIdentityWork creates a fresh random identity whose ID carries bits of
// work (see Config.Difficulty), taking 2^bits key generations on average;
// bits <= 0 takes one. It fails when ctx ends first, or with ErrDifficulty
// when bits is beyond overlay.MaxDifficulty.
func NewIdentityWork(ctx context.Context, bits int) (*Identity, error) {
	priv, err := overlay.NewIdentityKey(ctx, bits)
	if err != nil {
		return nil, fmt.Errorf("p2psock: generating identity: %w", err)
	}
	return &Identity{priv: priv}, nil
}

// Work returns the work the identity's ID carries, in bits: it meets every
// Config.Difficulty up to that.
func (i *Identity) Work() int { return overlay.Work(i.ID()) }

// IdentityFromSeed returns the identity whose private key is derived from a
// 32-byte seed (RFC 8032).
func IdentityFromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("p2psock: identity seed must be %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	return &Identity{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

const pemType = "P2PSOCK ED25519 SEED"

// LoadOrCreateIdentity reads the identity stored at path, or creates one and
// stores it there (PEM, file mode 0600, parent directories 0700) so a node
// keeps its ID across restarts. A created identity carries the work of the
// default difficulty (see NewIdentity); a file written before identities
// carried work loads as it is, and a node of a network that requires more
// work than its ID has fails at NewNode with ErrDifficulty.
func LoadOrCreateIdentity(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != pemType {
			return nil, fmt.Errorf("p2psock: %s is not a p2psock identity file", path)
		}
		return IdentityFromSeed(blk.Bytes)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("p2psock: reading identity: %w", err)
	}
	id, err := NewIdentity()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("p2psock: storing identity: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: id.priv.Seed()})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) { // created meanwhile by another process
			return LoadOrCreateIdentity(path)
		}
		return nil, fmt.Errorf("p2psock: storing identity: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("p2psock: storing identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("p2psock: storing identity: %w", err)
	}
	return id, nil
}

// ID returns the identity's ID.
func (i *Identity) ID() ID {
	var id ID
	copy(id[:], i.priv.Public().(ed25519.PublicKey))
	return id
}

// Sign signs data with the identity's private key.
func (i *Identity) Sign(data []byte) []byte { return ed25519.Sign(i.priv, data) }

// Verify reports whether sig is id's signature of data.
func Verify(id ID, data, sig []byte) bool { return overlay.Verify(id, data, sig) }
