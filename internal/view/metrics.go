package view

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2psock/p2psock/internal/metrics"
	"github.com/p2psock/p2psock/overlay"
)

// pathKinds are the values of the path label, in the order they are shown.
var pathKinds = [...]overlay.PathKind{overlay.PathDirect, overlay.PathPunched, overlay.PathRelayed}

// collector is a node's prometheus.Collector: every figure is read from the
// node when Prometheus scrapes it, so nothing is kept twice.
type collector struct {
	src   Source
	descs map[string]*prometheus.Desc
}

// metricDef is one of the collector's metrics: its name (after the
// p2psock_ prefix), help and variable labels.
type metricDef struct {
	name, help string
	labels     []string
}

// metricDefs returns the collector's metrics.
func metricDefs() []metricDef {
	return []metricDef{
		{"node_info", "The node: always 1, its ID and network as labels.", []string{"id", "network"}},
		{"overlay_packets_total", "Overlay frames received (in) and sent (out).", []string{"direction"}},
		{"overlay_bytes_total", "Bytes of the overlay frames received (in) and sent (out).", []string{"direction"}},
		{"messages_total", "Messages by kind: sent (originated and acknowledged), received (delivered to this node), forwarded (fragments passed on toward another node).", []string{"kind"}},
		{"frames_relayed_total", "Overlay frames this node relayed between two contacts behind NATs.", nil},
		{"retransmits_total", "Route fragments and link messages sent again after a timeout.", nil},
		{"dropped_total", "Frames, messages and packets dropped, by reason.", []string{"reason"}},
		{"contacts_refused_total", "Verified nodes the routing table refused for diversity, by the limit that refused them.", []string{"limit"}},
		{"detours_total", "Messages sent again straight to the node a disjoint lookup found.", nil},
		{"lookup_contradictions_total", "Nodes whose lookup answers other disjoint paths contradicted.", nil},
		{"contacts", "Contacts in the routing table, by path: direct (the contact's own address), punched (its NAT's mapping), relayed (through another contact).", []string{"path"}},
		{"buckets", "Non-empty buckets of the routing table.", nil},
		{"lookup_duration_seconds", "How long the node's iterative lookups took.", nil},
		{"lookup_rounds", "Rounds of queries (hops) the node's iterative lookups took.", nil},
		{"connections", "Live QUIC connections, one per peer, by path: direct (the peer's own address), punched (its NAT's mapping), relayed (TURN or a circuit).", []string{"path"}},
		{"connection_bytes", "Bytes QUIC sent and received on the live connections, by path and direction.", []string{"path", "direction"}},
		{"ice_sessions", "ICE sessions in progress.", nil},
		{"ice_no_path_total", "ICE sessions that found no path.", nil},
		{"streams_waiting", "Streams waiting for Accept.", nil},
		{"streams_refused_total", "Streams peers opened that the node refused, by reason.", []string{"reason"}},
		{"connections_refused_total", "QUIC connections refused, by reason.", []string{"reason"}},
		{"connections_closed_total", "QUIC connections the node closed to make room, by reason.", []string{"reason"}},
		{"offers_refused_total", "Connection offers refused, by reason.", []string{"reason"}},
		{"signals_dropped_total", "Malformed signalling or relay messages dropped.", nil},
		{"stun_requests_total", "STUN packets, by result.", []string{"result"}},
		{"quic_retries_total", "QUIC Retries sent to sources no ICE session validated.", nil},
		{"ice_dropped_total", "ICE work not done, by reason.", []string{"reason"}},
		{"relay_allocations", "Live allocations on this node's TURN relay.", nil},
		{"relay_bytes_total", "Bytes this node's TURN relay moved for its clients: from their peers (in) and to them (out).", []string{"direction"}},
		{"group_trees", "Group trees this node is part of.", nil},
		{"group_operations_total", "The program's group calls that ended, by operation.", []string{"op"}},
		{"group_operation_errors_total", "The program's group calls that ended with an error, by operation.", []string{"op"}},
		{"group_operation_duration_seconds", "How long the program's group calls took, by operation.", []string{"op"}},
		{"group_dropped_total", "Group messages dropped or refused, by reason.", []string{"reason"}},
		{"dht_records", "Live values this node holds as a replica.", nil},
		{"dht_tombstones", "Tombstones of removed values this node holds.", nil},
		{"dht_stored_bytes", "What the records and tombstones held cost, in bytes.", nil},
		{"dht_watchers", "Watch registrations this node holds.", nil},
		{"dht_operations_total", "The program's DHT calls that ended, by operation.", []string{"op"}},
		{"dht_operation_errors_total", "The program's DHT calls that ended with an error, by operation.", []string{"op"}},
		{"dht_operation_duration_seconds", "How long the program's DHT calls took, by operation.", []string{"op"}},
		{"dht_refused_total", "Stores this node did not keep as a replica, by reason.", []string{"reason"}},
		{"dht_evicted_total", "Records dropped to make room for a subnet holding a smaller share.", nil},
		{"dht_notifications_dropped_total", "Watch notifications not sent for lack of workers.", nil},
	}
}

// NewCollector returns a prometheus.Collector of the node's counters,
// gauges and histograms. It registers nothing: the caller registers it
// with a registry of its own.
func NewCollector(src Source) prometheus.Collector {
	defs := metricDefs()
	c := &collector{src: src, descs: make(map[string]*prometheus.Desc, len(defs))}
	for _, d := range defs {
		c.descs[d.name] = prometheus.NewDesc("p2psock_"+d.name, d.help, d.labels, nil)
	}
	return c
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads the node and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(name string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	histogram := func(name string, s metrics.Snapshot, labels ...string) {
		ch <- prometheus.MustNewConstHistogram(c.descs[name], s.Count, s.Sum, s.Buckets, labels...)
	}
	src := c.src
	inf := src.Overlay.Info()
	gauge("node_info", 1, inf.ID.String(), inf.Network)

	k := inf.Counters
	counter("overlay_packets_total", k.PacketsIn, "in")
	counter("overlay_packets_total", k.PacketsOut, "out")
	counter("overlay_bytes_total", k.BytesIn, "in")
	counter("overlay_bytes_total", k.BytesOut, "out")
	counter("messages_total", k.MessagesSent, "sent")
	counter("messages_total", k.MessagesReceived, "received")
	counter("messages_total", k.MessagesForwarded, "forwarded")
	counter("frames_relayed_total", k.FramesRelayed)
	counter("retransmits_total", k.Retransmits)
	_, _, _, sockDrops := src.Socket.Stats()
	for reason, v := range map[string]uint64{
		"malformed": k.DroppedMalformed, "wrong_network": k.DroppedWrongNet, "forged": k.DroppedForged,
		"replayed": k.DroppedReplayed, "oversized": k.DroppedOversized, "queue_full": k.DroppedQueueFull,
		"unknown_peer": k.DroppedUnknownPeer, "no_route": k.DroppedNoRoute, "busy": k.DroppedBusy,
		"busy_acks": k.DroppedBusyAcks, "no_work": k.DroppedNoWork, "undecryptable": k.DroppedUndecryptable,
		"socket_queue": sockDrops,
	} {
		counter("dropped_total", v, reason)
	}
	counter("contacts_refused_total", k.RefusedSubnetBucket, "subnet_per_bucket")
	counter("contacts_refused_total", k.RefusedSubnetTable, "subnet_per_table")
	counter("detours_total", k.Detours)
	counter("lookup_contradictions_total", k.LookupsContradicted)

	buckets := map[int]bool{}
	contacts := map[overlay.PathKind]int{}
	for _, ci := range src.Overlay.Table() {
		buckets[ci.Bucket] = true
		contacts[ci.Kind()]++
	}
	for _, k := range pathKinds {
		gauge("contacts", float64(contacts[k]), string(k))
	}
	gauge("buckets", float64(len(buckets)))
	ls := src.Overlay.LookupStats()
	histogram("lookup_duration_seconds", ls.Latency)
	histogram("lookup_rounds", ls.Rounds)

	s := src.Streams.Counters()
	type connFigures struct{ n, sent, received uint64 }
	conns := map[overlay.PathKind]*connFigures{}
	for _, k := range pathKinds {
		conns[k] = &connFigures{}
	}
	for _, ci := range src.Streams.Conns() {
		if f := conns[ci.Path.Kind]; f != nil {
			f.n++
			f.sent += ci.BytesSent
			f.received += ci.BytesReceived
		}
	}
	for _, k := range pathKinds {
		f := conns[k]
		gauge("connections", float64(f.n), string(k))
		gauge("connection_bytes", float64(f.sent), string(k), "sent")
		gauge("connection_bytes", float64(f.received), string(k), "received")
	}
	gauge("ice_sessions", float64(s.Sessions))
	counter("ice_no_path_total", s.NoPath)
	gauge("streams_waiting", float64(s.Waiting))
	counter("streams_refused_total", s.QueueFull, "queue_full")
	counter("streams_refused_total", s.PeerQueueFull, "peer_queue_full")
	counter("streams_refused_total", s.Unaccepted, "unaccepted")
	counter("streams_refused_total", s.BadStreams, "bad_stream")
	counter("connections_refused_total", s.ConnsPerIP, "per_ip")
	counter("connections_refused_total", s.ConnsPerSubnet, "per_subnet")
	counter("connections_refused_total", s.ConnsFull, "full")
	counter("connections_closed_total", s.ConnsEvicted, "evicted")
	counter("connections_closed_total", s.ConnsReplaced, "replaced")
	counter("offers_refused_total", s.OffersEmpty, "no_candidate")
	counter("offers_refused_total", s.OffersPerPeer, "per_peer")
	counter("offers_refused_total", s.OffersPerSubnet, "per_subnet")
	counter("offers_refused_total", s.OffersFull, "full")
	counter("signals_dropped_total", s.BadSignals)
	counter("stun_requests_total", s.STUNAnswered, "answered")
	counter("stun_requests_total", s.STUNDropped, "dropped")
	counter("quic_retries_total", s.Retries)
	counter("ice_dropped_total", s.SessionsEvicted, "session_evicted")
	counter("ice_dropped_total", s.Candidates, "candidate_over_bound")
	counter("ice_dropped_total", s.ChecksThrottled, "check_throttled")
	gauge("relay_allocations", float64(s.Allocations))
	rin, rout := src.Streams.RelayBytes()
	counter("relay_bytes_total", rin, "in")
	counter("relay_bytes_total", rout, "out")

	gauge("group_trees", float64(len(src.Groups.Trees())))
	for _, op := range src.Groups.Ops() {
		counter("group_operations_total", op.Calls, op.Name)
		counter("group_operation_errors_total", op.Errors, op.Name)
		histogram("group_operation_duration_seconds", op.Latency, op.Name)
	}
	gs := src.Groups.Stats()
	counter("group_dropped_total", gs.Busy, "busy")
	counter("group_dropped_total", gs.Malformed, "malformed")
	counter("group_dropped_total", gs.BadEnvelope, "bad_envelope")
	counter("group_dropped_total", gs.Refused, "refused")
	counter("group_dropped_total", gs.MemberFull, "member_queue_full")
	counter("group_dropped_total", gs.GivenUp, "child_gave_up")

	d := src.dht()
	if d == nil {
		return
	}
	ds := d.Stats()
	gauge("dht_records", float64(ds.Records))
	gauge("dht_tombstones", float64(ds.Tombstones))
	gauge("dht_stored_bytes", float64(ds.Bytes))
	gauge("dht_watchers", float64(ds.Watchers))
	for _, op := range d.Ops() {
		counter("dht_operations_total", op.Calls, op.Name)
		counter("dht_operation_errors_total", op.Errors, op.Name)
		histogram("dht_operation_duration_seconds", op.Latency, op.Name)
	}
	counter("dht_refused_total", ds.RefusedOwner, "owner_share")
	counter("dht_refused_total", ds.RefusedSubnet, "subnet_share")
	counter("dht_refused_total", ds.RefusedFull, "full")
	counter("dht_refused_total", ds.RefusedPerKey, "per_key")
	counter("dht_refused_total", ds.RefusedInvalid, "invalid")
	counter("dht_refused_total", ds.RefusedStale, "stale")
	counter("dht_refused_total", ds.RefusedWatches, "watchers")
	counter("dht_evicted_total", ds.Evicted)
	counter("dht_notifications_dropped_total", ds.DroppedNotifications)
}
