package overlay

import (
	"crypto/rand"
	"encoding/base32"
	"math/bits"
)

// ID identifies a node: its raw 32-byte Ed25519 public key, so any node can
// check a signature against an ID without a key exchange.
type ID [32]byte

// Key is a point in the 256-bit ID space. Distance between keys is XOR.
type Key [32]byte

// Key returns the ID as a point in the key space.
func (id ID) Key() Key { return Key(id) }

// Encoding is the text form of IDs and keys: lowercase base32 without padding.
var Encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// String returns the ID in Encoding (52 characters).
func (id ID) String() string { return Encoding.EncodeToString(id[:]) }

// String returns the key in Encoding (52 characters).
func (k Key) String() string { return Encoding.EncodeToString(k[:]) }

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
