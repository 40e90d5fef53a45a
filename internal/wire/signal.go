package wire

import "encoding/binary"

// SignalVersion is the version byte that starts every signalling and relay
// service message.
const SignalVersion byte = 1

// Kinds of signalling messages (service ServiceSignal).
const (
	SignalOffer      byte = 1 // ICE credentials of a new session, from the connecting node
	SignalAnswer     byte = 2 // the answering node's credentials: the reply to an offer
	SignalCandidates byte = 3 // trickled ICE candidates of a session, either way
	SignalReject     byte = 4 // the reply to an offer that is refused
	SignalClose      byte = 5 // the sender's node is closing: finish reading, then drop the connection
)

// Flags of an offer or answer.
const (
	SignalFlagRelay     byte = 1 << 0 // the sender gathers relay candidates
	SignalFlagWantRelay byte = 1 << 1 // the sender asks the receiver to gather relay candidates
	SignalFlagHardNAT   byte = 1 << 2 // the sender's NAT maps per destination (endpoint-dependent mapping)
)

// Reasons of a SignalReject.
const (
	RejectConflict byte = 1 // both nodes connect at once; the receiver's own offer goes ahead
	RejectClosing  byte = 2 // the receiver is closing
	RejectBusy     byte = 3 // the receiver has too many sessions in progress
	// RejectNoCandidates: the Offer carried no candidate the receiver could
	// parse, so a session would have nothing to check.
	RejectNoCandidates byte = 4
)

// Limits of a signalling message.
const (
	MaxUfrag          = 255
	MaxCandidates     = 32
	MaxCandidateBytes = 512
)

// Signal is a signalling message.
type Signal struct {
	Kind       byte
	Session    [8]byte
	Flags      byte
	Reason     byte
	Ufrag      string
	Pwd        string
	Candidates []string
}

// AppendSignal encodes s. Strings beyond the limits are an error.
func AppendSignal(b []byte, s Signal) ([]byte, error) {
	if len(s.Ufrag) > MaxUfrag || len(s.Pwd) > MaxUfrag || len(s.Candidates) > MaxCandidates {
		return nil, ErrLong
	}
	if s.Kind < SignalOffer || s.Kind > SignalClose {
		return nil, ErrMalformed
	}
	b = append(b, SignalVersion, s.Kind)
	b = append(b, s.Session[:]...)
	b = append(b, s.Flags, s.Reason, byte(len(s.Ufrag)))
	b = append(b, s.Ufrag...)
	b = append(b, byte(len(s.Pwd)))
	b = append(b, s.Pwd...)
	b = append(b, byte(len(s.Candidates)))
	for _, c := range s.Candidates {
		if len(c) > MaxCandidateBytes {
			return nil, ErrLong
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	return b, nil
}

// ParseSignal decodes a signalling message.
func ParseSignal(b []byte) (Signal, error) {
	var s Signal
	if len(b) < 15 { // version, kind, session, flags, reason, three zero lengths
		return s, ErrShort
	}
	if b[0] != SignalVersion {
		return s, ErrVersion
	}
	s.Kind = b[1]
	if s.Kind < SignalOffer || s.Kind > SignalClose {
		return s, ErrMalformed
	}
	copy(s.Session[:], b[2:10])
	s.Flags, s.Reason = b[10], b[11]
	r := reader{b: b[12:]}
	s.Ufrag = string(r.bytes8())
	s.Pwd = string(r.bytes8())
	n := int(r.byte())
	if n > MaxCandidates {
		return s, ErrMalformed
	}
	for range n {
		c := r.bytes16()
		if len(c) > MaxCandidateBytes {
			return s, ErrMalformed
		}
		s.Candidates = append(s.Candidates, string(c))
	}
	if r.bad || len(r.b) != 0 {
		return s, ErrMalformed
	}
	return s, nil
}

// Kinds of relay service messages (service ServiceRelay).
const (
	RelayRequest byte = 1 // asks for a relay offer
	RelayOffer   byte = 2 // a TURN server on the answering node's IP
	RelayNone    byte = 3 // the answering node runs no relay
)

// RelayMsg is a relay service message.
type RelayMsg struct {
	Kind     byte
	Port     uint16 // UDP port of the TURN server, on the IP the node was reached at
	Username string // TURN long-term credentials, valid for a limited time
	Password string
}

// AppendRelayMsg encodes m.
func AppendRelayMsg(b []byte, m RelayMsg) ([]byte, error) {
	if len(m.Username) > 255 || len(m.Password) > 255 {
		return nil, ErrLong
	}
	if m.Kind < RelayRequest || m.Kind > RelayNone || (m.Kind == RelayOffer && m.Port == 0) {
		return nil, ErrMalformed
	}
	b = append(b, SignalVersion, m.Kind)
	if m.Kind != RelayOffer {
		return b, nil
	}
	b = binary.BigEndian.AppendUint16(b, m.Port)
	b = append(b, byte(len(m.Username)))
	b = append(b, m.Username...)
	b = append(b, byte(len(m.Password)))
	return append(b, m.Password...), nil
}

// ParseRelayMsg decodes a relay service message.
func ParseRelayMsg(b []byte) (RelayMsg, error) {
	var m RelayMsg
	if len(b) < 2 {
		return m, ErrShort
	}
	if b[0] != SignalVersion {
		return m, ErrVersion
	}
	m.Kind = b[1]
	switch m.Kind {
	case RelayRequest, RelayNone:
		if len(b) != 2 {
			return m, ErrMalformed
		}
		return m, nil
	case RelayOffer:
	default:
		return m, ErrMalformed
	}
	r := reader{b: b[2:]}
	m.Port = r.uint16()
	m.Username = string(r.bytes8())
	m.Password = string(r.bytes8())
	if r.bad || len(r.b) != 0 || m.Port == 0 {
		return m, ErrMalformed
	}
	return m, nil
}

// reader reads length-prefixed fields; a read past the end sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) bytes8() []byte  { return r.take(int(r.byte())) }
func (r *reader) bytes16() []byte { return r.take(int(r.uint16())) }
