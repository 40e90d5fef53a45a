package group

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// envelope is a message as its origin signed it; every hop forwards it
// unchanged, and members check the signature. Its encoding:
//
//	kind(1) group(32) origin(32) msgID(16) timestamp(8, Unix ms) len(4) data sig(64)
//
// sig signs "p2psock group v1\x00" || network tag || every byte before sig.
type envelope struct {
	kind   byte // kindMulticast, kindAnycast or kindBroadcast
	group  overlay.Key
	origin overlay.ID
	msgID  [16]byte
	ts     int64
	data   []byte
	raw    []byte
}

const (
	kindMulticast byte = 1
	kindAnycast   byte = 2
	kindBroadcast byte = 3
)

const envOverhead = 1 + 32 + 32 + 16 + 8 + 4 + ed25519.SignatureSize

// MaxData is the largest message a group carries.
const MaxData = overlay.MaxMessage - envOverhead - 64

var errBadEnvelope = errors.New("group: malformed message")

func prefix(net [8]byte) []byte { return append([]byte("p2psock group v1\x00"), net[:]...) }

func seal(kind byte, group overlay.Key, origin overlay.ID, data []byte, sign func([]byte) []byte, net [8]byte) *envelope {
	e := &envelope{kind: kind, group: group, origin: origin, ts: time.Now().UnixMilli(), data: data}
	rand.Read(e.msgID[:])
	b := make([]byte, 0, envOverhead+len(data))
	b = append(b, kind)
	b = append(b, group[:]...)
	b = append(b, origin[:]...)
	b = append(b, e.msgID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	e.raw = append(b, sign(append(prefix(net), b...))...)
	return e
}

func open(b []byte, net [8]byte) (*envelope, error) {
	if len(b) < envOverhead {
		return nil, errBadEnvelope
	}
	e := &envelope{kind: b[0], raw: b}
	copy(e.group[:], b[1:33])
	copy(e.origin[:], b[33:65])
	copy(e.msgID[:], b[65:81])
	e.ts = int64(binary.BigEndian.Uint64(b[81:89]))
	n := int(binary.BigEndian.Uint32(b[89:93]))
	if n < 0 || len(b) != 93+n+ed25519.SignatureSize || e.kind < kindMulticast || e.kind > kindBroadcast {
		return nil, errBadEnvelope
	}
	e.data = b[93 : 93+n]
	if !ed25519.Verify(e.origin[:], append(prefix(net), b[:93+n]...), b[93+n:]) {
		return nil, errors.New("group: bad signature")
	}
	return e, nil
}
