package nat

import "errors"

// ErrDatagramTooLarge is returned by CircuitConn.WriteTo for a datagram
// that does not fit in a Circuit frame (wire.MaxCircuitPayload bytes).
var ErrDatagramTooLarge = errors.New("nat: datagram too large for a circuit frame")
