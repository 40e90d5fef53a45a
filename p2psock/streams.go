package p2psock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
)

// streamVersion is the byte a Connect writes first on each stream, so that
// the peer's Accept sees the stream at once (QUIC announces a stream with its
// first data) and so that the stream protocol can evolve.
const streamVersion byte = 1

// QUIC application error codes this node closes connections with.
const (
	closeNodeClosed quic.ApplicationErrorCode = 0x100 // the node is closing
	closeReplaced   quic.ApplicationErrorCode = 0x101 // a newer connection to the same peer replaced it
	closeBadStream  quic.ApplicationErrorCode = 0x102 // a stream began with an unknown version byte
)

// quicConfig is the configuration of every QUIC connection of a node.
func quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           5 * time.Second,
		MaxIdleTimeout:                 30 * time.Second,
		KeepAlivePeriod:                10 * time.Second, // holds NAT mappings of direct paths open
		MaxIncomingStreams:             4096,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     1 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 2 << 20,
		MaxConnectionReceiveWindow:     32 << 20,
	}
}

// peerConn is the one QUIC connection a node keeps with a peer; every stream
// between them is a stream of it.
type peerConn struct {
	id      ID
	qc      *quic.Conn
	relayed bool
	tr      *quic.Transport // a transport of its own over a relayed ICE path; nil on the node's socket
	// closeAgent closes the ICE agent kept for a path whose other end is a
	// relay candidate (nil if none); keeps is its session.
	closeAgent func()
	keeps      *session
	lastFin    atomic.Int64 // when a stream of it last closed its sending side (unix ns)
	leaving    atomic.Bool  // the peer said its node is closing (SignalClose)

	mu    sync.Mutex
	conns map[*Conn]struct{} // Conns of it not yet closed by the application
}

func (p *peerConn) addConn(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = make(map[*Conn]struct{})
	}
	p.conns[c] = struct{}{}
}

// connClosed records that the application closed c; the last one closes a
// connection whose peer is leaving.
func (p *peerConn) connClosed(c *Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	last := len(p.conns) == 0
	p.mu.Unlock()
	if last && p.leaving.Load() {
		p.qc.CloseWithError(0, "peer left")
	}
}

// openConns returns the Conns the application has not closed.
func (p *peerConn) openConns() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Conn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

// peerLeft marks p as the connection of a node that is closing: no new
// stream goes on it, and it closes once the application has read and closed
// what is open (or at the idle timeout).
func (p *peerConn) peerLeft() {
	p.leaving.Store(true)
	p.mu.Lock()
	none := len(p.conns) == 0
	p.mu.Unlock()
	if none {
		p.qc.CloseWithError(0, "peer left")
	}
}

// maxLinger bounds how long Node.Close waits for streams that have just
// closed their sending side.
const maxLinger = time.Second

// linger waits, at most maxLinger, until no connection of peers whose
// streams closed their sending side has sent anything for two probe timeouts
// (RFC 9002: srtt + 4·rttvar + max_ack_delay), counted from the last close
// at the earliest: what quic-go still held of those streams has gone out,
// and its last packets had time to be acknowledged, or lost and sent again.
// Closing a stream does not wait for its data to leave, and on a slow path
// (a relay) a fixed wait after the close cut the end off.
func linger(peers []*peerConn) {
	type watch struct {
		pc    *peerConn
		sent  uint64
		quiet time.Time // since when it has sent nothing
	}
	var ws []*watch
	for _, pc := range peers {
		if last := pc.lastFin.Load(); last != 0 {
			ws = append(ws, &watch{pc: pc, sent: pc.qc.ConnectionStats().BytesSent, quiet: time.Unix(0, last)})
		}
	}
	deadline := time.Now().Add(maxLinger)
	for len(ws) > 0 && time.Now().Before(deadline) {
		now := time.Now()
		ws = slices.DeleteFunc(ws, func(w *watch) bool {
			st := w.pc.qc.ConnectionStats()
			if st.BytesSent != w.sent {
				w.sent, w.quiet = st.BytesSent, now
			}
			pto := st.SmoothedRTT + 4*st.MeanDeviation + 25*time.Millisecond
			return now.Sub(w.quiet) >= 2*pto
		})
		if len(ws) > 0 {
			time.Sleep(5 * time.Millisecond) // quic-go reports no "all acknowledged": poll its counters
		}
	}
}

func (p *peerConn) path() PathInfo {
	return PathInfo{Relayed: p.relayed, Local: p.qc.LocalAddr(), Remote: p.qc.RemoteAddr(),
		RTT: p.qc.ConnectionStats().SmoothedRTT}
}

// release frees what the connection held besides itself: a relayed path's
// transport and its ICE connection (quic-go does not close a socket it was
// given), or the ICE agent kept for the peer's relay.
func (p *peerConn) release() {
	if p.tr != nil {
		p.tr.Close()
		p.tr.Conn.Close()
	}
	if p.closeAgent != nil {
		p.closeAgent()
	}
}

func (p *peerConn) alive() bool { return p.qc.Context().Err() == nil && !p.leaving.Load() }

// streams is a node's connection state: live connections by peer,
// establishments in progress, and the queue of accepted streams.
type streams struct {
	mu       sync.Mutex
	peers    map[ID]*peerConn
	dials    map[ID]*dial
	sessions map[[8]byte]*session
	viaRelay map[ID]*session // peers whose QUIC comes from their relay address: the session whose agent to keep
	closed   bool

	accepted chan *Conn
	ln       *quic.Listener
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stats    sessionStats
	relays   relayCache
}

// dial is the establishment of a connection to a peer: by this node's
// Connect (outgoing) or by the peer's offer. Every Connect to the peer waits
// for it.
type dial struct {
	done     chan struct{}
	pc       *peerConn
	err      error
	incoming bool               // the peer's offer owns it now
	cancel   context.CancelFunc // of this node's outgoing attempt, if any
}

func (n *Node) startStreams() error {
	st := &n.st
	st.peers = make(map[ID]*peerConn)
	st.dials = make(map[ID]*dial)
	st.sessions = make(map[[8]byte]*session)
	st.viaRelay = make(map[ID]*session)
	st.accepted = make(chan *Conn, n.cfg.AcceptQueue)
	st.ctx, st.cancel = context.WithCancel(context.Background())
	ln, err := n.sock.Transport().Listen(n.serverTLS(), quicConfig())
	if err != nil {
		return fmt.Errorf("p2psock: QUIC listener: %w", err)
	}
	st.ln = ln
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		n.acceptConns(ln, nil, ID{})
	}()
	return nil
}

// acceptConns adopts the QUIC connections ln accepts. On a relayed path's own
// transport (tr non-nil) it takes one connection, from want only.
func (n *Node) acceptConns(ln *quic.Listener, tr *quic.Transport, want ID) {
	for {
		qc, err := ln.Accept(n.st.ctx)
		if err != nil {
			return
		}
		id, err := connPeer(qc)
		if err != nil || (tr != nil && id != want) {
			qc.CloseWithError(0, "unexpected peer")
			continue
		}
		n.st.mu.Lock()
		keep := n.st.viaRelay[id]
		n.st.mu.Unlock()
		pc := &peerConn{id: id, qc: qc, relayed: tr != nil || keep != nil, tr: tr, keeps: keep}
		if keep != nil {
			pc.closeAgent = keep.closeAgent
		}
		n.adopt(pc)
		if tr != nil {
			return
		}
	}
}

// connPeer returns the ID the peer of an established connection proved.
func connPeer(qc *quic.Conn) (ID, error) {
	certs := qc.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 {
		return ID{}, ErrPeerIdentity
	}
	return peerID([][]byte{certs[0].Raw})
}

// adopt makes pc the connection to its peer: later Connects open streams on
// it, its streams are accepted, and a dial waiting for it completes.
func (n *Node) adopt(pc *peerConn) {
	st := &n.st
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		pc.qc.CloseWithError(closeNodeClosed, "node closed")
		pc.release()
		return
	}
	st.peers[pc.id] = pc
	if d := st.dials[pc.id]; d != nil {
		delete(st.dials, pc.id)
		d.pc = pc
		close(d.done)
	}
	st.wg.Add(1)
	st.mu.Unlock()
	n.cfg.Logger.Debug("connection up", "peer", pc.id.String()[:8], "relayed", pc.relayed,
		"remote", pc.qc.RemoteAddr().String())
	go func() {
		defer st.wg.Done()
		n.acceptStreams(pc)
	}()
}

// acceptStreams hands the peer's streams to Accept until the connection ends.
func (n *Node) acceptStreams(pc *peerConn) {
	defer func() {
		st := &n.st
		st.mu.Lock()
		if st.peers[pc.id] == pc {
			delete(st.peers, pc.id)
		}
		st.mu.Unlock()
		pc.release()
	}()
	for {
		s, err := pc.qc.AcceptStream(n.st.ctx)
		if err != nil {
			if n.st.ctx.Err() == nil {
				pc.qc.CloseWithError(closeNodeClosed, "connection failed")
			} // else closeStreams decides how the connection ends
			return
		}
		n.st.wg.Add(1)
		go func() {
			defer n.st.wg.Done()
			n.admitStream(pc, s)
		}()
	}
}

// admitStream reads the stream's version byte and queues it for Accept.
func (n *Node) admitStream(pc *peerConn, s *quic.Stream) {
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	var v [1]byte
	if _, err := s.Read(v[:]); err != nil || v[0] != streamVersion {
		s.CancelRead(quic.StreamErrorCode(closeBadStream))
		s.CancelWrite(quic.StreamErrorCode(closeBadStream))
		return
	}
	s.SetReadDeadline(time.Time{})
	c := newConn(s, pc, n.ID())
	select {
	case n.st.accepted <- c:
	case <-n.st.ctx.Done():
		s.CancelRead(0)
		s.CancelWrite(0)
	}
}

// Accept waits for the next stream a peer opened to this node with Connect.
// It implements net.Listener; the net.Conn is a *Conn. After Close it fails
// with net.ErrClosed.
func (n *Node) Accept() (net.Conn, error) {
	c, err := n.AcceptContext(context.Background())
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptContext is Accept with a context.
func (n *Node) AcceptContext(ctx context.Context) (*Conn, error) {
	select {
	case c := <-n.st.accepted:
		return c, nil
	case <-ctx.Done():
		return nil, n.acceptErr(ctx.Err())
	case <-n.st.ctx.Done():
		return nil, n.acceptErr(net.ErrClosed)
	}
}

func (n *Node) acceptErr(err error) error {
	return &net.OpError{Op: "accept", Net: "p2p", Addr: n.Addr(), Err: err}
}

// Addr returns this node's *Addr (net.Listener's Addr).
func (n *Node) Addr() net.Addr { return &Addr{n.ID()} }

// Connect opens a stream to the node with ID remote. The first Connect to a
// peer finds a path with ICE (signalled through the overlay; a TURN relay if
// no direct path works) and sets up a QUIC connection whose TLS handshake
// proves the peer holds remote's key; later Connects to the same peer, and
// Connects the peer makes, open further streams on that one connection. If
// both nodes connect to each other at once, they end up with one connection.
//
// Connect fails with ErrUnreachable when no node with ID remote answers in
// the network, ErrNoPath when ICE found no working path, ErrPeerIdentity when
// the peer could not prove its ID, and with the context's error (a net.Error
// whose Timeout is true for a deadline) when ctx ends first; when ctx has no
// deadline, Config.ConnectTimeout bounds it. Errors are *net.OpError.
func (n *Node) Connect(ctx context.Context, remote ID) (*Conn, error) {
	if err := n.ready("dial"); err != nil {
		return nil, err
	}
	if remote == n.ID() {
		return nil, n.dialErr(remote, errors.New("p2psock: connect to self"))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ConnectTimeout)
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		pc, err := n.peerConn(ctx, remote)
		if err != nil {
			return nil, n.dialErr(remote, err)
		}
		s, err := pc.qc.OpenStreamSync(ctx)
		if err == nil {
			if _, err = s.Write([]byte{streamVersion}); err == nil {
				return newConn(s, pc, n.ID()), nil
			}
		}
		if ctx.Err() != nil || attempt > 0 || pc.alive() {
			return nil, n.dialErr(remote, err)
		}
		// The connection died under us (the peer restarted, say): forget it
		// and set up a new one, once.
		n.forget(pc)
	}
}

func (n *Node) dialErr(remote ID, err error) error {
	return &net.OpError{Op: "dial", Net: "p2p", Source: n.Addr(), Addr: &Addr{remote}, Err: err}
}

func (n *Node) forget(pc *peerConn) {
	n.st.mu.Lock()
	if n.st.peers[pc.id] == pc {
		delete(n.st.peers, pc.id)
	}
	n.st.mu.Unlock()
}

// peerConn returns the live connection to remote, setting one up if needed.
func (n *Node) peerConn(ctx context.Context, remote ID) (*peerConn, error) {
	st := &n.st
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, net.ErrClosed
	}
	if pc := st.peers[remote]; pc != nil && pc.alive() {
		st.mu.Unlock()
		return pc, nil
	}
	d := st.dials[remote]
	if d == nil {
		d = &dial{done: make(chan struct{})}
		var actx context.Context
		actx, d.cancel = context.WithCancel(ctx)
		st.dials[remote] = d
		st.mu.Unlock()
		pc, err := n.dialPeer(actx, remote)
		d.cancel()
		st.mu.Lock()
		switch {
		case pc != nil:
			// adopt completed d (and registered pc)
		case d.incoming || errors.Is(err, errYield):
			// The peer's own offer took over; wait for it below.
		case st.dials[remote] == d:
			delete(st.dials, remote)
			d.err = err
			close(d.done)
		}
		st.mu.Unlock()
		if pc != nil {
			n.adopt(pc)
			return pc, nil
		}
	} else {
		st.mu.Unlock()
	}
	select {
	case <-d.done:
		if d.err != nil {
			return nil, d.err
		}
		return d.pc, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// closeStreams ends every connection, ICE session and relay allocation, and
// waits for their goroutines.
func (n *Node) closeStreams() {
	st := &n.st
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return
	}
	st.closed = true
	peers := make([]*peerConn, 0, len(st.peers))
	for _, pc := range st.peers {
		peers = append(peers, pc)
	}
	sessions := make([]*session, 0, len(st.sessions))
	for _, s := range st.sessions {
		sessions = append(sessions, s)
		s.fail()
	}
	for id, d := range st.dials {
		delete(st.dials, id)
		d.err = net.ErrClosed
		close(d.done)
	}
	st.mu.Unlock()
	if st.cancel != nil {
		st.cancel()
	}
	if st.ln != nil {
		st.ln.Close()
	}
	// Like a TCP close, let the end of a stream closed a moment ago reach
	// the peer before the connection goes, and let the peer read what it has
	// received: a peer that acknowledges the goodbye drops the connection
	// itself once its application is done, so this side goes away silently
	// (a QUIC CONNECTION_CLOSE would discard the peer's unread data).
	for _, pc := range peers {
		for _, c := range pc.openConns() {
			c.Close() // the peer reads EOF after what was written
		}
	}
	told := n.sayGoodbye(peers)
	linger(peers)
	for i, pc := range peers {
		if !told[i] {
			pc.qc.CloseWithError(closeNodeClosed, "node closed")
		}
	}
	for _, s := range sessions {
		s.closeAgent()
	}
	st.wg.Wait()
	for _, pc := range peers {
		pc.release()
	}
	if n.ice != nil {
		n.ice.Close()
	}
	if n.relay != nil {
		n.relay.Close()
	}
}

// goodbyeWait bounds how long Node.Close waits for its peers to acknowledge
// that it is closing.
const goodbyeWait = 500 * time.Millisecond

// sayGoodbye tells each peer, in parallel, that this node is closing, and
// reports which acknowledged.
func (n *Node) sayGoodbye(peers []*peerConn) []bool {
	told := make([]bool, len(peers))
	if len(peers) == 0 {
		return told
	}
	msg, _ := wire.AppendSignal(nil, wire.Signal{Kind: wire.SignalClose})
	ctx, cancel := context.WithTimeout(context.Background(), goodbyeWait)
	defer cancel()
	var wg sync.WaitGroup
	for i, pc := range peers {
		if !pc.alive() {
			continue
		}
		wg.Go(func() {
			_, _, err := n.ov.SendService(ctx, wire.ServiceSignal, msg, pc.id.Key(), false)
			told[i] = err == nil
		})
	}
	wg.Wait()
	return told
}

// startRelay opens the relay's socket and starts the TURN server.
func (n *Node) startRelay() (*nat.Relay, error) {
	host, port, err := net.SplitHostPort(n.cfg.RelayAddr)
	if err != nil {
		return nil, fmt.Errorf("p2psock: bad RelayAddr %q: %w", n.cfg.RelayAddr, err)
	}
	if host == "" {
		if ua, ok := n.sock.LocalAddr().(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
			host = ua.IP.String()
		}
	}
	addr := net.JoinHostPort(host, port)
	var pc net.PacketConn
	if n.net != nil {
		pc, err = n.net.ListenPacket("udp4", addr)
	} else {
		pc, err = net.ListenPacket("udp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("p2psock: relay socket: %w", err)
	}
	publicIP := func() net.IP {
		if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
			return ua.IP
		}
		if o := n.ov.Info().Observed; o.IsValid() {
			return o.Addr().AsSlice()
		}
		return nil
	}
	r, err := nat.NewRelay(nat.RelayConfig{PacketConn: pc, PublicIP: publicIP, Net: n.net, Logger: n.cfg.Logger})
	if err != nil {
		pc.Close()
		return nil, err
	}
	return r, nil
}

func (n *Node) streamCounters() StreamCounters {
	st := &n.st
	var c StreamCounters
	st.mu.Lock()
	for _, pc := range st.peers {
		c.Conns++
		if pc.relayed {
			c.RelayedConns++
		}
	}
	c.Sessions = len(st.sessions)
	st.mu.Unlock()
	c.NoPath, c.BadSignals = st.stats.noPath.Load(), st.stats.badSignals.Load()
	c.STUNAnswered, c.STUNDropped = n.ice.STUNStats()
	if n.relay != nil {
		c.Allocations = n.relay.Allocations()
	}
	return c
}
