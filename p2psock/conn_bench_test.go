package p2psock

// Benchmarks of streams (issue 3), each side by side with raw quic-go in the
// same run. The raw baseline is a quic.Transport on a plain *net.UDPConn
// (net.ListenUDP on 127.0.0.1), the same quic.Config (streams.QUICConfig()) and the
// same kind of TLS (TLS 1.3, self-signed Ed25519 certificates on both sides,
// client certificate required), so that what differs is only what p2psock
// adds: the overlay and ICE around the socket, the version byte, the Conn
// wrapper. Results: docs/BENCHMARKS.md, "Streams: Connect/Accept (issue 3)".
//
//	go test -run '^$' -bench 'Stream|Connect' -count 5 .

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/streams"
	"github.com/p2psock/p2psock/internal/testnet"
)

const (
	benchChunk   = 64 << 10 // size of each Write
	benchOpBytes = 16 << 20 // bytes one throughput op moves (then the reader has them all)
	benchStreams = 64       // streams of the parallel throughput benchmark
)

// benchNode opens a node on 127.0.0.1 that joins through entry.
func benchNode(b *testing.B, ctx context.Context, cfg Config, entry *Node) *Node {
	b.Helper()
	cfg.ListenAddr = "127.0.0.1:0"
	if entry != nil {
		cfg.Bootstrap = []string{entry.UDPAddr().String()}
		cfg.JoinOnly = true
	}
	nd, err := NewNode(cfg)
	require.NoError(b, err)
	if err := nd.Bind(ctx); err != nil {
		nd.Close()
		b.Fatal(err)
	}
	return nd
}

// settle waits until nd has no ICE session in progress.
func settle(b *testing.B, nd *Node) {
	b.Helper()
	testnet.Eventually(b, 10*time.Second, "the ICE sessions to end", func() bool { return nd.Info().Streams.Sessions == 0 })
}

// benchNet is an entry node and two nodes joined through it; the nodes close
// in b.Cleanup. connCfg configures the second node (the one that connects).
func benchNet(b *testing.B, entryCfg, connCfg Config) (a, c *Node) {
	b.Helper()
	_, a, c = benchNet3(b, entryCfg, connCfg)
	return a, c
}

// benchNet3 is benchNet that returns the entry node too.
func benchNet3(b *testing.B, entryCfg, connCfg Config) (entry, a, c *Node) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	entry = benchNode(b, ctx, entryCfg, nil)
	b.Cleanup(func() { entry.Close() })
	a = benchNode(b, ctx, connCfg, entry)
	b.Cleanup(func() { a.Close() })
	c = benchNode(b, ctx, Config{}, entry)
	b.Cleanup(func() { c.Close() })
	return entry, a, c
}

// p2pStreamPair returns both ends of a new stream from a to c.
func p2pStreamPair(b *testing.B, a, c *Node) (*Conn, *Conn) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, cc := connectPair(b, ctx, a, c)
	b.Cleanup(func() { ca.Close(); cc.Close() })
	return ca, cc
}

// rawTLS returns the TLS configurations of the raw quic-go baseline: like
// the library's, TLS 1.3 with self-signed Ed25519 certificates on both sides.
func rawTLS(b *testing.B) (server, client *tls.Config) {
	b.Helper()
	cert := func() tls.Certificate {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(b, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "bench"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
		require.NoError(b, err)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert()}, NextProtos: []string{"bench"},
		MinVersion: tls.VersionTLS13, ClientAuth: tls.RequireAnyClientCert}
	client = &tls.Config{Certificates: []tls.Certificate{cert()}, NextProtos: []string{"bench"},
		MinVersion: tls.VersionTLS13, ServerName: "bench", InsecureSkipVerify: true}
	return server, client
}

// rawEnds is the raw baseline's two transports, each on its own loopback
// UDP socket, and a listener on the server's.
type rawEnds struct {
	ctr, str   *quic.Transport
	ln         *quic.Listener
	stls, ctls *tls.Config
}

func newRawEnds(b *testing.B, stls, ctls *tls.Config) *rawEnds {
	b.Helper()
	listen := func() *quic.Transport {
		uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(b, err)
		return &quic.Transport{Conn: uc}
	}
	r := &rawEnds{ctr: listen(), str: listen(), stls: stls, ctls: ctls}
	ln, err := r.str.Listen(stls, streams.QUICConfig())
	require.NoError(b, err)
	r.ln = ln
	return r
}

func (r *rawEnds) close() {
	r.ln.Close()
	r.ctr.Close()
	r.str.Close()
	r.ctr.Conn.Close()
	r.str.Conn.Close()
}

// connect dials the server, opens a stream and writes one byte on it (as
// Connect writes its version byte); the server accepts the connection and
// the stream and reads the byte.
func (r *rawEnds) connect(ctx context.Context) (cc, sc *quic.Conn, cs, ss *quic.Stream, err error) {
	type acc struct {
		qc  *quic.Conn
		s   *quic.Stream
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		qc, err := r.ln.Accept(ctx)
		if err != nil {
			ch <- acc{err: err}
			return
		}
		s, err := qc.AcceptStream(ctx)
		if err == nil {
			_, err = io.ReadFull(s, make([]byte, 1))
		}
		ch <- acc{qc, s, err}
	}()
	cc, err = r.ctr.Dial(ctx, r.str.Conn.LocalAddr(), r.ctls, streams.QUICConfig())
	if err == nil {
		if cs, err = cc.OpenStreamSync(ctx); err == nil {
			_, err = cs.Write([]byte{streams.StreamVersion})
		}
	}
	a := <-ch
	if err == nil {
		err = a.err
	}
	return cc, a.qc, cs, a.s, err
}

// rawStreamPair returns both ends of a new stream on cc (accepted on sc),
// after its first byte arrived.
func rawStreamPair(ctx context.Context, cc, sc *quic.Conn) (cs, ss *quic.Stream, err error) {
	type acc struct {
		s   *quic.Stream
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		s, err := sc.AcceptStream(ctx)
		if err == nil {
			_, err = io.ReadFull(s, make([]byte, 1))
		}
		ch <- acc{s, err}
	}()
	cs, err = cc.OpenStreamSync(ctx)
	if err == nil {
		_, err = cs.Write([]byte{streams.StreamVersion})
	}
	a := <-ch
	if err == nil {
		err = a.err
	}
	return cs, a.s, err
}

// rawConnected is a connected raw baseline, closed in b.Cleanup.
func rawConnected(b *testing.B) (cc, sc *quic.Conn, cs, ss *quic.Stream) {
	b.Helper()
	stls, ctls := rawTLS(b)
	r := newRawEnds(b, stls, ctls)
	b.Cleanup(r.close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, sc, cs, ss, err := r.connect(ctx)
	require.NoError(b, err)
	b.Cleanup(func() {
		cc.CloseWithError(0, "")
		sc.CloseWithError(0, "")
	})
	return cc, sc, cs, ss
}

// closeRaw closes a raw stream the way Conn.Close closes one.
func closeRaw(s *quic.Stream) {
	s.Close()
	s.CancelRead(0)
}

// benchThroughput writes benchOpBytes per op to w in benchChunk writes; an op
// ends when the reader has read them all. closeAll closes both ends; sender
// returns the statistics of the writing end's QUIC connection, whose lost
// packets are reported.
func benchThroughput(b *testing.B, w io.Writer, r io.Reader, closeAll func(), sender func() quic.ConnectionStats) {
	done := make(chan struct{}, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, benchChunk)
		got := 0
		for {
			n, err := r.Read(buf)
			got += n
			for got >= benchOpBytes {
				got -= benchOpBytes
				done <- struct{}{}
			}
			if err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { closeAll(); <-readerDone })
	buf := make([]byte, benchChunk)
	b.SetBytes(benchOpBytes)
	st0 := sender()
	for b.Loop() {
		for sent := 0; sent < benchOpBytes; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		<-done
	}
	st := sender()
	b.ReportMetric(100*float64(st.PacketsLost-st0.PacketsLost)/float64(max(1, st.PacketsSent-st0.PacketsSent)), "%lost")
}

// BenchmarkStreamThroughput: one stream, direct loopback path, bulk data one
// way; against raw quic-go, over a TURN relay (ForceRelay), and over a
// circuit on a default-config public node's own socket (ForceRelay, no TURN).
func BenchmarkStreamThroughput(b *testing.B) {
	b.Run("p2psock", func(b *testing.B) {
		testnet.CheckLeaks(b)
		a, c := benchNet(b, Config{}, Config{})
		ca, cc := p2pStreamPair(b, a, c)
		if ca.Path().Relayed {
			b.Fatal("path is relayed")
		}
		benchThroughput(b, ca, cc, func() { ca.Close(); cc.Close() }, ca.s.Stats)
	})
	b.Run("quic-go", func(b *testing.B) {
		testnet.CheckLeaks(b)
		cc, _, cs, ss := rawConnected(b)
		benchThroughput(b, cs, ss, func() { closeRaw(cs); closeRaw(ss) }, cc.ConnectionStats)
	})
	b.Run("p2psock-relayed", func(b *testing.B) {
		testnet.CheckLeaks(b)
		a, c := benchNet(b, Config{RelayAddr: "127.0.0.1:0"}, Config{ForceRelay: true})
		ca, cc := p2pStreamPair(b, a, c)
		if !ca.Path().Relayed {
			b.Fatal("path is not relayed")
		}
		benchThroughput(b, ca, cc, func() { ca.Close(); cc.Close() }, ca.s.Stats)
	})
	b.Run("p2psock-circuit", func(b *testing.B) {
		testnet.CheckLeaks(b)
		// A default-config entry node relays on its own socket; the
		// connecting node has no TURN relay and stays on the circuit.
		relay, a, c := benchNet3(b, Config{}, Config{ForceRelay: true})
		ca, cc := p2pStreamPair(b, a, c)
		if !ca.Path().Relayed || relay.Info().Streams.Circuits != 1 {
			b.Fatalf("path is not a circuit: %+v", ca.Path())
		}
		drops := func() (n uint64) {
			for _, nd := range []*Node{relay, a, c} {
				inf := nd.Info()
				n += inf.SocketDrops + inf.Streams.CircuitQueue + inf.Streams.CircuitBudget
			}
			return n
		}
		d0 := drops()
		benchThroughput(b, ca, cc, func() { ca.Close(); cc.Close() }, ca.s.Stats)
		b.ReportMetric(float64(drops()-d0)/float64(b.N), "drops/op")
	})
}

// benchParallel moves benchOpBytes per op, split evenly over the stream
// pairs, all at once.
func benchParallel(b *testing.B, ws []io.Writer, rs []io.Reader) {
	per := benchOpBytes / len(ws)
	b.SetBytes(benchOpBytes)
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(ws))
		for i := range ws {
			wg.Add(2)
			go func() {
				defer wg.Done()
				buf := make([]byte, benchChunk)
				for sent := 0; sent < per; sent += len(buf) {
					if _, err := ws[i].Write(buf); err != nil {
						errs <- err
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, benchChunk)
				for got := 0; got < per; {
					n, err := rs[i].Read(buf[:min(len(buf), per-got)])
					got += n
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
	}
}

// BenchmarkStreamThroughputParallel64: 64 streams of one connection carry
// bulk data one way at once; the total throughput.
func BenchmarkStreamThroughputParallel64(b *testing.B) {
	b.Run("p2psock", func(b *testing.B) {
		testnet.CheckLeaks(b)
		a, c := benchNet(b, Config{}, Config{})
		var ws []io.Writer
		var rs []io.Reader
		for range benchStreams {
			ca, cc := p2pStreamPair(b, a, c)
			ws, rs = append(ws, ca), append(rs, cc)
		}
		benchParallel(b, ws, rs)
	})
	b.Run("quic-go", func(b *testing.B) {
		testnet.CheckLeaks(b)
		cc, sc, cs, ss := rawConnected(b)
		ws, rs := []io.Writer{cs}, []io.Reader{ss}
		b.Cleanup(func() { closeRaw(cs); closeRaw(ss) })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for range benchStreams - 1 {
			cs, ss, err := rawStreamPair(ctx, cc, sc)
			require.NoError(b, err)
			b.Cleanup(func() { closeRaw(cs); closeRaw(ss) })
			ws, rs = append(ws, cs), append(rs, ss)
		}
		benchParallel(b, ws, rs)
	})
}

// durations collects the times of the ops of a benchmark whose ops vary.
type durations []time.Duration

func (d *durations) add(t time.Duration) { *d = append(*d, t) }

// report reports the median, the 90th percentile and the maximum, in ms.
func (dp *durations) report(b *testing.B) {
	d := *dp
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(d[len(d)*9/10])/1e6, "p90-ms")
	b.ReportMetric(float64(d[len(d)-1])/1e6, "max-ms")
}

// BenchmarkConnectFirst: the first Connect to a peer, from a fresh pair of
// nodes (joined through an entry node before the timer starts) until the
// peer's Accept returns the stream: lookup if needed, ICE signalled through
// the overlay, QUIC handshake, stream and version byte. Against raw quic-go
// from fresh sockets: Dial (handshake), OpenStreamSync and a 1-byte Write,
// until the server accepted the connection and the stream and read the byte.
func BenchmarkConnectFirst(b *testing.B) {
	b.Run("p2psock", func(b *testing.B) {
		testnet.CheckLeaks(b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		b.Cleanup(cancel)
		entry := benchNode(b, ctx, Config{}, nil)
		b.Cleanup(func() { entry.Close() })
		var d durations
		defer d.report(b)
		for b.Loop() {
			b.StopTimer()
			a := benchNode(b, ctx, Config{}, entry)
			c := benchNode(b, ctx, Config{}, entry)
			b.StartTimer()
			t0 := time.Now()
			ca, cc := connectPair(b, ctx, a, c)
			b.StopTimer()
			d.add(time.Since(t0))
			ca.Close()
			cc.Close()
			// Let the ICE sessions end before closing, so that what is
			// measured next starts from idle nodes.
			settle(b, a)
			settle(b, c)
			a.Close()
			c.Close()
			b.StartTimer()
		}
	})
	b.Run("quic-go", func(b *testing.B) {
		testnet.CheckLeaks(b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		b.Cleanup(cancel)
		stls, ctls := rawTLS(b)
		var d durations
		defer d.report(b)
		for b.Loop() {
			b.StopTimer()
			r := newRawEnds(b, stls, ctls)
			b.StartTimer()
			t0 := time.Now()
			cc, sc, cs, ss, err := r.connect(ctx)
			b.StopTimer()
			d.add(time.Since(t0))
			require.NoError(b, err)
			closeRaw(cs)
			closeRaw(ss)
			cc.CloseWithError(0, "")
			sc.CloseWithError(0, "")
			r.close()
			b.StartTimer()
		}
	})
}

// BenchmarkConnectStream: a further Connect to a connected peer, until the
// peer's Accept returns the stream (its version byte arrived). Against raw
// quic-go: OpenStreamSync and a 1-byte Write, until AcceptStream returned
// the stream and the byte was read. Both ends of each stream are closed
// before the next (outside the timer), so stream credit is returned.
func BenchmarkConnectStream(b *testing.B) {
	b.Run("p2psock", func(b *testing.B) {
		testnet.CheckLeaks(b)
		a, c := benchNet(b, Config{}, Config{})
		ca, cc := p2pStreamPair(b, a, c) // the connection is up
		ca.Close()
		cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		b.Cleanup(cancel)
		for b.Loop() {
			ca, cc := connectPair(b, ctx, a, c)
			b.StopTimer()
			ca.Close()
			cc.Close()
			b.StartTimer()
		}
	})
	b.Run("quic-go", func(b *testing.B) {
		testnet.CheckLeaks(b)
		qcc, qsc, cs, ss := rawConnected(b)
		closeRaw(cs)
		closeRaw(ss)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		b.Cleanup(cancel)
		for b.Loop() {
			cs, ss, err := rawStreamPair(ctx, qcc, qsc)
			b.StopTimer()
			require.NoError(b, err)
			closeRaw(cs)
			closeRaw(ss)
			b.StartTimer()
		}
	})
}

// benchEcho measures a 1-byte write on rw until the echo of it was read.
// closeAll closes both ends.
func benchEcho(b *testing.B, rw io.ReadWriter, echo io.ReadWriter, closeAll func()) {
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		var buf [1]byte
		for {
			if _, err := io.ReadFull(echo, buf[:]); err != nil {
				return
			}
			if _, err := echo.Write(buf[:]); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { closeAll(); <-echoDone })
	var buf [1]byte
	for b.Loop() {
		if _, err := rw.Write(buf[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rw, buf[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamRoundTrip: 1 byte written on an open stream and echoed back.
func BenchmarkStreamRoundTrip(b *testing.B) {
	b.Run("p2psock", func(b *testing.B) {
		testnet.CheckLeaks(b)
		a, c := benchNet(b, Config{}, Config{})
		ca, cc := p2pStreamPair(b, a, c)
		benchEcho(b, ca, cc, func() { ca.Close(); cc.Close() })
	})
	b.Run("quic-go", func(b *testing.B) {
		testnet.CheckLeaks(b)
		_, _, cs, ss := rawConnected(b)
		benchEcho(b, cs, ss, func() { closeRaw(cs); closeRaw(ss) })
	})
}
