package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// streamConnect is "p2pcat <ID>": a stream to the node id, with stdin going
// to the peer and the peer's bytes to stdout. It succeeds only once the
// peer has read everything it sent (a p2pcat peer closes its side only
// after reading this side's end, see pipe) and it has read the peer's end.
func streamConnect(ctx context.Context, o *options, id p2psock.ID, stdin io.Reader, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, nodeSpec{client: true}, func(n *p2psock.Node, _ *dht.DHT) error {
		c, err := connectPeer(ctx, o, n, id, stderr)
		if err != nil {
			return failf("connect to "+short(id), err)
		}
		defer c.Close()
		if o.verbose > 0 {
			fmt.Fprintf(stderr, "p2pcat: connected to %s (%s)\n", id, pathKind(c))
		}
		in := newPump(stdin)
		defer in.stop()
		out := &counter{w: stdout}
		stop := showProgress(stderr, c, &in.sent, &out.n)
		defer stop()
		return failf("stream to "+short(id), pipe(ctx, c, in, out, false))
	})
}

// streamListen is "p2pcat -l [-k]". Without -k it accepts one stream, pipes
// stdin and stdout through it, and refuses (resets) every other stream
// meanwhile, so that their senders fail rather than wait. With -k it
// serves streams concurrently until interrupted (serveStreams): what each
// peer sends goes to stdout (chunks of concurrent streams may interleave),
// and stdin goes to one stream at a time.
func streamListen(ctx context.Context, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, nodeSpec{streams: true}, func(n *p2psock.Node, _ *dht.DHT) error {
		announce(o, n, stdout, stderr)
		switch {
		case o.to != "":
			to, _ := parseLocalAddr(o.to) // checked by parseArgs
			timeout := func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, o.timeout)
			}
			return serveStreams(ctx, o, n, stderr, forwardTo(to, timeout))
		case o.exec != "":
			return serveStreams(ctx, o, n, stderr, execEach(o.exec, stderr))
		}
		in := newPump(stdin)
		defer in.stop()
		if !o.keep {
			c, err := acceptAllowed(ctx, o, n, stderr)
			if err != nil {
				return err
			}
			defer c.Close()
			stop := refuseStreams(ctx, n)
			defer stop()
			if o.verbose > 0 {
				fmt.Fprintf(stderr, "p2pcat: stream from %s (%s)\n", c.RemoteAddr(), pathKind(c))
			}
			out := &counter{w: stdout}
			stopProgress := showProgress(stderr, c, &in.sent, &out.n)
			defer stopProgress()
			return failf("stream from "+short(peerOf(c)), pipe(ctx, c, in, out, true))
		}
		input := make(chan *pump, 1)
		input <- in
		out := &lockedWriter{w: stdout}
		return serveStreams(ctx, o, n, stderr, func(ctx context.Context, c *p2psock.Conn) error {
			select {
			case p := <-input: // stdin is free: this stream has it until it ends
				defer func() { input <- p }()
				return pipe(ctx, c, p, out, true)
			default:
				return pipe(ctx, c, noInput(), out, true)
			}
		})
	})
}

// maxStreams bounds the streams -k serves at once; past it, new streams are
// refused.
const maxStreams = 64

// serveStreams accepts streams until ctx ends and runs serve for each, in
// a goroutine of its own, up to maxStreams at once. A stream's failure is
// reported on stderr, and the next streams are served. It returns once
// every serve has returned.
func serveStreams(ctx context.Context, o *options, n *p2psock.Node, stderr io.Writer, serve func(context.Context, *p2psock.Conn) error) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, maxStreams)
	for {
		c, err := acceptAllowed(ctx, o, n, stderr)
		if err != nil {
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Reset()
			continue
		}
		if o.verbose > 0 {
			fmt.Fprintf(stderr, "p2pcat: stream from %s (%s)\n", c.RemoteAddr(), pathKind(c))
		}
		wg.Go(func() {
			defer func() { <-slots }()
			defer c.Close()
			if err := serve(ctx, c); err != nil && ctx.Err() == nil {
				fmt.Fprintf(stderr, "p2pcat: %s\n", failf("stream from "+short(peerOf(c)), err))
			}
		})
	}
}

// acceptAllowed accepts the next stream of a peer -allow allows; the
// others' streams are reset.
func acceptAllowed(ctx context.Context, o *options, n *p2psock.Node, stderr io.Writer) (*p2psock.Conn, error) {
	for {
		c, err := n.AcceptContext(ctx)
		if err != nil {
			return nil, err
		}
		if o.allow == nil || o.allow[peerOf(c)] {
			return c, nil
		}
		if o.verbose > 0 {
			fmt.Fprintf(stderr, "p2pcat: refused a stream from %s (not in -allow)\n", peerOf(c))
		}
		c.Reset()
	}
}

// announce prints what others need to reach this listening node: its ID
// (on stderr, "listening as <ID>") and its ticket ("ticket <ticket>"); with
// -json, one JSON object on stdout instead.
func announce(o *options, n *p2psock.Node, stdout, stderr io.Writer) {
	t := nodeTicket(o, n)
	if o.jsonOut {
		printJSON(stdout, map[string]any{"id": n.ID().String(), "ticket": t.String(), "network": n.Info().Network, "addrs": t.addrs})
		return
	}
	fmt.Fprintf(stderr, "listening as %s\nticket %s\n", n.ID(), t)
}

// peerOf returns the ID of c's peer.
func peerOf(c *p2psock.Conn) p2psock.ID { return c.RemoteAddr().(*p2psock.Addr).ID }

// lockedWriter serializes writes to w, from concurrent streams.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// pump reads stdin once, for one stream after another (-k).
type pump struct {
	ch       chan []byte
	err      error // set before ch closes
	pending  []byte
	terminal bool // stdin is a terminal
	stopOnce sync.Once
	done     chan struct{}
	sent     atomic.Int64 // bytes written to streams, for the progress line
}

// newPump starts reading r; stop ends the reading (unless it is blocked in
// r's Read: the process exits, or the caller closes r).
func newPump(r io.Reader) *pump {
	p := &pump{ch: make(chan []byte, 4), terminal: isTerminal(r), done: make(chan struct{})}
	if r == nil {
		close(p.ch)
		return p
	}
	go func() {
		for {
			b := make([]byte, 64<<10)
			n, err := r.Read(b)
			if n > 0 {
				select {
				case p.ch <- b[:n]:
				case <-p.done:
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					p.err = err
				}
				close(p.ch)
				return
			}
		}
	}()
	return p
}

// stop ends the pump's reading.
func (p *pump) stop() { p.stopOnce.Do(func() { close(p.done) }) }

// noInput is a pump with nothing in it.
func noInput() *pump { return newPump(nil) }

// pipe copies the pump to c and c to out, until both directions are done.
// Who ends its side when is what makes the exit statuses true: the side
// that opened the stream (acceptor false) closes its sending side at the
// end of its input; the side that accepted it (acceptor true) closes its
// own only once its input has ended and it has read the opener's end
// (and written it out), so that the opener reading the end of the stream
// knows the acceptor has everything. When the peer has finished while the
// input is a terminal (a person, who may never type ^D), the input ends
// there. When the peer has finished and then goes away (it closed the
// stream, its node left, or it stopped answering) while the input is
// still open, pipe ends at once rather than at the end of the input: with
// nil if nothing was sent (the peer was owed nothing), else with an error,
// since the peer may have missed some of it. When ctx ends, pipe closes
// the sending side and returns ctx's error.
func pipe(ctx context.Context, c *p2psock.Conn, in *pump, out io.Writer, acceptor bool) error {
	readDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, c)
		readDone <- err
	}()
	// An interrupt unblocks a Write the peer does not read.
	stopWrites := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Now()) })
	defer stopWrites()
	var inputDone, peerDone, sentEnd, wrote bool
	var probe *time.Ticker // while the peer is done and the input is not
	defer func() {
		if probe != nil {
			probe.Stop()
		}
	}()
	for {
		if peerDone && !inputDone && probe == nil {
			probe = time.NewTicker(peerGoneProbe)
		}
		var probed <-chan time.Time
		if probe != nil && !inputDone {
			probed = probe.C
		}
		if inputDone && !sentEnd && (!acceptor || peerDone) {
			if err := c.CloseWrite(); err != nil {
				if peerDone && !wrote {
					return nil // the peer is gone, having sent everything; it was owed nothing
				}
				return &failure{msg: "the peer closed the stream before reading everything", err: err}
			}
			sentEnd = true
		}
		if sentEnd && peerDone {
			return nil
		}
		if in.pending != nil {
			if _, err := c.Write(in.pending); err != nil {
				if ctx.Err() != nil {
					c.CloseWrite()
					return ctx.Err()
				}
				select {
				case rerr := <-readDone: // the peer went away: say why
					if rerr != nil {
						return rerr
					}
				default:
				}
				return err
			}
			in.sent.Add(int64(len(in.pending)))
			in.pending = nil
			wrote = true
			continue
		}
		var input <-chan []byte
		if !inputDone {
			input = in.ch
		}
		select {
		case b, ok := <-input:
			if !ok {
				inputDone = true
				if in.err != nil {
					return fmt.Errorf("reading stdin: %w", in.err)
				}
				continue
			}
			in.pending = b
		case err := <-readDone:
			readDone = nil
			if err != nil {
				return err
			}
			peerDone = true
			if in.terminal {
				inputDone = true // a person's terminal: the conversation is over
			}
		case <-probed:
			// An empty Write sends nothing; it fails once the peer has
			// stopped reading (it closed the stream) or the connection
			// has ended (the peer's node left, or the idle timeout).
			if _, err := c.Write(nil); err != nil {
				if !wrote {
					return nil
				}
				return &failure{msg: "the peer left before the end of the input", err: err}
			}
		case <-ctx.Done():
			c.CloseWrite()
			return ctx.Err()
		}
	}
}

// peerGoneProbe is how often pipe checks, while the peer is done and the
// input is not, whether the peer is still there.
const peerGoneProbe = 250 * time.Millisecond

// pathKind says how a stream reaches its peer, for -v.
func pathKind(c *p2psock.Conn) string {
	p := c.Path()
	if p.Relayed {
		return "relayed via " + p.Remote.String()
	}
	return "direct to " + p.Remote.String()
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	w, ok := r.(io.Writer) // an *os.File is both
	return ok && isTerminalWriter(w)
}
