package p2psock

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/p2psock/p2psock/overlay"
)

// ID identifies a node. It is the node's raw 32-byte Ed25519 public key, so a
// signature can be checked against an ID with nothing else.
type ID [32]byte

// Key is a point in the 256-bit ID space. The distance between two keys is
// their XOR; a message sent to a key goes to the live node whose ID is
// closest to it.
type Key [32]byte

// String returns the ID in lowercase base32 without padding (52 characters).
func (id ID) String() string { return overlay.ID(id).String() }

// Key returns the ID as a point in the key space (the same 32 bytes).
func (id ID) Key() Key { return Key(id) }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses the form String returns; upper case is accepted.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := overlay.Encoding.DecodeString(strings.ToLower(strings.TrimSpace(s)))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("p2psock: invalid ID %q: want 52 base32 characters", s)
	}
	copy(id[:], b)
	return id, nil
}

// KeyOf returns the key of data: its SHA-256.
func KeyOf(data []byte) Key { return sha256.Sum256(data) }

// String returns the key in lowercase base32 without padding.
func (k Key) String() string { return overlay.Key(k).String() }

// Closer reports whether a is closer to k than b is, by XOR distance.
func (k Key) Closer(a, b Key) bool {
	var da, db [32]byte
	for i := range k {
		da[i], db[i] = a[i]^k[i], b[i]^k[i]
	}
	return bytes.Compare(da[:], db[:]) < 0
}
