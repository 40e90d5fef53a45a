package view

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures a Server. The zero value works.
type Config struct {
	// Interval is how often the page gets a new snapshot; 0 means 1 s.
	Interval time.Duration
	// MaxClients bounds the pages connected to /events at once; a page
	// past it is refused (503) and counted in Refused. 0 means 16.
	MaxClients int
}

// Server serves a node's view page, its snapshots and its metrics on one
// TCP listener.
type Server struct {
	src              Source
	cfg              Config
	ln               net.Listener
	srv              *http.Server
	slots            chan struct{} // one per /events client
	done             chan struct{} // closed by Close
	wg               sync.WaitGroup
	once             sync.Once
	refused, badHost atomic.Uint64
}

// Listen starts a server for src on the TCP address addr ("127.0.0.1:0"
// picks a free port; see Addr).
func Listen(addr string, src Source, cfg Config) (*Server, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 16
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	s := &Server{src: src, cfg: cfg, ln: ln, slots: make(chan struct{}, cfg.MaxClients), done: make(chan struct{})}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src))
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("view: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/snapshot", s.snapshot)
	mux.HandleFunc("GET /events", s.events)
	mux.Handle("GET /", http.FileServerFS(static))
	s.srv = &http.Server{Handler: s.checkHost(mux), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() { _ = s.srv.Serve(ln) }) // it ends with http.ErrServerClosed at Close
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Refused returns the /events clients refused for Config.MaxClients, and
// the requests refused for a Host header that names neither an IP address
// nor localhost.
func (s *Server) Refused() (clients, badHost uint64) { return s.refused.Load(), s.badHost.Load() }

// Close stops the server: connected pages are cut off. It returns once the
// server's goroutines have ended. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.srv.Close()
		s.wg.Wait()
	})
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// checkHost refuses requests whose Host header names a host other than an
// IP address or localhost: a web page elsewhere that rebinds its own name to
// this machine's address (DNS rebinding) cannot read the node's view.
func (s *Server) checkHost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hp, _, err := net.SplitHostPort(host); err == nil {
			host = hp
		}
		host = strings.Trim(host, "[]")
		if net.ParseIP(host) == nil && !strings.EqualFold(host, "localhost") {
			s.badHost.Add(1)
			http.Error(w, "view: the Host must be an IP address or localhost", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) snapshot(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.src.Snapshot()) // a page gone away: nothing to tell it
}

// events streams a snapshot every Config.Interval as server-sent events,
// until the page goes away or the server closes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.refused.Add(1)
		http.Error(w, "view: too many pages connected", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		b, err := json.Marshal(s.src.Snapshot())
		if err != nil {
			return
		}
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}
