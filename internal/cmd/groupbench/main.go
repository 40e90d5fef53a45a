// Command groupbench builds a network of nodes on loopback UDP sockets, lets
// some of them join a group, and measures multicast: delivery ratio, latency,
// bytes and CPU per delivered message, tree depth, and delivery after a
// tenth of the members fail mid-stream. In the same run it measures a
// baseline: the same messages sent as raw UDP datagrams, one per member.
//
//	go run ./internal/cmd/groupbench -n 50 -members 50
//	go run ./internal/cmd/groupbench -n 1000 -members 100
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/p2psock/p2psock/group"
	"github.com/p2psock/p2psock/internal/benchnet"
	"github.com/p2psock/p2psock/p2psock"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "groupbench:", err)
		os.Exit(1)
	}
}

type delivery struct {
	seq  int
	at   int
	when time.Time
}

func run() error {
	n := flag.Int("n", 50, "number of nodes")
	nm := flag.Int("members", 50, "members of the group")
	msgs := flag.Int("msgs", 100, "multicasts before the failures, and as many after")
	size := flag.Int("size", 1024, "message size in bytes")
	fail := flag.Float64("fail", 0.10, "share of the members that fail mid-stream")
	interval := flag.Duration("interval", 20*time.Millisecond, "time between two multicasts")
	settle := flag.Duration("settle", 2*group.DefaultRefresh, "time the tree settles after the last Join before measuring (pruning)")
	flag.Parse()
	if *nm > *n {
		return errors.New("more members than nodes")
	}

	nodes, built, err := benchnet.Build(*n, 8, nil, nil)
	if err != nil {
		return err
	}
	defer benchnet.Close(nodes)

	// Members: every (n/members)-th node.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	step := *n / *nm
	var members []int
	socks := map[int]*p2psock.GroupSocket{}
	got := make(chan delivery, 1<<16)
	var rwg sync.WaitGroup
	defer rwg.Wait()
	defer cancel()
	for i := 0; i < *n && len(members) < *nm; i += step {
		g, err := nodes[i].Join(ctx, "bench")
		if err != nil {
			return err
		}
		members = append(members, i)
		socks[i] = g
		rwg.Go(func() {
			for {
				m, err := g.Recv(ctx)
				if err != nil {
					return
				}
				var seq int
				if _, err := fmt.Sscanf(string(m.Data[:8]), "%08d", &seq); err != nil {
					continue // not one of the benchmark's messages
				}
				got <- delivery{seq: seq, at: i, when: time.Now()}
			}
		})
	}
	time.Sleep(*settle) // forwarders with few children step aside (pruning) within a refresh
	key := p2psock.KeyOf([]byte("bench"))
	depth := 0
	for _, i := range members {
		d := 0
		id := nodes[i].ID()
		for ; d < 64; d++ {
			var nd *p2psock.Node
			for _, x := range nodes {
				if x.ID() == id {
					nd = x
				}
			}
			p, ok := nd.Groups().Parent(key)
			if !ok {
				break
			}
			id = p
		}
		depth = max(depth, d)
	}

	// The tree: its nodes, and the forwarders among them (nodes in the
	// tree that are not members), by their number of children.
	isMember := map[p2psock.ID]bool{}
	for _, i := range members {
		isMember[nodes[i].ID()] = true
	}
	treeNodes, forwarders, fwdChildren := 0, 0, map[int]int{}
	for _, nd := range nodes {
		_, hasParent := nd.Groups().Parent(key)
		ch := len(nd.Groups().Children(key))
		if !hasParent && ch == 0 && !isMember[nd.ID()] {
			continue
		}
		treeNodes++
		if !isMember[nd.ID()] {
			forwarders++
			fwdChildren[ch]++
		}
	}

	bytesOut := func() uint64 {
		var s uint64
		for _, nd := range nodes {
			if nd != nil {
				s += nd.Info().Counters.BytesOut
			}
		}
		return s
	}
	cpu := benchnet.CPUTime

	data := make([]byte, *size)
	sendAt := map[int]time.Time{}
	phase := func(from, to int, live map[int]bool) (delivered int, lat []time.Duration, bytes uint64, cpuUsed time.Duration) {
		b0, c0 := bytesOut(), cpu()
		for seq := from; seq < to; seq++ {
			var src int
			for j := seq; ; j++ {
				if src = members[j%len(members)]; live[src] {
					break
				}
			}
			copy(data, fmt.Sprintf("%08d", seq))
			sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
			if seq > from {
				time.Sleep(*interval) // the sending rate: one multicast per interval
			}
			sendAt[seq] = time.Now()
			if err := nodes[src].Group("bench").Send(sctx, data); err != nil {
				fmt.Fprintln(os.Stderr, "groupbench: send", seq, err)
			}
			scancel()
		}
		// Collect until every live member has every message, or 10 s of quiet.
		want := 0
		for _, i := range members {
			if live[i] {
				want++
			}
		}
		want *= to - from
		timeout := time.NewTimer(10 * time.Second)
		defer timeout.Stop()
		seen := map[[2]int]bool{}
		if os.Getenv("GROUPBENCH_DEBUG") != "" {
			defer func() {
				per := map[int]int{}
				for k := range seen {
					per[k[1]]++
				}
				for _, i := range members {
					if live[i] && per[i] < to-from {
						p, ok := nodes[i].Groups().Parent(key)
						fmt.Fprintf(os.Stderr, "member %d got %d/%d; parent %v %v\n", i, per[i], to-from, ok, p.String()[:8])
					}
				}
			}()
		}
		for delivered < want {
			select {
			case d := <-got:
				if d.seq < from || d.seq >= to || !live[d.at] || seen[[2]int{d.seq, d.at}] {
					continue
				}
				seen[[2]int{d.seq, d.at}] = true
				delivered++
				lat = append(lat, d.when.Sub(sendAt[d.seq]))
				timeout.Reset(10 * time.Second)
			case <-timeout.C:
				return delivered, lat, bytesOut() - b0, cpu() - c0
			}
		}
		return delivered, lat, bytesOut() - b0, cpu() - c0
	}

	// The network's own traffic (keepalives, table refresh, tree refresh)
	// over as long as the first phase takes, for reference.
	b0 := bytesOut()
	time.Sleep(time.Duration(*msgs) * *interval)
	idle := bytesOut() - b0

	live := map[int]bool{}
	for _, i := range members {
		live[i] = true
	}
	losses := func() (retx, drops uint64) {
		for _, nd := range nodes {
			inf := nd.Info()
			retx += inf.Counters.Retransmits
			drops += inf.SocketDrops
		}
		return
	}
	rx0, dr0 := losses()
	d1, lat1, by1, cpu1 := phase(0, *msgs, live)
	rx1, dr1 := losses()
	want1 := *msgs * len(members)

	// A tenth of the members fail (close) mid-stream, then the stream goes on.
	nFail := int(float64(len(members)) * *fail)
	failed := 0
	for _, i := range members {
		if failed == nFail {
			break
		}
		if i != 0 {
			nodes[i].Close()
			live[i] = false
			failed++
		}
	}
	d2, lat2, _, _ := phase(*msgs, 2**msgs, live)
	want2 := *msgs * (len(members) - failed)
	// The tree repairs itself within two refreshes; the stream goes on.
	time.Sleep(2 * group.DefaultRefresh)
	d3, lat3, _, _ := phase(2**msgs, 3**msgs, live)
	bd, blat, bby, bcpu, err := rawFanout(len(members), *msgs, *size, *interval, cpu)
	if err != nil {
		return err
	}

	fmt.Printf("groupbench: %d nodes on loopback, %d members, %d multicasts of %d bytes (one every %v), GOMAXPROCS=%d, %s\n\n",
		*n, len(members), *msgs, *size, *interval, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("| metric | value |\n|---|---|\n")
	fmt.Printf("| network built in | %v |\n", built.Round(time.Millisecond))
	fmt.Printf("| tree depth (members' hops to the root), max | %d |\n", depth)
	fmt.Printf("| tree nodes / of them forwarders (not members) | %d / %d (forwarders by children: %v) |\n", treeNodes, forwarders, fwdChildren)
	fmt.Printf("| delivery, no churn | %d/%d (%.2f%%) |\n", d1, want1, 100*float64(d1)/float64(want1))
	fmt.Printf("| latency from Send to member, median / p99 | %v / %v |\n", benchnet.Percentile(lat1, 50, 10*time.Microsecond), benchnet.Percentile(lat1, 99, 10*time.Microsecond))
	fmt.Printf("| bytes sent (all nodes) per delivered message | %.0f B |\n", float64(by1)/float64(max(d1, 1)))
	fmt.Printf("| of which the network's idle traffic (same duration, no multicast) | %.0f B |\n", float64(idle)/float64(max(d1, 1)))
	fmt.Printf("| retransmissions / packets dropped at sockets (all nodes), no churn | %d / %d |\n", rx1-rx0, dr1-dr0)
	fmt.Printf("| CPU (all nodes) per delivered message | %v |\n", (cpu1 / time.Duration(max(d1, 1))).Round(time.Microsecond))
	fmt.Printf("| delivery to the remaining members right after %d of %d members failed (during repair) | %d/%d (%.2f%%) |\n",
		failed, len(members), d2, want2, 100*float64(d2)/float64(max(want2, 1)))
	fmt.Printf("| delivery after repair (%v later) | %d/%d (%.2f%%) |\n", 2*group.DefaultRefresh, d3, want2, 100*float64(d3)/float64(max(want2, 1)))
	fmt.Printf("| latency during / after repair, median | %v / %v |\n", benchnet.Percentile(lat2, 50, 10*time.Microsecond), benchnet.Percentile(lat3, 50, 10*time.Microsecond))
	fmt.Printf("\nBaseline, same run: the sender sends each message as one raw UDP datagram per member (no tree, no acknowledgement, no signature)\n\n")
	fmt.Printf("| metric | value |\n|---|---|\n")
	fmt.Printf("| delivery | %d/%d (%.2f%%) |\n", bd, *msgs*len(members), 100*float64(bd)/float64(*msgs*len(members)))
	fmt.Printf("| latency from send to member, median / p99 | %v / %v |\n", benchnet.Percentile(blat, 50, 10*time.Microsecond), benchnet.Percentile(blat, 99, 10*time.Microsecond))
	fmt.Printf("| bytes sent per delivered message | %.0f B |\n", float64(bby)/float64(max(bd, 1)))
	fmt.Printf("| CPU per delivered message | %v |\n", (bcpu / time.Duration(max(bd, 1))).Round(time.Microsecond))
	return nil
}

// rawFanout is the baseline: one UDP socket sends each of msgs messages as
// one datagram to each of members sockets on loopback, one message every
// interval.
func rawFanout(members, msgs, size int, interval time.Duration, cpu func() time.Duration) (delivered int, lat []time.Duration, bytes uint64, cpuUsed time.Duration, err error) {
	type arrival struct {
		seq  int
		when time.Time
	}
	got := make(chan arrival, members*msgs)
	var socks []*net.UDPConn
	var wg sync.WaitGroup
	defer func() {
		for _, c := range socks {
			c.Close()
		}
		wg.Wait()
	}()
	for range members {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, nil, 0, 0, err
		}
		socks = append(socks, c)
		wg.Go(func() {
			buf := make([]byte, 65536)
			for {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				if n >= 8 {
					got <- arrival{int(binary.BigEndian.Uint64(buf)), time.Now()}
				}
			}
		})
	}
	src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, nil, 0, 0, err
	}
	defer src.Close()
	data := make([]byte, size)
	sendAt := make([]time.Time, msgs)
	c0 := cpu()
	for seq := range msgs {
		if seq > 0 {
			time.Sleep(interval)
		}
		binary.BigEndian.PutUint64(data, uint64(seq))
		sendAt[seq] = time.Now()
		for _, c := range socks {
			if _, err := src.WriteToUDP(data, c.LocalAddr().(*net.UDPAddr)); err == nil {
				bytes += uint64(len(data))
			}
		}
	}
	timeout := time.NewTimer(2 * time.Second)
	defer timeout.Stop()
	for delivered < members*msgs {
		select {
		case a := <-got:
			delivered++
			lat = append(lat, a.when.Sub(sendAt[a.seq]))
		case <-timeout.C:
			return delivered, lat, bytes, cpu() - c0, nil
		}
	}
	return delivered, lat, bytes, cpu() - c0, nil
}
