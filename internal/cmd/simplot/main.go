// Command simplot draws the figures of the virtual network's runs against
// the network's size, as an SVG image: hops, lookup latency, state per
// node and idle traffic per node. Its input is the JSON lines that
// go test ./internal/sim -run TestVirtualNetworkRouting -sim.results FILE
// appends, one per run; for each size the last run is drawn.
//
//	go run ./internal/cmd/simplot -in docs/sim-results.jsonl -out docs/sim.svg
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

func main() {
	in := flag.String("in", "docs/sim-results.jsonl", "the runs' figures (JSON lines)")
	out := flag.String("out", "docs/sim.svg", "the SVG image to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "simplot:", err)
		os.Exit(1)
	}
}

// result is one run's figures (the fields simplot draws).
type result struct {
	N            int     `json:"n"`
	HopsP50      float64 `json:"hops_p50"`
	HopsP99      float64 `json:"hops_p99"`
	LatencyMsP50 float64 `json:"latency_ms_p50"`
	LatencyMsP99 float64 `json:"latency_ms_p99"`
	Contacts     float64 `json:"contacts"`
	HeapKiB      float64 `json:"heap_kib"`
	IdlePkts     float64 `json:"idle_pkts"`
	IdleBytes    float64 `json:"idle_bytes"`
	IdleS        float64 `json:"idle_s"`
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	byN := map[int]result{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		byN[r.N] = r
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(byN) == 0 {
		return fmt.Errorf("%s: no runs", in)
	}
	rs := make([]result, 0, len(byN))
	for _, r := range byN {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b result) int { return a.N - b.N })
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := draw(w, rs); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

type series struct {
	name  string
	color string
	y     func(result) float64
	has   func(result) bool // whether a run has the point (nil: every run)
}

// steadyIdle reports whether a run's idle window was long enough to show
// the idle network's steady state: a minute at least. A shorter one (the
// largest runs keep it short) is left out of the idle traffic panel.
func steadyIdle(r result) bool { return r.IdleS >= 60 }

type panel struct {
	title string
	unit  string
	s     []series
}

const (
	panelW, panelH = 420, 280
	left, right    = 60, 20
	top, bottom    = 40, 50
)

func draw(w io.Writer, rs []result) error {
	panels := []panel{
		{"hops per message", "hops", []series{
			{"median", "#1f77b4", func(r result) float64 { return r.HopsP50 }, nil},
			{"p99", "#d62728", func(r result) float64 { return r.HopsP99 }, nil},
		}},
		{"SendToKey until acknowledged (virtual)", "ms", []series{
			{"median", "#1f77b4", func(r result) float64 { return r.LatencyMsP50 }, nil},
			{"p99", "#d62728", func(r result) float64 { return r.LatencyMsP99 }, nil},
		}},
		{"state per node", "contacts / KiB", []series{
			{"routing table (contacts)", "#2ca02c", func(r result) float64 { return r.Contacts }, nil},
			{"heap + stacks (KiB)", "#9467bd", func(r result) float64 { return r.HeapKiB }, nil},
		}},
		{"idle traffic per node per second", "B / packets", []series{
			{"bytes", "#ff7f0e", func(r result) float64 { return r.IdleBytes }, steadyIdle},
			{"packets × 100", "#8c564b", func(r result) float64 { return r.IdlePkts * 100 }, steadyIdle},
		}},
	}
	var b strings.Builder
	W, H := 2*panelW, 2*panelH+30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="20" text-anchor="middle" font-size="15">p2psock overlay on the virtual network (internal/sim), against the number of nodes N</text>`+"\n", W/2)
	for i, p := range panels {
		x0, y0 := (i%2)*panelW, 30+(i/2)*panelH
		drawPanel(&b, p, rs, x0, y0)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func drawPanel(b *strings.Builder, p panel, rs []result, x0, y0 int) {
	pw, ph := float64(panelW-left-right), float64(panelH-top-bottom)
	ox, oy := float64(x0+left), float64(y0+top)
	minN, maxN := float64(rs[0].N), float64(rs[len(rs)-1].N)
	lo, hi := math.Log10(minN), math.Log10(maxN)
	if hi-lo < 1 {
		lo, hi = math.Floor(lo), math.Floor(lo)+1
	} else {
		lo, hi = math.Floor(lo), math.Ceil(hi)
	}
	ymax := 0.0
	for _, s := range p.s {
		for _, r := range rs {
			if s.has == nil || s.has(r) {
				ymax = max(ymax, s.y(r))
			}
		}
	}
	ymax = niceCeil(ymax)
	xOf := func(n float64) float64 { return ox + (math.Log10(n)-lo)/(hi-lo)*pw }
	yOf := func(v float64) float64 { return oy + ph - v/ymax*ph }
	fmt.Fprintf(b, `<text x="%.0f" y="%d" text-anchor="middle" font-size="13">%s</text>`+"\n", ox+pw/2, y0+top-18, p.title)
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", ox, oy, pw, ph)
	for e := lo; e <= hi; e++ {
		x := xOf(math.Pow(10, e))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`+"\n", x, oy, x, oy+ph)
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x, oy+ph+16, thousands(math.Pow(10, e)))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">N (log scale)</text>`+"\n", ox+pw/2, oy+ph+34)
	ticks := 4 // a tick every quarter of a 2, 10, 20 … scale
	if m := ymax / math.Pow(10, math.Floor(math.Log10(ymax))); m == 1 || m == 5 {
		ticks = 5
	}
	for i := 0; i <= ticks; i++ {
		v := ymax * float64(i) / float64(ticks)
		y := yOf(v)
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`+"\n", ox, y, ox+pw, y)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", ox-4, y+4, trim(v))
	}
	fmt.Fprintf(b, `<text x="%d" y="%.0f" text-anchor="middle" transform="rotate(-90 %d %.0f)">%s</text>`+"\n", x0+14, oy+ph/2, x0+14, oy+ph/2, p.unit)
	for k, s := range p.s {
		var pts []string
		for _, r := range rs {
			if s.has != nil && !s.has(r) {
				continue
			}
			x, y := xOf(float64(r.N)), yOf(s.y(r))
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x, y, s.color)
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), s.color)
		ly := oy + 14 + float64(k)*15
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"/>`+"\n", ox+8, ly-4, ox+24, ly-4, s.color)
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", ox+28, ly, s.name)
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

func trim(v float64) string {
	if v == math.Trunc(v) {
		return thousands(v)
	}
	return fmt.Sprintf("%.1f", v)
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
