package wire

import "crypto/sha256"

// Named services share one overlay service, ServiceNamed: every message to
// a named service starts with a ServiceHeader (its kind and the hash of the
// service's name), and every acknowledgement of one starts with a status
// byte (docs/PROTOCOL.md, §7.11). A stream to a named service starts with
// StreamVersionNamed and the name's hash (§12.8).

// ServiceNamed is the overlay service of messages to named services.
const ServiceNamed byte = 6

// Kinds of named-service messages: what the destination does with one.
const (
	NamedMessage byte = 1 // a message for the service's receive queue
	NamedCall    byte = 2 // a request for the service's call handler
	NamedPacket  byte = 3 // a datagram for the service's packet conn
)

// Statuses of the acknowledgement of a named-service message: its first
// byte, followed by the reply (NamedOK) or an error message (NamedError).
const (
	NamedOK        byte = 0 // accepted; a call's reply follows
	NamedNoService byte = 1 // the destination does not offer the named service (or not this kind of message)
	NamedError     byte = 2 // the call handler failed; its error message follows
	NamedBusy      byte = 3 // the destination runs as many call handlers as it allows
)

// NameHashLen is the size of a service name's hash.
const NameHashLen = 8

// ServiceHeaderLen is the size of a ServiceHeader.
const ServiceHeaderLen = 1 + NameHashLen

// MaxServiceHeader is the room the size limits of routed messages leave
// past MaxMessage for the header of a service (ServiceHeaderLen, or a
// status byte), so that a service carries MaxMessage bytes of its own.
const MaxServiceHeader = 16

// NameHash is the hash of a service name as it travels: the first 8 bytes
// of SHA-256("p2psock service " + name).
type NameHash [NameHashLen]byte

// HashName returns the hash of the service name.
func HashName(name string) NameHash {
	s := NameDigest(name)
	return NameHash(s[:NameHashLen])
}

// NameDigest returns SHA-256("p2psock service " + name), of which the
// name's hash is the start: the scope of the service's broadcasts
// (docs/PROTOCOL.md, §11.10).
func NameDigest(name string) [32]byte {
	return sha256.Sum256([]byte("p2psock service " + name))
}

// ServiceHeader opens every message to a named service.
type ServiceHeader struct {
	Kind byte // NamedMessage, NamedCall or NamedPacket
	Name NameHash
}

// AppendServiceHeader appends h and then data to b.
func AppendServiceHeader(b []byte, h ServiceHeader, data []byte) []byte {
	b = append(b, h.Kind)
	b = append(b, h.Name[:]...)
	return append(b, data...)
}

// ParseServiceHeader decodes the header of a named-service message; data
// aliases b. An unknown kind is malformed.
func ParseServiceHeader(b []byte) (h ServiceHeader, data []byte, err error) {
	if len(b) < ServiceHeaderLen {
		return h, nil, ErrShort
	}
	h.Kind = b[0]
	if h.Kind < NamedMessage || h.Kind > NamedPacket {
		return h, nil, ErrMalformed
	}
	copy(h.Name[:], b[1:ServiceHeaderLen])
	return h, b[ServiceHeaderLen:], nil
}

// ParseNamedReply decodes the acknowledgement of a named-service message;
// data aliases b. An unknown status is malformed.
func ParseNamedReply(b []byte) (status byte, data []byte, err error) {
	if len(b) < 1 {
		return 0, nil, ErrShort
	}
	if b[0] > NamedBusy {
		return 0, nil, ErrMalformed
	}
	return b[0], b[1:], nil
}

// StreamVersionNamed is the first byte of a stream opened to a named
// service; the name's hash follows. The first byte of a stream to the
// default service is 1.
const StreamVersionNamed byte = 2
