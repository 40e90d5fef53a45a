package overlay

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"math/bits"
	"strings"
)

// ID identifies a node. It is the node's raw 32-byte Ed25519 public key, so a
// signature can be checked against an ID with nothing else. Package p2psock
// names the same type p2psock.ID.
type ID [32]byte

// Key is a point in the 256-bit ID space. The distance between two keys is
// their XOR; a message sent to a key goes to the live node whose ID is
// closest to it. Package p2psock names the same type p2psock.Key.
type Key [32]byte

// Key returns the ID as a point in the key space (the same 32 bytes).
func (id ID) Key() Key { return Key(id) }

// encoding is the text form of IDs and keys: lowercase base32 without padding.
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// String returns the ID in lowercase base32 without padding (52 characters).
func (id ID) String() string { return encoding.EncodeToString(id[:]) }

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

// ParseID parses the form ID.String returns; upper case and surrounding
// space are accepted.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := encoding.DecodeString(strings.ToLower(strings.TrimSpace(s)))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("p2psock: invalid ID %q: want 52 base32 characters", s)
	}
	copy(id[:], b)
	return id, nil
}

// Verify reports whether sig is id's signature of data.
func Verify(id ID, data, sig []byte) bool { return ed25519.Verify(id[:], data, sig) }

// KeyOf returns the key of data: its SHA-256.
func KeyOf(data []byte) Key { return sha256.Sum256(data) }

// String returns the key in lowercase base32 without padding (52 characters).
func (k Key) String() string { return encoding.EncodeToString(k[:]) }

// Closer reports whether a is closer to k than b is, by XOR distance.
func (k Key) Closer(a, b Key) bool { return cmpDistance(a, b, k) < 0 }

// CmpDistance compares the XOR distances of a and b to target: -1 if a is
// closer, 1 if b is, 0 if a == b.
func CmpDistance(a, b, target Key) int { return cmpDistance(a, b, target) }

// cmpDistance compares the XOR distances of a and b to target: -1 if a is
// closer, +1 if b is closer, 0 if equal (a == b).

func cmpDistance(a, b, target Key) int {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	return 0
}

// commonPrefixLen returns the number of leading bits a and b share (256 if equal).
func commonPrefixLen(a, b Key) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 256
}

// randomKeyInBucket returns a random key that shares exactly cpl leading bits
// with self.
func randomKeyInBucket(self Key, cpl int) Key {
	var k Key
	rand.Read(k[:])
	byteIdx, bit := cpl/8, uint(cpl%8)
	copy(k[:byteIdx], self[:byteIdx])
	// keep self's first `bit` bits of this byte, flip the next one, random below.
	mask := byte(0xFF) << (8 - bit)
	flip := byte(0x80) >> bit
	k[byteIdx] = (self[byteIdx] & mask) | ((self[byteIdx] ^ flip) & flip) | (k[byteIdx] &^ (mask | flip))
	return k
}
