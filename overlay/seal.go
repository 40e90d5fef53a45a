package overlay

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/p2psock/p2psock/internal/wire"
)

// Messages to an ID are sealed end to end: the origin encrypts the payload
// with HPKE (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// ChaCha20-Poly1305) to the X25519 key that the destination's ID, an Ed25519
// public key, maps to, then signs the header and the ciphertext as for any
// message (encrypt then sign). Forwarders see the routing header only. Every
// node checks the signature before it opens anything, so a forgery costs it
// a verification, not a key agreement; the HPKE info string is the whole
// header (wire.MsgHeader.Sealing), so a ciphertext re-signed by another
// origin, or moved to another message, does not open. An acknowledgement
// that carries a reply is sealed to the origin of the message it answers.
// Messages by key are not sealed: their sender does not know which node will
// take them. docs/PROTOCOL.md §6.5 is the normative description.

// maxSealKeys bounds the recipients' keys a node keeps derived.
const maxSealKeys = 1024

// errBadSealKey means an ID is not an Ed25519 key that maps to an X25519 key
// HPKE accepts: no node can own it.
var errBadSealKey = errors.New("p2psock: the ID is not a key a message can be sealed to")

func sealKDF() hpke.KDF   { return hpke.HKDFSHA256() }
func sealAEAD() hpke.AEAD { return hpke.ChaCha20Poly1305() }

// sealer holds a node's sealing keys: its own X25519 private key, derived
// from its identity, and a bounded cache of the public keys of the IDs it
// sealed to.
type sealer struct {
	once sync.Once
	priv hpke.PrivateKey // nil if the identity could not be mapped (never, for a valid key)

	mu   sync.Mutex
	keys map[ID]hpke.PublicKey

	// Tests only: off sends messages in clear, spoil flips a bit of every
	// sealed payload before it is signed.
	off, spoil atomic.Bool
}

// sealPrivate returns this node's HPKE private key, derived on first use.
func (o *Overlay) sealPrivate() hpke.PrivateKey {
	s := &o.sealer
	s.once.Do(func() {
		s.keys = make(map[ID]hpke.PublicKey)
		k, err := x25519Private(o.priv)
		if err != nil {
			return
		}
		s.priv, _ = hpke.NewDHKEMPrivateKey(k)
	})
	return s.priv
}

// sealKey returns the HPKE public key of id, from the cache when it is
// there. A full cache forgets one key at random to make room.
func (o *Overlay) sealKey(id ID) (hpke.PublicKey, error) {
	o.sealPrivate() // makes the cache
	s := &o.sealer
	s.mu.Lock()
	k, ok := s.keys[id]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	pub, err := x25519Public(id)
	if err != nil {
		return nil, err
	}
	if k, err = hpke.NewDHKEMPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadSealKey, err)
	}
	s.mu.Lock()
	if len(s.keys) >= maxSealKeys {
		for old := range s.keys {
			delete(s.keys, old)
			break
		}
	}
	s.keys[id] = k
	s.mu.Unlock()
	return k, nil
}

// sealedKeys returns the number of keys in the cache.
func (o *Overlay) sealedKeys() int {
	o.sealer.mu.Lock()
	defer o.sealer.mu.Unlock()
	return len(o.sealer.keys)
}

// seal prepares the payload of a message with header h for encodeMessage: a
// data message to another node's ID, or an acknowledgement carrying a reply,
// is sealed to the ID it goes to, and h is marked sealed; anything else goes
// in clear. It sets h.Length either way.
func (o *Overlay) seal(h *wire.MsgHeader, payload []byte) ([]byte, error) {
	h.Sealed = false
	h.Length = uint32(len(payload))
	switch {
	case o.sealer.off.Load(), h.Mode != wire.ModeID, ID(h.Dest) == o.self:
		return payload, nil
	case h.Kind == wire.KindData, h.Kind == wire.KindAck && len(payload) > 0:
	default:
		return payload, nil // an empty ack, or a nack's reason: nothing to hide
	}
	pk, err := o.sealKey(ID(h.Dest))
	if err != nil {
		return nil, err
	}
	h.Sealed = true
	h.Length = uint32(len(payload) + wire.SealOverhead)
	ct, err := hpke.Seal(pk, sealKDF(), sealAEAD(), h.Sealing(o.net), payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadSealKey, err)
	}
	if o.sealer.spoil.Load() {
		ct[len(ct)-1] ^= 1
	}
	return ct, nil
}

// open returns the plaintext of a complete message whose signature was
// verified: its payload as it is if the message is not sealed. A sealed
// message that does not open is dropped [Undecryptable] and a data message
// is refused with a Sealed nack, so that its origin fails at once rather
// than after its deadline; ok is false then.
func (o *Overlay) open(h wire.MsgHeader, payload []byte) (plain []byte, ok bool) {
	if !h.Sealed {
		return payload, true
	}
	if priv := o.sealPrivate(); priv != nil && ID(h.Dest) == o.self {
		plain, err := hpke.Open(priv, sealKDF(), sealAEAD(), h.Sealing(o.net), payload)
		if err == nil {
			if plain == nil {
				plain = []byte{} // as a clear empty message arrives
			}
			return plain, true
		}
	}
	o.ctr.undecryptable.Add(1)
	if h.Kind == wire.KindData {
		o.sendControl(wire.KindNack, h, []byte{wire.NackSealed})
	}
	return nil, false
}

// fieldPrime returns Curve25519's field prime, 2^255 - 19.
func fieldPrime() *big.Int {
	return new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
}

// x25519Public maps an Ed25519 public key to the X25519 public key of the
// same secret (RFC 7748 §4.1's birational map, as libsodium's
// crypto_sign_ed25519_pk_to_curve25519): u = (1 + y) / (1 - y) mod p, where y
// is the Edwards point's y-coordinate, the key's 255 low bits little-endian.
func x25519Public(id ID) (*ecdh.PublicKey, error) {
	p := fieldPrime()
	le := id
	le[31] &= 0x7F // the sign of x: the map does not need it
	y := new(big.Int).SetBytes(reversed(le[:]))
	y.Mod(y, p)
	num := new(big.Int).Add(big.NewInt(1), y)
	den := new(big.Int).Sub(big.NewInt(1), y)
	den.Mod(den, p)
	if den.Sign() == 0 {
		return nil, errBadSealKey // y = 1: the neutral point
	}
	u := num.Mul(num, den.ModInverse(den, p))
	u.Mod(u, p)
	var ub [32]byte
	u.FillBytes(ub[:])
	pub, err := ecdh.X25519().NewPublicKey(reversed(ub[:]))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadSealKey, err)
	}
	return pub, nil
}

// x25519Private derives the X25519 private key of an Ed25519 identity: the
// clamped first half of SHA-512 of its seed, the scalar Ed25519 signs with
// (RFC 8032 §5.1.5, libsodium's crypto_sign_ed25519_sk_to_curve25519).
func x25519Private(priv ed25519.PrivateKey) (*ecdh.PrivateKey, error) {
	h := sha512.Sum512(priv.Seed())
	s := h[:32]
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	return ecdh.X25519().NewPrivateKey(s)
}

func reversed(b []byte) []byte {
	r := slices.Clone(b)
	slices.Reverse(r)
	return r
}
