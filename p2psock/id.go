package p2psock

import "github.com/p2psock/p2psock/overlay"

// ID identifies a node. It is the node's raw 32-byte Ed25519 public key, so a
// signature can be checked against an ID with nothing else. Its text form
// (String, MarshalText) is lowercase base32 without padding, 52 characters.
//
// ID is the routing tier's type: overlay, group and dht use the same one, so
// IDs pass between the packages without conversion.
type ID = overlay.ID

// Key is a point in the 256-bit ID space. The distance between two keys is
// their XOR; a message sent to a key goes to the live node whose ID is
// closest to it. Key.Closer compares distances.
type Key = overlay.Key

// ParseID parses the form ID.String returns; upper case is accepted.
func ParseID(s string) (ID, error) { return overlay.ParseID(s) }

// KeyOf returns the key of data: its SHA-256.
func KeyOf(data []byte) Key { return overlay.KeyOf(data) }
