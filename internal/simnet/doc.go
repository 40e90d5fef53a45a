// Package simnet is a simulated Internet for tests. It runs overlay nodes
// behind simulated NATs inside one test process, without root, on top of
// pion's virtual network, github.com/pion/transport/v2/vnet.
//
// # Topology
//
// New creates a Network: a running vnet WAN router for the address block
// WANCIDR (1.0.0.0/8). Network.AddHost adds hosts, also while traffic flows:
//
//   - A Public host gets the next WAN address (1.0.1.1, 1.0.2.1, ...: a /24
//     each) on the WAN router itself.
//   - Any other Kind gets its own LAN router for 10.X.Y.0/24, where the host
//     is 10.X.Y.2, behind a NAT of that kind whose external address is the
//     next WAN address. There is exactly one host behind each NAT, so
//     hairpinning (which vnet does not implement) never matters.
//
// Host.ListenUDP opens sockets; Host.Net exposes the vnet stack itself for
// libraries that take one, such as pion/ice. Network.Close closes all sockets
// opened with ListenUDP and stops every router.
//
// # NAT behaviour
//
// The kinds map onto vnet's RFC 4787 parameters as follows, and the tests
// check each of them:
//
//	Kind            mapping                   filtering
//	FullCone        endpoint-independent      endpoint-independent
//	Restricted      endpoint-independent      address-dependent
//	PortRestricted  endpoint-independent      address-and-port-dependent
//	Symmetric       address-and-port-dep.     address-and-port-dependent
//
// A NAT drops inbound datagrams it has no permission for silently, like a
// real one. Mappings live for NATMappingLifetime (5 minutes) after the last
// outbound datagram; inbound traffic does not refresh them.
//
// Every NAT hands out external ports sequentially from 49152, never reusing
// one, so a symmetric NAT's next port is trivially predictable (unlike most
// real ones), and a NAT can create at most 16384 mappings in its lifetime.
// The next one makes vnet fail with "invalid port" on an out-of-range port
// and permanently stops that NAT's router, cutting its host off. An
// endpoint-independent NAT uses one mapping per socket; a symmetric NAT one
// per socket and destination ip:port.
//
// # Limits and performance
//
// Measured on a 2-core 2.5 GHz Xeon with Go 1.26:
//
//   - Size: vnet enforces no MTU. Datagrams of any size up to the largest
//     IPv4 UDP payload (65507 bytes, tested) pass whole, through NATs in both
//     directions, so 1280-byte datagrams are no problem. There is no
//     fragmentation and no path MTU to discover.
//   - Hosts: creating a host takes about 60 µs (about 300 µs with -race).
//     100 hosts of mixed kinds take about 6 ms to create; each NAT adds one
//     idle goroutine. Address space allows 65535 NATed hosts and about 16
//     million WAN addresses.
//   - Latency: routers are configured with no delay and no jitter. A datagram
//     still passes through one goroutine per router: a 1280-byte round trip
//     between a NATed and a public host takes about 36 µs. All traffic of a
//     Network is serialised through the single WAN router goroutine; sending
//     3960 datagrams between 100 hosts takes about 70 ms.
//   - Drops: router queues are unbounded, so routers never drop and writes
//     never block. Each socket, however, queues at most 1024 unread
//     datagrams and silently drops any more until it is read. Datagrams to an
//     address or port nobody listens on vanish without an ICMP error, and
//     datagrams sent after Network.Close are discarded.
//   - Only UDP over IPv4 exists: vnet has no TCP and no IPv6.
//
// # Sockets
//
// Raw vnet sockets differ from *net.UDPConn in ways that break quic-go and
// deadline-driven code; sockets from Host.ListenUDP correct them (sticky read
// deadlines, net.ErrClosed, silent truncation, no-op buffer sizing; see
// ListenUDP). With them, a quic.Transport works over simnet: handshakes,
// streams, Transport.WriteTo and Transport.ReadNonQUICPacket, and
// Transport.Close returns at once (it unblocks its reader with a read
// deadline). Note that a Transport discards non-QUIC packets that arrive
// before its first ReadNonQUICPacket call.
//
// # ICE and STUN
//
// Pass Host.Net as the Net of pion components. They then use raw vnet
// sockets, without the corrections above. Server-reflexive candidates need a
// STUN or TURN server, which must itself listen on a Public host's Net. Only
// udp4 candidates can be gathered.
//
// vnet logs through pion/logging; set for example PION_LOG_DEBUG=vnet to see
// every routed and every dropped datagram.
package simnet
