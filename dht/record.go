package dht

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// Operations an owner signs.
const (
	opAdd    byte = 1 // key += value, until expires
	opRemove byte = 2 // key -= value: a tombstone kept until expires; its value field is the SHA-256 of the value
	opDelete byte = 3 // every value of the owner under key with a lower seq: a tombstone kept until expires
)

// signedOp is an owner's signed operation on a key. Its encoding:
//
//	op(1) owner(32) seq(8) expires(8, Unix ms) keyLen(2) key valueLen(4) value sig(64)
//
// sig signs "p2psock dht v1\x00" || network tag (8) || every byte before sig.
type signedOp struct {
	op      byte
	owner   overlay.ID
	seq     uint64
	expires int64 // Unix ms
	key     string
	value   []byte
	sig     []byte
	raw     []byte // the whole encoding
}

const opOverhead = 1 + 32 + 8 + 8 + 2 + 4 + ed25519.SignatureSize

var errBadOp = errors.New("dht: malformed record")

func (s *signedOp) expiry() time.Time { return time.UnixMilli(s.expires) }

// valueHash is what names a value in tombstones: its SHA-256. A Remove
// carries it instead of the value, so that a tombstone costs a replica a
// few hundred bytes whatever the size of the value it removes.
func valueHash(v []byte) string {
	h := sha256.Sum256(v)
	return string(h[:])
}

// vid names the value an Add or Remove is about: the hash of an Add's value,
// a Remove's value field as it is (a hash already); empty for a Delete.
func (s *signedOp) vid() string {
	switch s.op {
	case opAdd:
		return valueHash(s.value)
	case opRemove:
		return string(s.value)
	}
	return ""
}

func signedPrefix(net [8]byte) []byte {
	return append([]byte("p2psock dht v1\x00"), net[:]...)
}

// sign encodes s and signs it with id.
func (s *signedOp) sign(sign func([]byte) []byte, net [8]byte) {
	b := make([]byte, 0, opOverhead+len(s.key)+len(s.value))
	b = append(b, s.op)
	b = append(b, s.owner[:]...)
	b = binary.BigEndian.AppendUint64(b, s.seq)
	b = binary.BigEndian.AppendUint64(b, uint64(s.expires))
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.key)))
	b = append(b, s.key...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.value)))
	b = append(b, s.value...)
	s.sig = sign(append(signedPrefix(net), b...))
	s.raw = append(b, s.sig...)
}

// parseOp decodes and verifies a signed operation.
func parseOp(b []byte, net [8]byte) (*signedOp, error) {
	if len(b) < opOverhead {
		return nil, errBadOp
	}
	s := &signedOp{op: b[0], raw: b}
	copy(s.owner[:], b[1:33])
	s.seq = binary.BigEndian.Uint64(b[33:])
	s.expires = int64(binary.BigEndian.Uint64(b[41:]))
	kl := int(binary.BigEndian.Uint16(b[49:]))
	rest := b[51:]
	if len(rest) < kl+4 {
		return nil, errBadOp
	}
	s.key = string(rest[:kl])
	vl := int(binary.BigEndian.Uint32(rest[kl:]))
	rest = rest[kl+4:]
	if vl < 0 || len(rest) != vl+ed25519.SignatureSize {
		return nil, errBadOp
	}
	s.value = rest[:vl]
	s.sig = rest[vl:]
	if s.op < opAdd || s.op > opDelete || (s.op == opDelete && vl != 0) || (s.op == opRemove && vl != sha256.Size) {
		return nil, errBadOp
	}
	if !overlay.Verify(s.owner, append(signedPrefix(net), b[:len(b)-ed25519.SignatureSize]...), s.sig) {
		return nil, errForged
	}
	return s, nil
}

var errForged = errors.New("dht: bad record signature")

// Record is one live value under a key.
type Record struct {
	Key     string
	Value   []byte
	Owner   overlay.ID
	Expires time.Time
}

func (s *signedOp) record() Record {
	return Record{Key: s.key, Value: append([]byte(nil), s.value...), Owner: s.owner, Expires: s.expiry()}
}
