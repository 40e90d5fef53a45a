package nat

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ICE agents send connectivity checks to the candidates a peer names in its
// offer, and a peer may name anyone's address. checkBudget keeps the node
// from becoming an amplifier toward such an address: the checks sent to an
// IP address never exceed, in bytes, what was received from it plus a small
// allowance (about two checks) per destination, and the allowances of all
// destinations together are rate-limited. A peer that runs ICE answers each
// check, which earns the next; a hole-punching peer's own checks earn ours.
// Responses to the peer's checks are not limited: they are one for one.

const (
	// checkAllowance is the bytes of checks an IP address that has sent
	// nothing may receive: two checks.
	checkAllowance = 256
	// maxCheckCredit caps the credit an address accumulates.
	maxCheckCredit = 64 << 10
	// checkDestIdle is how long an address is remembered after the last
	// check to it or packet from it.
	checkDestIdle = 30 * time.Second
	// maxCheckDests bounds the addresses remembered.
	maxCheckDests = 4096
	// recentChecks is the number of transaction IDs of the latest checks
	// to an address that are kept to recognise its answers.
	recentChecks = 16
	// allowanceRate and allowanceBurst bound the allowances granted to new
	// destinations, in bytes per second and at once.
	allowanceRate  = 16 << 10
	allowanceBurst = 64 << 10
)

type checkBudget struct {
	mu      sync.Mutex
	dests   map[netip.Addr]*checkDest
	tokens  float64 // allowance left to grant
	refill  time.Time
	dropped uint64
}

type checkDest struct {
	credit int
	seen   time.Time
	sent   [recentChecks][12]byte // transaction IDs of the latest checks, a ring
	next   int                    // the ring's next slot
}

func newCheckBudget() *checkBudget {
	return &checkBudget{dests: make(map[netip.Addr]*checkDest), tokens: allowanceBurst, refill: time.Now()}
}

// destLocked returns ip's record, creating it (with an allowance, if the
// global rate grants one) if it is new or has been idle.
func (b *checkBudget) destLocked(ip netip.Addr, now time.Time) *checkDest {
	d := b.dests[ip]
	if d != nil && now.Sub(d.seen) < checkDestIdle {
		d.seen = now
		return d
	}
	if d == nil {
		if len(b.dests) >= maxCheckDests {
			b.evictLocked(now)
		}
		d = &checkDest{}
		b.dests[ip] = d
	}
	b.tokens = min(allowanceBurst, b.tokens+now.Sub(b.refill).Seconds()*allowanceRate)
	b.refill = now
	d.credit, d.seen, d.sent = 0, now, [recentChecks][12]byte{}
	if b.tokens >= checkAllowance {
		b.tokens -= checkAllowance
		d.credit = checkAllowance
	}
	return d
}

// evictLocked forgets the idle destinations, or if none is, the one idle
// the longest.
func (b *checkBudget) evictLocked(now time.Time) {
	var oldest netip.Addr
	var at time.Time
	for ip, d := range b.dests {
		if now.Sub(d.seen) >= checkDestIdle {
			delete(b.dests, ip)
			continue
		}
		if at.IsZero() || d.seen.Before(at) {
			oldest, at = ip, d.seen
		}
	}
	if len(b.dests) >= maxCheckDests {
		delete(b.dests, oldest)
	}
}

// received credits the STUN packet pkt that came from addr: its bytes, or
// the full credit if it answers one of the latest checks sent there.
func (b *checkBudget) received(addr net.Addr, pkt []byte) {
	ip, ok := udpIP(addr)
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.destLocked(ip, time.Now())
	if tid, ok := successTID(pkt); ok {
		for i := range d.sent {
			if d.sent[i] == tid {
				d.credit = maxCheckCredit
				return
			}
		}
	}
	d.credit = min(maxCheckCredit, d.credit+len(pkt))
}

// allow reports whether the check p may go to addr, and charges it.
func (b *checkBudget) allow(addr net.Addr, p []byte) bool {
	ip, ok := udpIP(addr)
	if !ok {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.destLocked(ip, time.Now())
	if d.credit < len(p) {
		b.dropped++
		return false
	}
	d.credit -= len(p)
	if len(p) >= stunHeader {
		copy(d.sent[d.next][:], p[8:stunHeader])
		d.next = (d.next + 1) % recentChecks
	}
	return true
}

// stunHeader is the size of a STUN header: type, length, magic cookie and
// the 12-byte transaction ID.
const stunHeader = 20

// successTID returns the transaction ID of p if p is a STUN binding success
// response.
func successTID(p []byte) (tid [12]byte, ok bool) {
	if len(p) < stunHeader || p[0] != 0x01 || p[1] != 0x01 {
		return tid, false
	}
	copy(tid[:], p[8:stunHeader])
	return tid, true
}

func (b *checkBudget) throttled() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

func udpIP(addr net.Addr) (netip.Addr, bool) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ua.IP)
	return ip.Unmap(), ok
}

// isCheck reports whether p is an ICE connectivity check: a STUN binding
// request that carries a USERNAME attribute (a plain STUN query has none).
func isCheck(p []byte) bool {
	const attrUsername = 0x0006
	if len(p) < stunHeader || p[0] != 0x00 || p[1] != 0x01 {
		return false
	}
	for off := stunHeader; off+4 <= len(p); {
		typ := binary.BigEndian.Uint16(p[off:])
		n := int(binary.BigEndian.Uint16(p[off+2:]))
		if typ == attrUsername {
			return true
		}
		off += 4 + (n+3)&^3
	}
	return false
}
