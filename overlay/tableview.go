package overlay

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// ContactInfo describes one contact of the routing table, for tools that
// show it (the node's view page, its metrics).
type ContactInfo struct {
	ID     ID
	Bucket int            // the length of the prefix its ID shares with this node's: its bucket
	Addr   netip.AddrPort // its address on a direct link; invalid on a relayed one
	Via    ID             // the contact that relays to it; zero on a direct link
	Public bool           // it reported itself directly reachable
	RTT    time.Duration  // smoothed round-trip time; 0 if not yet measured
	// LastSeen is when a packet from it last arrived.
	LastSeen time.Time
	// Suspect is true while a hop to it went unacknowledged.
	Suspect bool
}

// Relayed reports whether the contact is reached through another contact.
func (c ContactInfo) Relayed() bool { return c.Via != (ID{}) }

// Kind says how the link with the contact runs: relayed through another
// contact (Via), punched when the contact is behind a NAT (it did not report
// itself directly reachable, so the address its packets come from and go to
// is its NAT's mapping, opened by its own packets or a hole punch), and
// direct when the address is the contact's own socket.
func (c ContactInfo) Kind() PathKind {
	switch {
	case c.Relayed():
		return PathRelayed
	case !c.Public:
		return PathPunched
	}
	return PathDirect
}

// Table returns the routing table's contacts, by bucket (the farthest, 0,
// first) and by ID within one.
func (o *Overlay) Table() []ContactInfo {
	o.mu.Lock()
	out := make([]ContactInfo, 0, o.tab.len())
	for c := range o.tab.contacts() {
		ci := ContactInfo{ID: c.id, Bucket: o.tab.bucketOf(c.id), Via: c.p.relay(), Public: c.public,
			RTT: c.srtt, LastSeen: c.lastSeen.time(), Suspect: !c.suspect.IsZero()}
		if !c.p.relayed() {
			ci.Addr = c.p.addr
		}
		out = append(out, ci)
	}
	o.mu.Unlock()
	slices.SortFunc(out, func(a, b ContactInfo) int {
		if c := cmp.Compare(a.Bucket, b.Bucket); c != 0 {
			return c
		}
		return slices.Compare(a.ID[:], b.ID[:])
	})
	return out
}
