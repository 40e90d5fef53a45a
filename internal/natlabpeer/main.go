// Command natlabpeer is one node of the real-NAT test that .ci/natlab-test
// runs in natlab's network namespaces.
//
// Every node's identity is derived from its name (seed = SHA-256 of the
// name), so each process can compute every other node's ID from -peers.
//
// A public node (no -send-to) also runs a TURN relay for the other nodes'
// connections, on -relay-addr (default ":3478": port 3478 on the host of
// -listen; "none" runs no relay). It binds, prints "ready <ID>" and serves
// until it gets SIGTERM or SIGINT. Any message delivered to it is printed as
// UNEXPECTED. A node behind a NAT binds with JoinOnly, then:
//
//   - sends the -send-to node a message by ID (SendTo), retrying while it
//     fails (at first the other node may not have joined yet), until the
//     message is acknowledged;
//   - once that is acknowledged and the other node's message by ID has
//     arrived (so both have finished joining), sends a message by key
//     (SendToKey) to a random key for which the -send-to node is the
//     XOR-closest of all -peers; with -hard-key (the default) a key for which
//     this node is the second closest, if there is one, so that this node
//     must route the message from its own routing table;
//   - meanwhile receives, and checks that the -send-to node's two messages
//     arrive with the right From, To and ByKey, and that nothing else does
//     (its own key message coming back means it was delivered to itself).
//
// When these checks are over (all passed, or -timeout expired), and unless
// -connect=false, it tests a stream between the two NATed nodes: the node
// whose name sorts first calls Connect with the other's ID (within
// -connect-timeout), the other calls Accept. Each checks that the stream's
// RemoteAddr is the other node's ID, writes -connect-bytes of data derived
// from its own name, closes its writing side (CloseWrite), reads the peer's
// data to EOF and checks its SHA-256. Each prints one line:
//
//	CONNECT ok path=direct|relayed|relayed→direct time=<Connect's duration, "-" when accepting> bytes=N remote=<ID> ...
//	CONNECT FAIL role=connect|accept ...: <error>
//
// It prints a RESULT line when all of this is over. Then it lingers, so that
// it can still acknowledge the other node's retransmissions and route for it,
// until SIGTERM/SIGINT, until the -stop-file exists, or until -linger has
// passed, and prints a FINAL line, which also counts what arrived while it
// lingered. RESULT and FINAL carry the stream test's result as
// connect=direct|relayed|relayed→direct|failed (the path kind at connect,
// and at the end of the transfer if it changed), connect_ms=<Connect's
// duration on the connecting node, "-" otherwise> and stream=PASS|FAIL (the
// whole stream test, peer ID and data included); connect and stream are "off"
// with -connect=false. It exits 0 only if all four checks passed within
// -timeout, nothing unexpected arrived, and the stream test passed. -v writes
// the node's debug log to stderr.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// out serialises the lines on stdout, which the test script parses.
var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func identity(name string) *p2psock.Identity {
	seed := sha256.Sum256([]byte(name))
	id, err := p2psock.IdentityFromSeed(seed[:])
	if err != nil {
		panic(err) // the seed has the right size
	}
	return id
}

func ms(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return d.Round(100 * time.Millisecond).String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// peers maps IDs back to names for readable output.
type peers struct {
	names []string
	ids   map[string]p2psock.ID
}

func (p *peers) name(id p2psock.ID) string {
	for _, n := range p.names {
		if p.ids[n] == id {
			return n
		}
	}
	return id.String()[:8]
}

// closest returns the name of the peer whose ID is XOR-closest to k.
func (p *peers) closest(k p2psock.Key) string {
	best := p.names[0]
	for _, n := range p.names[1:] {
		if k.Closer(p.ids[n].Key(), p.ids[best].Key()) {
			best = n
		}
	}
	return best
}

func (p *peers) contacts(nd *p2psock.Node) string {
	var out []string
	for _, id := range nd.Contacts() {
		out = append(out, p.name(id))
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

func infoLine(nd *p2psock.Node, ps *peers) string {
	inf := nd.Info()
	pub := "-"
	if inf.PublicAddr != nil {
		pub = inf.PublicAddr.String()
	}
	c := inf.Counters
	return fmt.Sprintf("local=%v public=%s reachable=%v contacts=%d relayed=%d peers=%s "+
		"pkts_in=%d pkts_out=%d msgs_sent=%d msgs_recv=%d fwd=%d relayed_frames=%d dropped=%d "+
		"(malformed=%d wrongnet=%d forged=%d replayed=%d oversize=%d queuefull=%d unknownpeer=%d noroute=%d)",
		inf.LocalAddr, pub, inf.Public, inf.Contacts, inf.Relayed, ps.contacts(nd),
		c.PacketsIn, c.PacketsOut, c.MessagesSent, c.MessagesReceived, c.MessagesForwarded, c.FramesRelayed,
		c.Dropped, c.DroppedMalformed, c.DroppedWrongNet, c.DroppedForged, c.DroppedReplayed,
		c.DroppedOversized, c.DroppedQueueFull, c.DroppedUnknownPeer, c.DroppedNoRoute)
}

func main() {
	var (
		listen    = flag.String("listen", "0.0.0.0:0", "UDP `host:port` to bind")
		seedName  = flag.String("seed", "", "this node's `name`; its identity seed is SHA-256(name)")
		bootstrap listFlag
		peerList  listFlag
		sendTo    = flag.String("send-to", "", "`name` of the other NATed node; empty: run as a public node")
		timeout   = flag.Duration("timeout", 60*time.Second, "time allowed to bind and for all checks")
		linger    = flag.Duration("linger", 60*time.Second, "longest time to stay up after the checks (SIGTERM or -stop-file end it earlier)")
		stopFile  = flag.String("stop-file", "", "end the linger as soon as this `file` exists")
		network   = flag.String("network", "natlab", "overlay network name")
		hardKey   = flag.Bool("hard-key", true, "prefer a key for which this node is the second closest, after -send-to (see chooseKey)")
		verbose   = flag.Bool("v", false, "debug log of the node on stderr")
		relayAddr = flag.String("relay-addr", ":3478", "public node: UDP `host:port` of its TURN relay (empty host: the host of -listen; \"none\": no relay)")
		connect   = flag.Bool("connect", true, "NATed node: test a stream to -send-to after the message checks")
		connTO    = flag.Duration("connect-timeout", 20*time.Second, "time allowed for Connect")
		connBytes = flag.Int("connect-bytes", 1<<20, "bytes sent each way on the stream")
		waitMap   = flag.Duration("wait-portmap", 0, "NATed node: before the stream test, wait up to this long for the router to grant a port mapping (0: do not wait)")
		awaitDir  = flag.Duration("await-direct", 0, "NATed node: halfway through writing its stream data, if the connection is relayed, wait up to this long for it to move to a direct path before writing the rest (0: do not wait)")
		rebind    = flag.String("rebind-file", "", "NATed node: halfway through writing its stream data, create this `file` and wait (up to 10s) for file.done before writing the rest (the test changes a NAT's mappings meanwhile)")
	)
	flag.Var(&bootstrap, "bootstrap", "entry point `host:port` (repeatable or comma-separated)")
	flag.Var(&peerList, "peers", "`names` of every node in the test, comma-separated")
	flag.Parse()
	if *seedName == "" {
		fmt.Fprintln(os.Stderr, "natlabpeer: -seed is required")
		os.Exit(2)
	}
	self := *seedName

	ps := &peers{ids: map[string]p2psock.ID{}}
	for _, n := range append(peerList, self) {
		if _, ok := ps.ids[n]; !ok {
			ps.names = append(ps.names, n)
			ps.ids[n] = identity(n).ID()
		}
	}
	if *sendTo != "" {
		if *sendTo == self {
			fmt.Fprintln(os.Stderr, "natlabpeer: -send-to names this node")
			os.Exit(2)
		}
		if _, ok := ps.ids[*sendTo]; !ok {
			fmt.Fprintf(os.Stderr, "natlabpeer: -send-to %q is not in -peers\n", *sendTo)
			os.Exit(2)
		}
	}

	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("name", self)
		for _, n := range ps.names {
			id := ps.ids[n]
			// The overlay logs IDs as the hex of their first 6 bytes; the node
			// attribute is the first 8 characters of the base32 form.
			logger.Info("peer id", "peer", n, "id", id.String(), "hex", fmt.Sprintf("%x", id[:6]))
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	cfg := p2psock.Config{
		Identity:   identity(self),
		ListenAddr: *listen,
		Network:    *network,
		Bootstrap:  bootstrap,
		JoinOnly:   len(bootstrap) > 0,
		Logger:     logger,
		Difficulty: -1, // identities derive from the peers' names, so that each knows the others' IDs
	}
	if *sendTo == "" && *relayAddr != "none" && *relayAddr != "" {
		host, port, err := net.SplitHostPort(*relayAddr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "natlabpeer: -relay-addr: %v\n", err)
			os.Exit(2)
		}
		if host == "" {
			host, _, _ = net.SplitHostPort(*listen)
		}
		cfg.RelayAddr = net.JoinHostPort(host, port)
	}

	start := time.Now()
	nd, err := p2psock.NewNode(cfg)
	if err != nil {
		say("FAIL node %s: %v", self, err)
		say("RESULT FAIL node=%s sendto=FAIL sendtokey=FAIL received=0/2 unexpected=0 public=- contacts=- relayed=0 connect=failed connect_ms=- stream=FAIL error=newnode", self)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := nd.Bind(ctx); err != nil {
		say("FAIL bind %s via %s after %s: %v", self, bootstrap.String(), ms(time.Since(start)), err)
		say("RESULT FAIL node=%s sendto=FAIL sendtokey=FAIL received=0/2 unexpected=0 public=- contacts=- relayed=0 connect=failed connect_ms=- stream=FAIL error=bind", self)
		nd.Close()
		os.Exit(1)
	}
	bound := time.Now()
	say("bound %s id=%s in %s %s", self, nd.ID(), ms(bound.Sub(start)), infoLine(nd, ps))

	if *sendTo == "" {
		if cfg.RelayAddr != "" {
			say("relay %s on %s", self, cfg.RelayAddr)
		}
		os.Exit(runPublic(nd, ps, self, sig))
	}
	var cs *connSpec
	if *connect {
		cs = &connSpec{timeout: *connTO, bytes: *connBytes, waitMap: *waitMap, rebind: *rebind, awaitDirect: *awaitDir}
	}
	os.Exit(runNATed(ctx, nd, ps, self, *sendTo, bound, *timeout, *linger, *stopFile, *hardKey, cs, sig))
}

// runPublic serves until a signal. Any message delivered to a public node is
// unexpected in this test: it is reported.
func runPublic(nd *p2psock.Node, ps *peers, self string, sig <-chan os.Signal) int {
	say("ready %s", nd.ID())
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := nd.RecvFrom(rctx)
			if err != nil {
				return
			}
			say("UNEXPECTED recv at %s from=%s to=%s bykey=%v data=%q (closest to key: %s)",
				self, ps.name(m.From), m.To, m.ByKey, m.Data, ps.closest(m.To))
		}
	}()
	s := <-sig
	say("info %s on %v: %s", self, s, infoLine(nd, ps))
	rcancel()
	<-done
	nd.Close()
	return 0
}

// chooseKey returns a random key for which other is the XOR-closest of all
// peers. With hard set it prefers a key for which self is the second closest:
// then no contact of self is closer to the key than self except other, so
// self must have other in its own routing table (directly or through a relay)
// to route the message; a closer public node cannot do it on its behalf.
func chooseKey(ps *peers, self, other string, hard bool) (p2psock.Key, string) {
	rank := func(k p2psock.Key) []string {
		r := slices.Clone(ps.names)
		slices.SortFunc(r, func(a, b string) int {
			switch {
			case k.Closer(ps.ids[a].Key(), ps.ids[b].Key()):
				return -1
			case k.Closer(ps.ids[b].Key(), ps.ids[a].Key()):
				return 1
			}
			return 0
		})
		return r
	}
	var k p2psock.Key
	if hard && secondPossible(ps, self, other) {
		for tries := 1; tries <= 1<<18; tries++ {
			rand.Read(k[:])
			if r := rank(k); r[0] == other && r[1] == self {
				return k, fmt.Sprintf("closest %s, then %s itself (%s must route to %s from its own table; %d tries)",
					strings.Join(r, " < "), self, self, other, tries)
			}
		}
	}
	for tries := 1; ; tries++ {
		rand.Read(k[:])
		if r := rank(k); r[0] == other {
			note := ""
			if hard {
				note = fmt.Sprintf(", no key has %s second", self)
			}
			return k, fmt.Sprintf("closest %s (%d tries%s)", strings.Join(r, " < "), tries, note)
		}
	}
}

// secondPossible reports whether some key has other as the XOR-closest peer
// and self as the second: the peers ordered by XOR distance to a key are the
// leaves of the binary trie of their IDs, visited at each branch first on the
// key's side; after other come the peers that share the longest prefix with
// other, in an order the key's later bits can choose.
func secondPossible(ps *peers, self, other string) bool {
	common := func(a, b p2psock.ID) int {
		for i := range a {
			if x := a[i] ^ b[i]; x != 0 {
				return i*8 + bits.LeadingZeros8(x)
			}
		}
		return len(a) * 8
	}
	mine := common(ps.ids[self], ps.ids[other])
	for _, n := range ps.names {
		if n != self && n != other && common(ps.ids[n], ps.ids[other]) > mine {
			return false
		}
	}
	return true
}

type result struct {
	mu            sync.Mutex
	sendTo        bool
	sendKey       bool
	selfDelivered bool // our own key message came back to us
	gotID, gotKey bool
	bad           []string
	gotIDch       chan struct{} // closed when gotID is set
	done          chan struct{} // closed when all four checks passed
	doneOnce      sync.Once

	connTest bool   // the stream test runs
	connPath string // "direct", "relayed" or "failed"; "" while untried
	connMS   string // Connect's duration (connecting node), or "-"
	connOK   bool   // the stream test passed
}

// progress is called with mu held.
func (r *result) progress() {
	if r.sendTo && r.sendKey && r.gotID && r.gotKey {
		r.doneOnce.Do(func() { close(r.done) })
	}
}

func (r *result) pass() bool {
	return r.sendTo && r.sendKey && !r.selfDelivered && r.gotID && r.gotKey && len(r.bad) == 0 &&
		(!r.connTest || r.connOK)
}

// line summarises the checks (called with mu held).
func (r *result) line(nd *p2psock.Node, ps *peers, self string) string {
	res := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	sk := res(r.sendKey)
	if r.selfDelivered {
		sk = "SELF" // acknowledged, but by this node itself
	}
	n := 0
	for _, ok := range []bool{r.gotID, r.gotKey} {
		if ok {
			n++
		}
	}
	inf := nd.Info()
	pub := "-"
	if inf.PublicAddr != nil {
		pub = inf.PublicAddr.String()
	}
	conn, connMS, stream := "off", "-", "off"
	if r.connTest {
		conn, connMS, stream = "failed", r.connMS, res(r.connOK)
		if r.connPath != "" {
			conn = r.connPath
		}
	}
	return fmt.Sprintf("%s node=%s sendto=%s sendtokey=%s received=%d/2 unexpected=%d public=%s contacts=%s relayed=%d "+
		"connect=%s connect_ms=%s stream=%s",
		res(r.pass()), self, res(r.sendTo), sk, n, len(r.bad), pub, ps.contacts(nd), inf.Relayed, conn, connMS, stream)
}

func runNATed(ctx context.Context, nd *p2psock.Node, ps *peers, self, other string, bound time.Time,
	timeout, linger time.Duration, stopFile string, hardKey bool, cs *connSpec, sig <-chan os.Signal) int {
	selfID, otherID := ps.ids[self], ps.ids[other]
	r := &result{gotIDch: make(chan struct{}), done: make(chan struct{}), connTest: cs != nil, connMS: "-"}

	// Receiving.
	rctx, rcancel := context.WithCancel(context.Background())
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		wantID := fmt.Sprintf("sendto from=%s to=%s", other, self)
		keyPrefix := fmt.Sprintf("sendtokey from=%s key=", other)
		ownKeyPrefix := fmt.Sprintf("sendtokey from=%s key=", self)
		for {
			m, err := nd.RecvFrom(rctx)
			if err != nil {
				return
			}
			at := secs(time.Since(bound))
			desc := fmt.Sprintf("from=%s to=%s bykey=%v data=%q", ps.name(m.From), m.To, m.ByKey, m.Data)
			r.mu.Lock()
			switch {
			case m.From == otherID && !m.ByKey && string(m.Data) == wantID:
				switch {
				case m.To != selfID.Key():
					r.bad = append(r.bad, "wrong To: "+desc)
					say("FAIL recv sendto %s -> %s: wrong To (want %s): %s", other, self, selfID.Key(), desc)
				case r.gotID:
					r.bad = append(r.bad, "duplicate: "+desc)
					say("FAIL recv sendto %s -> %s: delivered twice: %s", other, self, desc)
				default:
					r.gotID = true
					close(r.gotIDch)
					say("PASS recv sendto %s -> %s at %s", other, self, at)
				}
			case m.From == otherID && m.ByKey && strings.HasPrefix(string(m.Data), keyPrefix):
				key := strings.TrimPrefix(string(m.Data), keyPrefix)
				switch {
				case m.To.String() != key:
					r.bad = append(r.bad, "wrong To: "+desc)
					say("FAIL recv sendtokey %s -> %s: To %s is not the key sent: %s", other, self, m.To, desc)
				case ps.closest(m.To) != self:
					r.bad = append(r.bad, "not closest: "+desc)
					say("FAIL recv sendtokey %s -> %s: %s is closest to the key, not %s: %s", other, self, ps.closest(m.To), self, desc)
				case r.gotKey:
					r.bad = append(r.bad, "duplicate: "+desc)
					say("FAIL recv sendtokey %s -> %s: delivered twice: %s", other, self, desc)
				default:
					r.gotKey = true
					say("PASS recv sendtokey %s -> %s at %s", other, self, at)
				}
			case m.From == selfID && m.ByKey && strings.HasPrefix(string(m.Data), ownKeyPrefix):
				r.selfDelivered = true
				say("FAIL sendtokey %s -> %s: delivered to %s itself at %s (it had no contact closer to the key; "+
					"its contacts: %s), and acknowledged by it", self, other, self, at, ps.contacts(nd))
			default:
				r.bad = append(r.bad, "unexpected: "+desc)
				say("UNEXPECTED recv at %s %s (closest to To: %s)", self, desc, ps.closest(m.To))
			}
			r.progress()
			r.mu.Unlock()
		}
	}()

	// Sending: by ID first; its acknowledgement proves the other node is in
	// the network. Then by key, once the other node's message by ID has
	// arrived too: both nodes have then finished joining, so each had the
	// chance to link with the other.
	go func() {
		data := fmt.Sprintf("sendto from=%s to=%s", self, other)
		if !sendRetry(ctx, "sendto", self, other, bound, func(c context.Context) error {
			return nd.SendTo(c, []byte(data), otherID)
		}) {
			return
		}
		r.mu.Lock()
		r.sendTo = true
		r.progress()
		r.mu.Unlock()

		select {
		case <-r.gotIDch:
		case <-ctx.Done():
			say("FAIL sendtokey %s -> %s: not sent, %s's message by ID never arrived", self, other, other)
			return
		}
		key, why := chooseKey(ps, self, other, hardKey)
		say("key %s: %s; %s contacts: %s", key, why, self, ps.contacts(nd))
		data = fmt.Sprintf("sendtokey from=%s key=%s", self, key)
		if !sendRetry(ctx, "sendtokey", self, other, bound, func(c context.Context) error {
			return nd.SendToKey(c, []byte(data), key)
		}) {
			return
		}
		r.mu.Lock()
		r.sendKey = true
		r.progress()
		r.mu.Unlock()
	}()

	interrupted := false
	select {
	case <-r.done:
	case <-ctx.Done():
	case s := <-sig:
		say("interrupted by %v before the checks finished", s)
		interrupted = true
	}

	r.mu.Lock()
	if !r.gotID {
		say("FAIL recv sendto %s -> %s: not received within %s", other, self, timeout)
	}
	if !r.gotKey {
		say("FAIL recv sendtokey %s -> %s: not received within %s", other, self, timeout)
	}
	r.mu.Unlock()

	// The stream test, also when a message check failed (it says more about
	// what works), but not after a signal.
	if cs != nil && !interrupted {
		// The other node starts its part when its own message checks end:
		// by its -timeout at the latest, and at once if this node's checks
		// passed (then the other node's have too: its messages were
		// acknowledged here, and this node's by it).
		notAfter := time.Now()
		select {
		case <-r.done:
		default:
			if dl, ok := ctx.Deadline(); ok && dl.After(notAfter) {
				notAfter = dl
			}
		}
		path, connMS, ok := runConnect(nd, ps, self, other, cs, notAfter, sig, &interrupted)
		r.mu.Lock()
		r.connPath, r.connMS, r.connOK = path, connMS, ok
		r.mu.Unlock()
	}

	r.mu.Lock()
	say("RESULT %s elapsed=%s", r.line(nd, ps, self), secs(time.Since(bound)))
	r.mu.Unlock()
	say("info %s: %s", self, infoLine(nd, ps))

	// Linger: the other node may still need this one to acknowledge its
	// retransmissions or to route through it.
	if !interrupted {
		lingerUntil(sig, linger, stopFile)
	}
	say("info %s at exit: %s", self, infoLine(nd, ps))
	rcancel()
	<-recvDone
	r.mu.Lock()
	pass := r.pass()
	say("FINAL %s", r.line(nd, ps, self))
	r.mu.Unlock()
	nd.Close()
	if !pass {
		return 1
	}
	return 0
}

// sendRetry calls send until it succeeds or ctx ends. A send fails at once,
// for example, while the other node has not joined yet.
func sendRetry(ctx context.Context, what, self, other string, bound time.Time, send func(context.Context) error) bool {
	var lastErr error
	first := time.Now()
	for attempt := 1; ; attempt++ {
		t0 := time.Now()
		err := send(ctx)
		now := time.Now()
		if err == nil {
			say("PASS %s %s -> %s %s (attempt %d, acked at %s, %s since the first attempt)",
				what, self, other, ms(now.Sub(t0)), attempt, secs(now.Sub(bound)), ms(now.Sub(first)))
			return true
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		say("retry %s %s -> %s: attempt %d failed after %s: %v", what, self, other, attempt, ms(now.Sub(t0)), err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		if ctx.Err() != nil {
			break
		}
	}
	say("FAIL %s %s -> %s: not acknowledged within the timeout (%s since bind): %v",
		what, self, other, secs(time.Since(bound)), lastErr)
	return false
}

func lingerUntil(sig <-chan os.Signal, linger time.Duration, stopFile string) {
	deadline := time.NewTimer(linger)
	defer deadline.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		if stopFile != "" {
			if _, err := os.Stat(stopFile); err == nil {
				return
			}
		}
		select {
		case <-sig:
			return
		case <-deadline.C:
			return
		case <-poll.C:
		}
	}
}

// connSpec configures the stream test.
type connSpec struct {
	timeout time.Duration // for Connect
	bytes   int           // sent each way
	waitMap time.Duration // to wait for a port mapping first, if not 0
	rebind  string        // if set: the file to create halfway through the writes (see -rebind-file)
	// awaitDirect, if set: how long to wait halfway through the writes
	// for a relayed connection to move to a direct path (-await-direct)
	awaitDirect time.Duration
}

// rebindPause creates file and waits until file.done exists (or 10 s): the
// test changes a NAT's mappings meanwhile.
func rebindPause(file string) {
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		say("rebind: %v", err)
		return
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(file + ".done"); err == nil {
			say("rebind: the NAT's mappings changed, writing the rest")
			return
		}
	}
	say("rebind: no %s.done after 10s", file)
}

// awaitDirect waits up to limit for c to run on a direct path, and
// returns how long it waited ("-" if it was direct already) and whether it
// is direct.
func awaitDirect(c *p2psock.Conn, limit time.Duration) (string, bool) {
	if !c.Path().Relayed {
		return "-", true
	}
	t0 := time.Now()
	for time.Since(t0) < limit {
		if !c.Path().Relayed {
			return ms(time.Since(t0)), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ms(time.Since(t0)), false
}

// xferTimeout bounds the data exchange on an established stream.
const xferTimeout = 20 * time.Second

// streamData is the data the node called name sends on the stream: the
// receiver derives it too, to check what arrived.
func streamData(name string, n int) []byte {
	seed := sha256.Sum256([]byte("natlabpeer stream data of " + name))
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8(seed).Read(b) // ChaCha8.Read always fills b
	return b
}

// runConnect runs this node's part of the stream test: the node whose name
// sorts first connects, the other accepts a stream that the other node opens
// by notAfter plus the connect timeout at the latest. It returns the path
// kind ("direct", "relayed" or "failed"; "relayed→direct" when the
// connection started relayed and was direct at the end of the transfer, or
// the reverse), Connect's duration in milliseconds
// ("-" on the accepting node) and whether the test passed. A signal ends it
// early and sets *intr.
func runConnect(nd *p2psock.Node, ps *peers, self, other string, cs *connSpec, notAfter time.Time,
	sig <-chan os.Signal, intr *bool) (string, string, bool) {
	otherID := ps.ids[other]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var interrupted atomic.Bool
	go func() {
		select {
		case s := <-sig:
			say("interrupted by %v during the stream test", s)
			interrupted.Store(true)
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() { *intr = interrupted.Load() }()

	if cs.waitMap > 0 {
		waitPortMapping(nd, cs.waitMap)
	}
	connecting := self < other
	role := "accept"
	if connecting {
		role = "connect"
	}
	fail := func(format string, args ...any) (string, string, bool) {
		say("CONNECT FAIL role=%s %s -> %s: "+format, append([]any{role, self, other}, args...)...)
		return "failed", "-", false
	}

	var (
		c      *p2psock.Conn
		err    error
		connMS = "-"
		t0     = time.Now()
		took   time.Duration
	)
	if connecting {
		cctx, ccancel := context.WithTimeout(ctx, cs.timeout)
		c, err = nd.Connect(cctx, otherID)
		took = time.Since(t0)
		ccancel()
		if err != nil {
			return fail("Connect to %s failed after %s: %v", otherID, ms(took), err)
		}
		connMS = fmt.Sprint(took.Milliseconds())
	} else {
		limit := time.Until(notAfter) + cs.timeout + 5*time.Second
		actx, acancel := context.WithTimeout(ctx, limit)
		c, err = nd.AcceptContext(actx)
		took = time.Since(t0)
		acancel()
		if err != nil {
			return fail("Accept failed after %s: %v", ms(took), err)
		}
	}
	defer c.Close()
	path := pathKind(c.Path())
	ra, ok := c.RemoteAddr().(*p2psock.Addr)
	if !ok || ra.ID != otherID {
		say("CONNECT FAIL role=%s %s -> %s: stream's RemoteAddr is %v, want %s (%s)", role, self, other, c.RemoteAddr(), otherID, other)
		return path, connMS, false
	}

	// Exchange: write while reading, so that flow control cannot block
	// both writers.
	x0 := time.Now()
	c.SetDeadline(x0.Add(xferTimeout + cs.awaitDirect))
	wrote := make(chan error, 1)
	upgrade := "-" // how long the writer waited for a direct path
	go func() {
		data := streamData(self, cs.bytes)
		var err error
		if cs.rebind != "" || cs.awaitDirect > 0 {
			_, err = c.Write(data[:len(data)/2])
			data = data[len(data)/2:]
			if err == nil && cs.rebind != "" {
				rebindPause(cs.rebind)
			}
			if err == nil && cs.awaitDirect > 0 {
				var direct bool
				upgrade, direct = awaitDirect(c, cs.awaitDirect)
				if !direct {
					say("await-direct: still relayed after %s, writing the rest", upgrade)
				}
			}
		}
		if err == nil {
			_, err = c.Write(data)
		}
		if err == nil {
			err = c.CloseWrite()
		}
		wrote <- err
	}()
	got, rerr := io.ReadAll(c)
	werr := <-wrote
	xfer := time.Since(x0)
	want := sha256.Sum256(streamData(other, cs.bytes))
	sum := sha256.Sum256(got)
	p := c.Path()
	if end := pathKind(p); end != path {
		path += "→" + end // the connection changed path during the transfer
	}
	connTime := "-"
	if connecting {
		connTime = ms(took)
	}
	desc := fmt.Sprintf("path=%s time=%s bytes=%d remote=%s role=%s xfer=%s rtt=%s local=%v peer=%v sha256=%x",
		path, connTime, len(got), ra.ID, role, ms(xfer), p.RTT.Round(100*time.Microsecond), p.Local, p.Remote, sum[:6])
	if cs.awaitDirect > 0 {
		desc += " upgrade_wait=" + upgrade
	}
	if !connecting {
		desc += " accept_wait=" + ms(took)
	}
	switch {
	case werr != nil:
		say("CONNECT FAIL %s: write: %v", desc, werr)
	case rerr != nil:
		say("CONNECT FAIL %s: read after %d bytes: %v", desc, len(got), rerr)
	case len(got) != cs.bytes || sum != want:
		say("CONNECT FAIL %s: received %d bytes with SHA-256 %x, want %d bytes with %x", desc, len(got), sum[:6], cs.bytes, want[:6])
	default:
		say("CONNECT ok %s", desc)
		return path, connMS, true
	}
	return path, connMS, false
}

// pathKind is the kind of path p: "direct" or "relayed".
func pathKind(p p2psock.PathInfo) string {
	if p.Relayed {
		return "relayed"
	}
	return "direct"
}

// waitPortMapping waits up to limit for the node's router to grant it a
// port mapping, and prints what it got.
func waitPortMapping(nd *p2psock.Node, limit time.Duration) {
	t0 := time.Now()
	for {
		st := nd.Info().NAT.PortMapping
		if strings.HasPrefix(st, "nat-pmp ") || strings.HasPrefix(st, "upnp ") || time.Since(t0) > limit {
			say("portmap %s after %s", strings.ReplaceAll(st, " ", "="), ms(time.Since(t0)))
			return
		}
		time.Sleep(50 * time.Millisecond) // polling Info: it has no event for this
	}
}
