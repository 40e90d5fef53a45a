package nat

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
	"github.com/pion/turn/v2"
)

// Relay is a TURN server (pion/turn) that a public node runs for peers that
// cannot reach each other directly. It listens on a UDP socket of its own:
// TURN channel data starts with 0x40–0x4F, which QUIC would claim on the
// node's socket. Clients authenticate with short-lived credentials the relay
// hands out (TURN REST style: the username is the expiry time, the password
// an HMAC of it under a secret that never leaves the node).
type Relay struct {
	srv    *turn.Server
	pc     net.PacketConn
	secret string
	bytes  *relayBytes // what the relay sockets moved (relaybytes.go)
}

// Realm is the TURN realm of every p2psock relay.
const Realm = "p2psock"

// RelayConfig configures a Relay.
type RelayConfig struct {
	// PacketConn is the relay's socket; the Relay owns it.
	PacketConn net.PacketConn
	// PublicIP returns the IP peers reach this host at; relayed addresses
	// carry it. It is asked at each allocation, so it may change.
	PublicIP func() net.IP
	// Net opens the sockets of allocations; nil means the host's network.
	Net    transport.Net
	Logger *slog.Logger
}

// NewRelay starts a TURN server on cfg.PacketConn.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Net == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		cfg.Net = n
	}
	key := make([]byte, 32)
	rand.Read(key)
	r := &Relay{pc: cfg.PacketConn, secret: base64.StdEncoding.EncodeToString(key), bytes: &relayBytes{}}
	logs := slogFactory{cfg.Logger}
	gen := &relayAddrs{net: cfg.Net, publicIP: cfg.PublicIP, bindIP: cfg.PacketConn.LocalAddr().(*net.UDPAddr).IP, bytes: r.bytes}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         Realm,
		AuthHandler:   turn.NewLongTermAuthHandler(r.secret, logs.NewLogger("turn")),
		LoggerFactory: logs,
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            cfg.PacketConn,
			RelayAddressGenerator: gen,
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("nat: starting relay: %w", err)
	}
	r.srv = srv
	return r, nil
}

// Credentials returns a username and password valid for ttl.
func (r *Relay) Credentials(ttl time.Duration) (username, password string) {
	u, p, err := turn.GenerateLongTermCredentials(r.secret, ttl)
	if err != nil { // HMAC writes do not fail
		panic(err)
	}
	return u, p
}

// Port returns the relay's UDP port.
func (r *Relay) Port() int { return r.pc.LocalAddr().(*net.UDPAddr).Port }

// Addr returns the relay's socket address.
func (r *Relay) Addr() net.Addr { return r.pc.LocalAddr() }

// Allocations returns the number of live allocations.
func (r *Relay) Allocations() int { return r.srv.AllocationCount() }

// Close stops the server and closes its socket and allocations.
func (r *Relay) Close() error { return r.srv.Close() }

// relayAddrs allocates relay sockets on the relay's own IP, and names them
// with the public IP the node is reached at.
type relayAddrs struct {
	net      transport.Net
	publicIP func() net.IP
	bindIP   net.IP
	bytes    *relayBytes
}

func (g *relayAddrs) Validate() error { return nil }

func (g *relayAddrs) AllocatePacketConn(network string, port int) (net.PacketConn, net.Addr, error) {
	pc, err := g.net.ListenPacket(network, net.JoinHostPort(g.bindIP.String(), strconv.Itoa(port)))
	if err != nil {
		return nil, nil, err
	}
	ua, ok := pc.LocalAddr().(*net.UDPAddr)
	if !ok {
		pc.Close()
		return nil, nil, fmt.Errorf("nat: relay socket has no UDP address")
	}
	ip := ua.IP
	if g.publicIP != nil {
		if p := g.publicIP(); p != nil {
			ip = p
		}
	}
	return &countingConn{PacketConn: pc, b: g.bytes}, &net.UDPAddr{IP: ip, Port: ua.Port}, nil
}

func (g *relayAddrs) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, fmt.Errorf("nat: relay allocates UDP only")
}
