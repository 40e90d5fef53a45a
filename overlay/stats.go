package overlay

import "sync/atomic"

// Counters are the overlay's traffic counters since the node started.
type Counters struct {
	PacketsIn  uint64 // overlay frames received
	PacketsOut uint64 // overlay frames sent
	BytesIn    uint64 // bytes of the overlay frames received
	BytesOut   uint64 // bytes of the overlay frames sent

	MessagesSent      uint64 // messages this node originated and saw acknowledged
	MessagesReceived  uint64 // messages delivered to this node's receive queue
	MessagesForwarded uint64 // message fragments forwarded toward another node
	FramesRelayed     uint64 // frames relayed between two contacts behind NATs
	Retransmits       uint64 // route fragments and link messages sent again after a timeout

	Dropped            uint64 // every frame or message dropped, the sum of the reasons below
	DroppedMalformed   uint64 // undecodable frames
	DroppedWrongNet    uint64 // frames of another network
	DroppedForged      uint64 // bad signatures, or answers from the wrong node
	DroppedReplayed    uint64 // duplicate, stale or unsolicited messages and answers
	DroppedOversized   uint64 // frames or messages over the size limits
	DroppedQueueFull   uint64 // messages refused because the receive queue or reassembly space was full
	DroppedUnknownPeer uint64 // frames that need a link the sender does not have (intro, punch, relay requests)
	DroppedNoRoute     uint64 // fragments that could not be forwarded
	DroppedBusy        uint64 // fragments not taken for forwarding because Config.Workers goroutines were forwarding already
	DroppedBusyAcks    uint64 // acknowledgements and refusals not sent because Config.Workers goroutines were sending them already
	DroppedNoWork      uint64 // frames from senders, and contacts named in lookup answers, whose ID lacks the work Config.Difficulty asks
	// DroppedUndecryptable counts the sealed messages to this node, signed
	// by their origin, that did not open (sealed to another key, or
	// spoiled by their origin); a data message is refused to its origin.
	DroppedUndecryptable uint64
	// DroppedPathLost counts the Pings with FlagPathLost (docs/PROTOCOL.md,
	// §12.14) dropped because as many awaited the proof of their source.
	DroppedPathLost uint64
	// PathsLost counts the nodes that said their connection with this node
	// heard nothing and proved where they are now (OnPathLost).
	PathsLost uint64

	// RefusedSubnetBucket counts the verified nodes the routing table
	// refused (or kept on their old path) because their bucket held
	// Config.SubnetPerBucket contacts of their subnet already.
	RefusedSubnetBucket uint64
	// RefusedSubnetTable counts the same for the table's limit,
	// Config.SubnetPerTable.
	RefusedSubnetTable uint64

	// DroppedSourceShare counts partial messages (routed or link) dropped
	// or refused, and refusals not sent, because the source they are
	// charged to held its share of the table (Config.SourceShare) or the
	// table was full and that source was the heaviest.
	DroppedSourceShare uint64
	// DroppedRateLimited counts frames from strangers (sources that have
	// not proved their address) not answered or not checked because their
	// subnet, or all strangers together, were over Config.StrangerRate.
	DroppedRateLimited uint64
	// DroppedUnpaid counts Pings and Finds from strangers not answered
	// because the answer would have been larger than the frame (it was not
	// padded): a Find gets a challenge instead.
	DroppedUnpaid uint64

	// ForgottenDuplicates counts the delivered messages (routed or link)
	// forgotten by the duplicate tables before their time because their
	// origin held its share: a copy of one arriving later is taken again.
	ForgottenDuplicates uint64

	// Detours counts the messages this node sent again straight to the
	// node a lookup over disjoint paths found, because greedy routing got
	// no acknowledgement or an acknowledgement from a node that was not the
	// closest this node knew of.
	Detours uint64
	// LookupsContradicted counts the nodes that answered a lookup over
	// disjoint paths with contacts that other paths contradicted; they are
	// trusted last.
	LookupsContradicted uint64
	// RefusalsIgnored counts the refusals ("no route") of this node's
	// messages that did not end a Send: signed by a node other than the
	// destination (any forwarder can sign one), or of a message to a key.
	RefusalsIgnored uint64

	// NATProbes counts the filtering-test probes this node sent for its
	// contacts (CheckNAT); the requests over the rate are counted in
	// DroppedRateLimited.
	NATProbes uint64
	// DroppedClient counts the frames a light client (Config.Client) does
	// not serve (finds, relays, introductions, routed messages for other
	// nodes) and the frames a light client gets from another one.
	DroppedClient uint64
	// RefusedClients counts the light clients that proved their key and
	// address but found the attached-clients table full (Config.Clients)
	// or holding Config.ClientsPerSubnet clients of their subnet.
	RefusedClients uint64

	// ContactsSilent counts the contacts dropped from the routing table
	// because they answered no ping of a keepalive or liveness round within
	// its grace; ContactsUnacked those dropped because they missed hop
	// acknowledgements and then answered no probe; ContactsLeft those that
	// said they were leaving.
	ContactsSilent, ContactsUnacked, ContactsLeft uint64
	// RefreshLookups counts the lookups of the periodic routing-table
	// refresh, the lookup of the node's own ID included.
	RefreshLookups uint64
}

type counters struct {
	packetsIn, packetsOut, bytesIn, bytesOut        atomic.Uint64
	sent, received, forwarded, relayed, retransmits atomic.Uint64
	malformed, wrongNet, forged, replayed, oversize atomic.Uint64
	queueFull, unknownPeer, noRoute, sourceShare    atomic.Uint64
	forgotten, rateLimited, unpaid                  atomic.Uint64
	detours, contradicted, refusalsIgnored          atomic.Uint64
	noWork, refusedBucket, refusedTable             atomic.Uint64
	undecryptable                                   atomic.Uint64 // DroppedUndecryptable
	pathLost, pathLostDropped                       atomic.Uint64 // PathsLost, DroppedPathLost
	natProbes                                       atomic.Uint64 // NATProbes
	client, refusedClients                          atomic.Uint64
	silent, unacked, left, refreshLookups           atomic.Uint64
}

// countRefusal counts a node the routing table refused for diversity.
func (c *counters) countRefusal(r refusal) {
	switch r {
	case subnetInBucket:
		c.refusedBucket.Add(1)
	case subnetInTable:
		c.refusedTable.Add(1)
	}
}

// counters returns a snapshot of the overlay's counters.
func (o *Overlay) counters() Counters {
	s := o.ctr.snapshot()
	s.DroppedBusy = o.forwards.Dropped()
	s.DroppedBusyAcks = o.acksOut.Dropped()
	s.Dropped += s.DroppedBusy + s.DroppedBusyAcks
	return s
}

func (c *counters) snapshot() Counters {
	s := Counters{
		PacketsIn:           c.packetsIn.Load(),
		PacketsOut:          c.packetsOut.Load(),
		BytesIn:             c.bytesIn.Load(),
		BytesOut:            c.bytesOut.Load(),
		MessagesSent:        c.sent.Load(),
		MessagesReceived:    c.received.Load(),
		MessagesForwarded:   c.forwarded.Load(),
		FramesRelayed:       c.relayed.Load(),
		Retransmits:         c.retransmits.Load(),
		DroppedMalformed:    c.malformed.Load(),
		DroppedWrongNet:     c.wrongNet.Load(),
		DroppedForged:       c.forged.Load(),
		DroppedReplayed:     c.replayed.Load(),
		DroppedOversized:    c.oversize.Load(),
		DroppedQueueFull:    c.queueFull.Load(),
		DroppedUnknownPeer:  c.unknownPeer.Load(),
		DroppedNoRoute:      c.noRoute.Load(),
		DroppedSourceShare:  c.sourceShare.Load(),
		ForgottenDuplicates: c.forgotten.Load(),
		DroppedRateLimited:  c.rateLimited.Load(),
		DroppedUnpaid:       c.unpaid.Load(),
		Detours:             c.detours.Load(),
		LookupsContradicted: c.contradicted.Load(),
		DroppedNoWork:       c.noWork.Load(),
		RefusedSubnetBucket: c.refusedBucket.Load(),
		RefusedSubnetTable:  c.refusedTable.Load(),
		RefusalsIgnored:     c.refusalsIgnored.Load(),
		NATProbes:           c.natProbes.Load(),
	}
	s.DroppedUndecryptable = c.undecryptable.Load()
	s.PathsLost, s.DroppedPathLost = c.pathLost.Load(), c.pathLostDropped.Load()
	s.DroppedClient = c.client.Load()
	s.RefusedClients = c.refusedClients.Load()
	s.ContactsSilent, s.ContactsUnacked, s.ContactsLeft = c.silent.Load(), c.unacked.Load(), c.left.Load()
	s.RefreshLookups = c.refreshLookups.Load()
	s.Dropped = s.DroppedMalformed + s.DroppedWrongNet + s.DroppedForged + s.DroppedReplayed +
		s.DroppedOversized + s.DroppedQueueFull + s.DroppedUnknownPeer + s.DroppedNoRoute + s.DroppedNoWork +
		s.DroppedUndecryptable + s.DroppedPathLost + s.DroppedSourceShare + s.DroppedRateLimited + s.DroppedUnpaid + s.DroppedClient
	return s
}
