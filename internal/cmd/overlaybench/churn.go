package main

import (
	"context"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/p2psock/p2psock/internal/benchnet"
	"github.com/p2psock/p2psock/p2psock"
)

// churnPlan is the schedule of the churners: alive of them at once, each
// living a time drawn uniformly in [minLife, maxLife] and replaced as soon
// as it is gone; a share crash of them end without a word (no Leave, their
// socket goes silent first), the others Close.
type churnPlan struct {
	alive            int
	minLife, maxLife time.Duration
	crash            float64
}

// next draws the life of the next churner of a slot, and whether it ends in
// a crash.
func (p churnPlan) next(r *mrand.Rand) (life time.Duration, crash bool) {
	life = p.minLife
	if d := p.maxLife - p.minLife; d > 0 {
		life += time.Duration(r.Int64N(int64(d) + 1))
	}
	return life, r.Float64() < p.crash
}

// firstStart is when slot i of the plan starts its first churner, counted
// from the start of the phase: the slots start spread over minLife, so that
// alive nodes do not all try to join in the same instant.
func (p churnPlan) firstStart(i int) time.Duration {
	if p.alive == 0 {
		return 0
	}
	return time.Duration(int64(p.minLife) * int64(i) / int64(p.alive))
}

// crashConn is the socket of a churner that will crash: once dead, it sends
// nothing and drops what it reads, as if its process had died, so that the
// Leave of the Close that frees the node never gets out.
type crashConn struct {
	*net.UDPConn
	dead atomic.Bool
}

// PacketConn hides the UDPConn's other methods (ReadMsgUDP, WriteMsgUDP)
// from quic-go, so that everything it sends goes through WriteTo; the
// buffer sizes still reach the socket.
func (c *crashConn) PacketConn() net.PacketConn {
	return struct {
		net.PacketConn
		buffers
	}{c, c.UDPConn}
}

type buffers interface {
	SetReadBuffer(int) error
	SetWriteBuffer(int) error
	SyscallConn() (syscall.RawConn, error)
}

func (c *crashConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.dead.Load() {
		return len(p), nil
	}
	return c.UDPConn.WriteTo(p, addr)
}

func (c *crashConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(p)
		if err != nil || !c.dead.Load() {
			return n, addr, err
		}
	}
}

// liveSet is the nodes alive at a moment: the stable full nodes, and the
// churners from their NewNode (they take messages as soon as others have
// them in their tables, before their Bind returns) to the start of their
// Close, joining until their Bind returns, bound after.
type liveSet struct {
	mu      sync.Mutex
	stable  []p2psock.ID
	joining map[p2psock.ID]bool // full churners whose Bind has not returned
	bound   map[p2psock.ID]bool // full churners bound
	gone    map[p2psock.ID]bool // churners (full or clients) of the phase that have left
	running int                 // churners, full or clients, from NewNode to Close
	nBound  int                 // of which bound
}

// closest returns the full node closest to key among the stable and bound
// ones (bound) and among those and the joining ones (all).
func (l *liveSet) closest(key p2psock.Key) (bound, all p2psock.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bound = l.stable[0]
	for _, id := range l.stable[1:] {
		if key.Closer(id.Key(), bound.Key()) {
			bound = id
		}
	}
	for id := range l.bound {
		if key.Closer(id.Key(), bound.Key()) {
			bound = id
		}
	}
	all = bound
	for id := range l.joining {
		if key.Closer(id.Key(), all.Key()) {
			all = id
		}
	}
	return bound, all
}

// isChurner reports whether id is one of the phase's churners.
func (l *liveSet) isChurner(id p2psock.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.joining[id] || l.bound[id] || l.gone[id]
}

// exact judges a delivery at to key: strict when to was the closest full
// node, joining ones included, when the send began (b0, a0) or when it was
// acknowledged (b1, a1); bound when it was the closest bound one, or a
// joining one closer than that.
func exact(key p2psock.Key, to, b0, a0, b1, a1 p2psock.ID, churner bool) (strict, bound bool) {
	strict = to == a0 || to == a1
	bound = to == b0 || to == b1 || churner && (key.Closer(to.Key(), b0.Key()) || key.Closer(to.Key(), b1.Key()))
	return strict, bound
}

// tracker hands the deliveries the receivers see to the sends waiting for
// them, by sequence number.
type tracker struct {
	mu      sync.Mutex
	waiting map[uint64]chan delivery
	clients map[p2psock.ID]bool // light clients alive: a delivery to one is wrong
	wrong   atomic.Int64
	stray   atomic.Int64
}

func (t *tracker) expect(seq uint64) chan delivery {
	ch := make(chan delivery, 1)
	t.mu.Lock()
	t.waiting[seq] = ch
	t.mu.Unlock()
	return ch
}

func (t *tracker) forget(seq uint64) {
	t.mu.Lock()
	delete(t.waiting, seq)
	t.mu.Unlock()
}

func (t *tracker) deliver(d delivery) {
	if len(d.msg.Data) < 8 {
		t.stray.Add(1)
		return
	}
	seq := binary.BigEndian.Uint64(d.msg.Data)
	t.mu.Lock()
	ch, ok := t.waiting[seq]
	delete(t.waiting, seq)
	toClient := t.clients[d.at]
	t.mu.Unlock()
	if toClient {
		t.wrong.Add(1)
	}
	if !ok {
		t.stray.Add(1)
		return
	}
	ch <- d
}

// receive reads nd's messages into t until ctx ends or nd closes.
func (t *tracker) receive(ctx context.Context, nd *p2psock.Node) {
	for {
		m, err := nd.RecvFrom(ctx)
		if err != nil {
			return
		}
		t.deliver(delivery{at: nd.ID(), msg: m, when: time.Now()})
	}
}

// phaseStats are the figures of one phase of the churn measurement.
type phaseStats struct {
	name                    string
	window                  time.Duration // measured: from the first send to the end of the last
	sends, exact, failed    int
	unread                  int // acknowledged, never read: the node closed first
	wrong                   int64
	hops                    []int
	ackLat                  []time.Duration
	stablePkts, churnPkts   uint64
	cpu                     time.Duration
	joins, joinFails, crash int
	runningSum, boundSum    int // churners running and bound, summed over samples
	samples                 int
	strict                  int // exact, joining churners included (exact counts among bound ones)
	bindTimes               []time.Duration
	staleContacts           int // contacts of the stable nodes that are churners gone, at the end
	contacts                int // contacts of the stable nodes, at the end
}

// churnRun is the churn measurement: phases over one network of stable full
// nodes.
type churnRun struct {
	stable []*p2psock.Node
	plan   churnPlan
	rate   float64 // SendToKey per second
	window time.Duration
	size   int
	tr     *tracker
	seq    atomic.Uint64

	bindMu    sync.Mutex
	bindTimes []time.Duration // of the churners that joined, since the last phase began
}

// phase runs churners (as "client" or "full"; "" for none) for a warm-up of
// maxLife and then the measured window, with messages to random keys from
// random stable nodes at the run's rate meanwhile.
func (r *churnRun) phase(name, as string) phaseStats {
	st := phaseStats{name: name}
	live := &liveSet{joining: map[p2psock.ID]bool{}, bound: map[p2psock.ID]bool{}, gone: map[p2psock.ID]bool{}}
	for _, nd := range r.stable {
		live.stable = append(live.stable, nd.ID())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex // guards cnt, and st while sends run
	var cnt churnCounts
	var slots sync.WaitGroup
	r.bindMu.Lock()
	r.bindTimes = nil
	r.bindMu.Unlock()
	seed := uint64(time.Now().UnixNano())
	if as != "" {
		for i := range r.plan.alive {
			slots.Go(func() {
				rnd := mrand.New(mrand.NewPCG(seed, uint64(i)))
				select {
				case <-time.After(r.plan.firstStart(i)):
				case <-ctx.Done():
					return
				}
				for ctx.Err() == nil {
					life, crash := r.plan.next(rnd)
					joined, pkts, crashed := r.churner(ctx, live, i, as == "client", life, crash)
					mu.Lock()
					cnt.pkts += pkts
					if joined {
						cnt.joins++
					} else if ctx.Err() == nil {
						cnt.fails++
					}
					if crashed {
						cnt.crashes++
					}
					mu.Unlock()
				}
			})
		}
		select {
		case <-time.After(r.plan.maxLife):
		case <-ctx.Done():
		}
	}

	pkts := func() uint64 {
		var s uint64
		for _, nd := range r.stable {
			s += nd.Info().Counters.PacketsOut
		}
		return s
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				live.mu.Lock()
				a, b := live.running, live.nBound
				live.mu.Unlock()
				mu.Lock()
				st.runningSum += a
				st.boundSum += b
				st.samples++
				mu.Unlock()
			case <-sampleCtx.Done():
				return
			}
		}
	})
	p0, c0, t0 := pkts(), benchnet.CPUTime(), time.Now()
	mu.Lock()
	cnt0 := cnt
	mu.Unlock()
	w0 := r.tr.wrong.Load()
	var sends sync.WaitGroup
	sem := make(chan struct{}, 64)
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.rate))
	for end := time.Now().Add(r.window); time.Now().Before(end); <-tick.C {
		sem <- struct{}{}
		sends.Go(func() {
			defer func() { <-sem }()
			r.send(live, &mu, &st)
		})
	}
	tick.Stop()
	sends.Wait()
	stopSampling()
	sampler.Wait()
	st.window = time.Since(t0)
	st.stablePkts = pkts() - p0
	st.cpu = benchnet.CPUTime() - c0
	st.wrong = r.tr.wrong.Load() - w0
	mu.Lock()
	st.joins, st.joinFails, st.crash = cnt.joins-cnt0.joins, cnt.fails-cnt0.fails, cnt.crashes-cnt0.crashes
	st.churnPkts = cnt.pkts - cnt0.pkts
	mu.Unlock()
	r.bindMu.Lock()
	st.bindTimes = slices.Clone(r.bindTimes)
	r.bindMu.Unlock()
	// The stable nodes' contacts that are churners gone, before the last
	// churners leave.
	live.mu.Lock()
	for _, nd := range r.stable {
		for _, id := range nd.Contacts() {
			st.contacts++
			if live.gone[id] {
				st.staleContacts++
			}
		}
	}
	live.mu.Unlock()
	cancel()
	slots.Wait()
	return st
}

// churnCounts are the running totals of a phase's churners.
type churnCounts struct {
	joins, fails, crashes int
	pkts                  uint64 // sent by the churners that ended
}

// churner runs one churner of slot i: it joins through a random stable node,
// lives for life (or until ctx ends) and then closes, or crashes if crash is
// set and ctx has not ended. It returns whether it joined, the packets it
// sent, and whether it crashed.
func (r *churnRun) churner(ctx context.Context, live *liveSet, i int, client bool, life time.Duration, crash bool) (joined bool, pkts uint64, crashed bool) {
	a := len(r.stable) + i
	cfg := p2psock.Config{Bootstrap: []string{r.stable[benchnet.Rand(len(r.stable))].UDPAddr().String()},
		JoinOnly: !client, Client: client, Difficulty: -1}
	addr := fmt.Sprintf("127.%d.%d.%d:0", (a+2)>>16&0xff, (a+2)>>8&0xff, (a+2)&0xff)
	var cc *crashConn
	if crash {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false, 0, false
		}
		cc = &crashConn{UDPConn: pc.(*net.UDPConn)}
		cfg.PacketConn = cc.PacketConn()
	} else {
		cfg.ListenAddr = addr
	}
	nd, err := p2psock.NewNode(cfg)
	if err != nil {
		if cc != nil {
			cc.Close()
		}
		return false, 0, false
	}
	id := nd.ID()
	rctx, rcancel := context.WithCancel(ctx)
	var recv sync.WaitGroup
	recv.Go(func() { r.tr.receive(rctx, nd) })
	live.mu.Lock()
	live.running++
	if client {
		r.tr.mu.Lock()
		r.tr.clients[id] = true
		r.tr.mu.Unlock()
	} else {
		live.joining[id] = true
	}
	live.mu.Unlock()
	bctx, bcancel := context.WithTimeout(ctx, 30*time.Second)
	t0 := time.Now()
	err = nd.Bind(bctx)
	took := time.Since(t0)
	bcancel()
	if err == nil {
		joined = true
		r.bindMu.Lock()
		r.bindTimes = append(r.bindTimes, took)
		r.bindMu.Unlock()
		live.mu.Lock()
		live.nBound++
		if !client {
			delete(live.joining, id)
			live.bound[id] = true
		}
		live.mu.Unlock()
		select {
		case <-time.After(life):
		case <-ctx.Done():
		}
	}
	live.mu.Lock()
	live.running--
	if joined {
		live.nBound--
	}
	delete(live.joining, id)
	delete(live.bound, id)
	live.gone[id] = true
	live.mu.Unlock()
	pkts = nd.Info().Counters.PacketsOut
	if joined && crash && ctx.Err() == nil {
		cc.dead.Store(true)
		crashed = true
	}
	nd.Close()
	rcancel()
	recv.Wait()
	if client {
		r.tr.mu.Lock()
		delete(r.tr.clients, id)
		r.tr.mu.Unlock()
	}
	return joined, pkts, crashed
}

// send sends one measured message from a random stable node to a random
// key and records what became of it, judged by exact against the live full
// nodes when the send began and when it was acknowledged (a full churner
// may join or leave meanwhile).
func (r *churnRun) send(live *liveSet, mu *sync.Mutex, st *phaseStats) {
	seq := r.seq.Add(1)
	var key p2psock.Key
	for j := range key {
		key[j] = byte(benchnet.Rand(256))
	}
	data := make([]byte, max(r.size, 8))
	binary.BigEndian.PutUint64(data, seq)
	from := r.stable[benchnet.Rand(len(r.stable))]
	ch := r.tr.expect(seq)
	b0, a0 := live.closest(key)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t0 := time.Now()
	err := from.SendToKey(ctx, data, key)
	lat := time.Since(t0)
	cancel()
	b1, a1 := live.closest(key)
	var d delivery
	var read bool
	if err == nil {
		select {
		case d = <-ch:
			read = true
		case <-time.After(5 * time.Second):
		}
	}
	r.tr.forget(seq)
	mu.Lock()
	defer mu.Unlock()
	st.sends++
	switch {
	case err != nil:
		st.failed++
	case !read:
		st.unread++
	default:
		st.ackLat = append(st.ackLat, lat)
		st.hops = append(st.hops, d.msg.Hops)
		strict, bound := exact(key, d.at, b0, a0, b1, a1, live.isChurner(d.at))
		if strict {
			st.strict++
		}
		if bound {
			st.exact++
		}
	}
}

// runChurn measures messages to keys among the stable full nodes: without
// churn (the baseline), then while plan.alive extra nodes come and go as light
// clients, then as full members (as says which: client, full or both).
func runChurn(stable []*p2psock.Node, built time.Duration, joinPar int, plan churnPlan, as string, rate float64, window time.Duration, size int) error {
	var phases []struct{ name, as string }
	phases = append(phases, struct{ name, as string }{"no churn (baseline)", ""})
	switch as {
	case "client", "full":
	case "both":
	default:
		return fmt.Errorf("unknown -churn-as %q", as)
	}
	if as != "full" {
		phases = append(phases, struct{ name, as string }{"churn as light clients", "client"})
	}
	if as != "client" {
		phases = append(phases, struct{ name, as string }{"churn as full members", "full"})
	}
	r := &churnRun{stable: stable, plan: plan, rate: rate, window: window, size: size,
		tr: &tracker{waiting: map[uint64]chan delivery{}, clients: map[p2psock.ID]bool{}}}
	ctx, cancel := context.WithCancel(context.Background())
	var rwg sync.WaitGroup
	for _, nd := range stable {
		rwg.Go(func() { r.tr.receive(ctx, nd) })
	}
	defer rwg.Wait()
	defer cancel()
	var res []phaseStats
	for _, p := range phases {
		fmt.Fprintf(os.Stderr, "overlaybench: %s: phase begins\n", p.name)
		res = append(res, r.phase(p.name, p.as))
	}

	fmt.Printf("overlaybench: %d stable full nodes on loopback built in %v (%d joining at once); churn: %d extra nodes alive at once, each for %v–%v, %.0f%% of them crash (no Leave); %.0f SendToKey/s of %d bytes among the stable nodes for %v a phase (after a warm-up of %v); GOMAXPROCS=%d, %s\n\n",
		len(stable), built.Round(time.Millisecond), joinPar, plan.alive, plan.minLife, plan.maxLife, plan.crash*100, rate, size, window, plan.maxLife, runtime.GOMAXPROCS(0), runtime.Version())
	row := func(metric string, f func(s phaseStats) string) {
		fmt.Printf("| %s |", metric)
		for _, s := range res {
			fmt.Printf(" %s |", f(s))
		}
		fmt.Println()
	}
	fmt.Printf("| metric |")
	for _, s := range res {
		fmt.Printf(" %s |", s.name)
	}
	fmt.Printf("\n|---|")
	for range res {
		fmt.Printf("---|")
	}
	fmt.Println()
	secs := func(s phaseStats) float64 { return s.window.Seconds() }
	row("churners running / bound, mean", func(s phaseStats) string {
		if s.samples == 0 {
			return "0 / 0"
		}
		return fmt.Sprintf("%.1f / %.1f", float64(s.runningSum)/float64(s.samples), float64(s.boundSum)/float64(s.samples))
	})
	row("churners joined / joins failed / crashed (no Leave)", func(s phaseStats) string {
		return fmt.Sprintf("%d / %d / %d", s.joins, s.joinFails, s.crash)
	})
	row("churner's Bind, median / p99", func(s phaseStats) string {
		return fmt.Sprintf("%v / %v", benchnet.Percentile(s.bindTimes, 50, time.Millisecond), benchnet.Percentile(s.bindTimes, 99, time.Millisecond))
	})
	row("SendToKey delivered to the XOR-closest full node: bound ones", func(s phaseStats) string {
		return fmt.Sprintf("%d/%d (%.2f %%)", s.exact, s.sends, 100*float64(s.exact)/float64(max(s.sends, 1)))
	})
	row("… joining ones included", func(s phaseStats) string {
		return fmt.Sprintf("%d/%d (%.2f %%)", s.strict, s.sends, 100*float64(s.strict)/float64(max(s.sends, 1)))
	})
	row("SendToKey failed (error) / acknowledged but never read", func(s phaseStats) string {
		return fmt.Sprintf("%d / %d", s.failed, s.unread)
	})
	row("messages to keys delivered to a light client", func(s phaseStats) string { return fmt.Sprint(s.wrong) })
	row("hops per message, median / p99 / max", func(s phaseStats) string {
		return fmt.Sprintf("%d / %d / %d", pct(s.hops, 50), pct(s.hops, 99), pct(s.hops, 100))
	})
	row("SendToKey until acknowledged, median / p99", func(s phaseStats) string {
		return fmt.Sprintf("%v / %v", benchnet.Percentile(s.ackLat, 50, time.Microsecond), benchnet.Percentile(s.ackLat, 99, time.Microsecond))
	})
	row("packets sent by the stable nodes, per message (their keepalives included)", func(s phaseStats) string {
		return fmt.Sprintf("%.1f", float64(s.stablePkts)/float64(max(s.sends, 1)))
	})
	row("packets sent by the stable nodes, per second per node", func(s phaseStats) string {
		return fmt.Sprintf("%.1f", float64(s.stablePkts)/secs(s)/float64(len(stable)))
	})
	row("packets sent by the stable nodes over the baseline's rate, per churner joined", func(s phaseStats) string {
		base := float64(res[0].stablePkts) / secs(res[0])
		if s.joins == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", (float64(s.stablePkts)/secs(s)-base)*secs(s)/float64(s.joins))
	})
	row("packets sent by the churners, per second", func(s phaseStats) string {
		return fmt.Sprintf("%.0f", float64(s.churnPkts)/secs(s))
	})
	row("CPU of the whole process, cores busy", func(s phaseStats) string {
		return fmt.Sprintf("%.2f", s.cpu.Seconds()/secs(s))
	})
	row("stable nodes' contacts, mean / of which churners gone", func(s phaseStats) string {
		return fmt.Sprintf("%.1f / %.1f", float64(s.contacts)/float64(len(stable)), float64(s.staleContacts)/float64(len(stable)))
	})
	return nil
}
