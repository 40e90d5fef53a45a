package nat

import "errors"

// ErrDatagramTooLarge is returned by CircuitConn.WriteTo for a datagram
// that does not fit in a Circuit frame (wire.MaxCircuitPayload bytes).
var ErrDatagramTooLarge = errors.New("nat: datagram too large for a circuit frame")

// ErrNoPortMapping is the error of a port mapping attempt that no router
// granted: no NAT-PMP or UPnP-IGD answer, or every one refused.
var ErrNoPortMapping = errors.New("nat: no port mapping")

// ErrNoProbeSource is the error of Socket.SendProbe asked for another IP on
// a host that has no other public address of the probed address's family.
var ErrNoProbeSource = errors.New("nat: no other source address for a probe")
