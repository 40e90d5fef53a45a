package p2psock

import (
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2psock/p2psock/internal/view"
)

// Collector returns a prometheus.Collector of the node's counters, gauges
// and latency histograms: messages by kind, drops by reason, lookups and
// their rounds, connections by path, relay bytes, group and DHT operations
// (of the DHT started on the node with dht.New, if any). Every name begins
// with p2psock_. The node registers nothing itself: register the collector
// with a registry of the program's, as
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(n.Collector())
//
// Config.DebugAddr serves the same metrics at /metrics.
func (n *Node) Collector() prometheus.Collector { return view.NewCollector(n.viewSource()) }

// viewSource is the node as the debug server and the collector read it.
func (n *Node) viewSource() view.Source {
	return view.Source{Overlay: n.ov, Groups: n.groups, Streams: n.eng, Socket: n.sock}
}

// DebugAddr returns the TCP address of the node's debug server
// (Config.DebugAddr): open http://<address>/ in a browser. It is nil when the
// node runs none.
func (n *Node) DebugAddr() net.Addr {
	if n.debug == nil {
		return nil
	}
	return n.debug.Addr()
}

// startDebug starts the server of Config.DebugAddr, if set.
func (n *Node) startDebug() error {
	if n.cfg.DebugAddr == "" {
		return nil
	}
	s, err := view.Listen(n.cfg.DebugAddr, n.viewSource(), view.Config{})
	if err != nil {
		return fmt.Errorf("p2psock: debug server: %w", err)
	}
	n.debug = s
	return nil
}
