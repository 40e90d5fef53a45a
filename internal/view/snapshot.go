package view

import (
	"encoding/binary"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/group"
	"github.com/p2psock/p2psock/internal/streams"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// Source is the node the view shows: its parts, as the front door holds
// them. The DHT, if the program started one, is found through the
// overlay (dht.AttachName).
type Source struct {
	Overlay *overlay.Overlay
	Groups  *group.Groups
	Streams *streams.Engine
	Socket  *nat.Socket
}

// dht returns the DHT attached to the node, or nil.
func (s Source) dht() *dht.DHT {
	d, _ := s.Overlay.Attached(dht.AttachName).(*dht.DHT)
	return d
}

// maxHeld bounds the DHT records a snapshot lists.
const maxHeld = 500

// Snapshot is what the page shows at one moment; the server sends it as
// JSON.
type Snapshot struct {
	Time     int64             `json:"time"` // unix milliseconds
	Node     NodeView          `json:"node"`
	Counters map[string]uint64 `json:"counters"`
	Contacts []ContactView     `json:"contacts"`
	Conns    []ConnView        `json:"conns"`
	Groups   []GroupView       `json:"groups"`
	DHT      *DHTView          `json:"dht"` // nil when the node runs no DHT
}

// NodeView describes the node itself.
type NodeView struct {
	ID       string  `json:"id"`
	Pos      float64 `json:"pos"` // where the ID sits on the ring, in [0, 1)
	Network  string  `json:"network"`
	Local    string  `json:"local"`
	Observed string  `json:"observed"` // "" until a contact answered
	NAT      string  `json:"nat"`      // the NAT behaviour, in words
}

// ContactView is one contact of the routing table.
type ContactView struct {
	ID      string  `json:"id"`
	Pos     float64 `json:"pos"`
	Bucket  int     `json:"bucket"`
	Addr    string  `json:"addr"` // "" on a relayed link
	Via     string  `json:"via"`  // the relaying contact; "" on a direct link
	Public  bool    `json:"public"`
	RTT     float64 `json:"rtt"`  // milliseconds; 0 if not measured yet
	Seen    float64 `json:"seen"` // seconds since a packet from it arrived
	Suspect bool    `json:"suspect"`
	Relayed bool    `json:"relayed"`
	Kind    string  `json:"kind"` // "direct", "punched" or "relayed" (overlay.ContactInfo.Kind)
}

// ConnView is one QUIC connection.
type ConnView struct {
	Peer     string  `json:"peer"`
	Relayed  bool    `json:"relayed"`
	Kind     string  `json:"kind"` // "direct", "punched" or "relayed" (streams.Path.Kind)
	Local    string  `json:"local"`
	Remote   string  `json:"remote"`
	RTT      float64 `json:"rtt"` // milliseconds
	Streams  int     `json:"streams"`
	Incoming bool    `json:"incoming"`
	Age      float64 `json:"age"` // seconds
	Sent     uint64  `json:"sent"`
	Received uint64  `json:"received"`
}

// GroupView is this node's place in one group tree.
type GroupView struct {
	Key      string   `json:"key"`
	Root     bool     `json:"root"`
	Parent   string   `json:"parent"`
	Children []string `json:"children"`
	Members  int      `json:"members"`
}

// DHTView is the DHT records the node holds.
type DHTView struct {
	Records []RecordView `json:"records"`
	Total   int          `json:"total"` // every live value held; Records lists up to 500
	Bytes   int64        `json:"bytes"`
}

// RecordView is one value the node holds as a replica.
type RecordView struct {
	Key     string  `json:"key"`
	Owner   string  `json:"owner"`
	Size    int     `json:"size"`
	Expires float64 `json:"expires"` // seconds from now
}

// pos is where id sits on the ID ring, in [0, 1).
func pos(id overlay.ID) float64 {
	return float64(binary.BigEndian.Uint64(id[:8])>>11) / (1 << 53)
}

func idString(id overlay.ID) string {
	if id == (overlay.ID{}) {
		return ""
	}
	return id.String()
}

// natBehaviour says, in words, what the node knows of its NAT.
func natBehaviour(inf overlay.Info) string {
	switch {
	case !inf.Observed.IsValid():
		return "unknown (no contact has answered yet)"
	case inf.Public:
		return "none: public address"
	case inf.Symmetric:
		return "symmetric NAT (a mapping per destination)"
	default:
		return "NAT with one mapping for every destination (cone)"
	}
}

// Snapshot reads the node's state now.
func (s Source) Snapshot() Snapshot {
	now := time.Now()
	inf := s.Overlay.Info()
	sn := Snapshot{Time: now.UnixMilli(), Node: NodeView{ID: inf.ID.String(), Pos: pos(inf.ID), Network: inf.Network,
		Local: inf.LocalAddr.String(), NAT: natBehaviour(inf)}}
	if ua := s.Socket.LocalAddr(); ua != nil {
		sn.Node.Local = ua.String()
	}
	if inf.Observed.IsValid() {
		sn.Node.Observed = inf.Observed.String()
	}
	c := inf.Counters
	sc := s.Streams.Counters()
	_, _, _, sockDrops := s.Socket.Stats()
	sn.Counters = map[string]uint64{
		"packetsIn": c.PacketsIn, "packetsOut": c.PacketsOut, "bytesIn": c.BytesIn, "bytesOut": c.BytesOut,
		"sent": c.MessagesSent, "received": c.MessagesReceived, "forwarded": c.MessagesForwarded,
		"relayed": c.FramesRelayed, "retransmits": c.Retransmits, "dropped": c.Dropped + sockDrops,
		"contacts": uint64(inf.Contacts), "relayedContacts": uint64(inf.Relayed), "punchedContacts": uint64(inf.Punched),
		"conns": uint64(sc.Conns), "relayedConns": uint64(sc.RelayedConns), "punchedConns": uint64(sc.PunchedConns),
	}
	for _, ci := range s.Overlay.Table() {
		cv := ContactView{ID: ci.ID.String(), Pos: pos(ci.ID), Bucket: ci.Bucket, Via: idString(ci.Via),
			Public: ci.Public, RTT: float64(ci.RTT.Microseconds()) / 1000, Seen: now.Sub(ci.LastSeen).Seconds(),
			Suspect: ci.Suspect, Relayed: ci.Relayed(), Kind: string(ci.Kind())}
		if ci.Addr.IsValid() {
			cv.Addr = ci.Addr.String()
		}
		sn.Contacts = append(sn.Contacts, cv)
	}
	for _, ci := range s.Streams.Conns() {
		cv := ConnView{Peer: ci.Peer.String(), Relayed: ci.Path.Relayed, Kind: string(ci.Path.Kind), RTT: float64(ci.Path.RTT.Microseconds()) / 1000,
			Streams: ci.Streams, Incoming: ci.Incoming, Age: now.Sub(ci.Since).Seconds(),
			Sent: ci.BytesSent, Received: ci.BytesReceived}
		if ci.Path.Local != nil {
			cv.Local = ci.Path.Local.String()
		}
		if ci.Path.Remote != nil {
			cv.Remote = ci.Path.Remote.String()
		}
		sn.Conns = append(sn.Conns, cv)
	}
	for _, t := range s.Groups.Trees() {
		gv := GroupView{Key: t.Key.String(), Root: t.Root, Parent: idString(t.Parent), Members: t.Members,
			Children: []string{}}
		for _, ch := range t.Children {
			gv.Children = append(gv.Children, ch.String())
		}
		sn.Groups = append(sn.Groups, gv)
	}
	if d := s.dht(); d != nil {
		st := d.Stats()
		dv := &DHTView{Total: st.Records, Bytes: st.Bytes, Records: []RecordView{}}
		for _, h := range d.Held(maxHeld) {
			dv.Records = append(dv.Records, RecordView{Key: h.Key, Owner: h.Owner.String(), Size: h.Size,
				Expires: h.Expires.Sub(now).Seconds()})
		}
		sn.DHT = dv
	}
	return sn
}
