// Package view is a node's debug server: a web page of the node and what it
// knows of the network, updating live over server-sent events, and the
// node's Prometheus metrics.
//
// The page (assets/, embedded in the binary) shows the node's ID, addresses
// and NAT behaviour; its counters as small time-series charts (uPlot); its
// routing table as a picture of the ID ring (Cytoscape.js) with every
// contact placed at its ID, coloured by bucket, its link drawn by kind
// (overlay.PathKind: direct to the contact's own address, punched to its
// NAT's mapping, or relayed from the contact that relays it), with its RTT;
// its QUIC connections with their paths' kinds and throughput; the group trees it is part of; and the
// DHT records it holds. The server sends the page a Snapshot every
// Config.Interval on /events; /api/snapshot returns one; /metrics is the
// Prometheus exposition of NewCollector.
//
// The front door starts a server for Config.DebugAddr:
//
//	n, _ := p2psock.NewNode(p2psock.Config{DebugAddr: "127.0.0.1:8080"})
//	// open http://127.0.0.1:8080/ in a browser
package view
