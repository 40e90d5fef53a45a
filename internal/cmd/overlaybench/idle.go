package main

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

// idleWindow is what a network of idle nodes (or bare sockets) cost in one
// window, per node per second.
type idleWindow struct {
	cpu       time.Duration // process CPU (user + system) / nodes / second
	bytes     float64       // overlay bytes sent / nodes / second
	packets   float64       // overlay packets sent / nodes / second
	drops     uint64        // packets the nodes' sockets dropped in the window, all nodes
	refreshes float64       // lookups of the periodic refresh / nodes / minute
	silent    uint64        // contacts dropped for answering no liveness check or keepalive, all nodes
	contacts  float64       // routing table size at the end of the window, mean
	evictions int           // nodes whose table shrank in the window
}

// processCPU returns the CPU time (user + system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idleTotals are a network's counters summed over its nodes.
type idleTotals struct {
	bytes, packets, drops, refreshes, silent uint64
	contacts                                 []int
}

func sumIdle(nodes []*p2psock.Node) idleTotals {
	var t idleTotals
	t.contacts = make([]int, len(nodes))
	for i, nd := range nodes {
		inf := nd.Info()
		t.bytes += inf.Counters.BytesOut
		t.packets += inf.Counters.PacketsOut
		t.drops += inf.SocketDrops
		t.refreshes += inf.Counters.RefreshLookups
		t.silent += inf.Counters.ContactsSilent
		t.contacts[i] = inf.Contacts
	}
	return t
}

// measureIdle lets the network idle for windows windows of length each and
// returns what each cost. Nothing is sent by the application meanwhile.
func measureIdle(nodes []*p2psock.Node, length time.Duration, windows int) []idleWindow {
	n := float64(len(nodes))
	out := make([]idleWindow, 0, windows)
	prev, cpu0, t0 := sumIdle(nodes), processCPU(), time.Now()
	for w := range windows {
		time.Sleep(length)
		cur, cpu1, t1 := sumIdle(nodes), processCPU(), time.Now()
		secs := t1.Sub(t0).Seconds()
		iw := idleWindow{
			cpu:       time.Duration(float64(cpu1-cpu0) / n / secs),
			bytes:     float64(cur.bytes-prev.bytes) / n / secs,
			packets:   float64(cur.packets-prev.packets) / n / secs,
			drops:     cur.drops - prev.drops,
			refreshes: float64(cur.refreshes-prev.refreshes) / n / secs * 60,
			silent:    cur.silent - prev.silent,
		}
		total := 0
		for i, c := range cur.contacts {
			total += c
			if c < prev.contacts[i] {
				iw.evictions++
			}
		}
		iw.contacts = float64(total) / n
		out = append(out, iw)
		fmt.Fprintf(os.Stderr, "overlaybench: idle window %d/%d: %v CPU, %.0f B, %.2f packets per node per second, %d socket drops, %.2f refresh lookups per node per minute\n",
			w+1, windows, iw.cpu.Round(time.Microsecond/10), iw.bytes, iw.packets, iw.drops, iw.refreshes)
		prev, cpu0, t0 = cur, cpu1, t1
	}
	return out
}

// bareUDPIdle opens n UDP sockets on loopback addresses like the nodes', a
// goroutine blocked reading each, and returns the process CPU per socket per
// second over length: the floor under an idle node.
func bareUDPIdle(n int, length time.Duration) (time.Duration, error) {
	conns := make([]net.PacketConn, 0, n)
	var wg sync.WaitGroup
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	for i := range n {
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.%d.%d.%d:0", (i+2)>>16&0xff, (i+2)>>8&0xff, (i+2)&0xff))
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
		wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := c.ReadFrom(buf); err != nil {
					return
				}
			}
		})
	}
	cpu0, t0 := processCPU(), time.Now()
	time.Sleep(length)
	return time.Duration(float64(processCPU()-cpu0) / float64(n) / time.Since(t0).Seconds()), nil
}

// printIdle prints the idle windows beside the bare-socket baseline.
func printIdle(n int, length time.Duration, bare time.Duration, bareLen time.Duration, ws []idleWindow) {
	fmt.Printf("\nidle: %d nodes, nothing sent by the application, %d windows of %v; per node per second\n\n", n, len(ws), length)
	fmt.Printf("| window | CPU | bytes out | packets out | socket drops (all nodes) | contacts, mean | nodes whose table shrank | contacts dropped as silent (all nodes) | refresh lookups per node per minute |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| baseline: %d bare UDP sockets, a reader each, %v | %v | 0 | 0 | 0 | | | | |\n", n, bareLen, bare.Round(time.Microsecond/10))
	for i, w := range ws {
		fmt.Printf("| %d | %v | %.0f B | %.2f | %d | %.1f | %d | %d | %.2f |\n", i+1, w.cpu.Round(time.Microsecond/10), w.bytes, w.packets, w.drops, w.contacts, w.evictions, w.silent, w.refreshes)
	}
}
