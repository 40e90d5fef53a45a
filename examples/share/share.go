package main

// The sharing itself: what goes in the DHT, how an owner serves its files
// over streams, and how a client downloads and verifies one.

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// recordTTL is how long a published record lives unless its owner renews it.
// A server that crashes stays listed at most this long.
const recordTTL = 10 * time.Minute

// fileInfo is what an owner publishes about a file: the value of its record
// under nameKey(Name). It needs no owner field: the DHT signs every record
// with its owner's identity and returns the owner with it (dht.Record.Owner),
// and that owner is who serves the file.
type fileInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// nameKey is the DHT key files named name are published under. Every owner
// of a file of that name adds its own value there.
func nameKey(name string) string { return "share:name:" + name }

// offer is a file one owner says it serves.
type offer struct {
	fileInfo
	Owner p2psock.ID
}

// publish adds a record per file; each owner's records sit side by side
// with those of other owners under the same key.
func publish(ctx context.Context, d *dht.DHT, infos []fileInfo) error {
	for _, info := range infos {
		value, err := json.Marshal(info)
		if err != nil {
			return err
		}
		if err := d.Add(ctx, nameKey(info.Name), value, recordTTL); err != nil {
			return fmt.Errorf("publishing %s: %w", info.Name, err)
		}
	}
	return nil
}

// unpublish removes this node's records of the files; the records of other
// owners stay.
func unpublish(ctx context.Context, d *dht.DHT, infos []fileInfo) {
	for _, info := range infos {
		value, _ := json.Marshal(info)
		_ = d.Remove(ctx, nameKey(info.Name), value) // best effort: the TTL cleans up otherwise
	}
}

// search returns the files published under name, grouped by content: one
// slice of offers (one per owner) per SHA-256, the most shared first.
func search(ctx context.Context, d *dht.DHT, name string) ([][]offer, error) {
	recs, err := d.Get(ctx, nameKey(name))
	if err != nil {
		return nil, fmt.Errorf("searching %q: %w", name, err)
	}
	byHash := map[string][]offer{}
	for _, r := range recs {
		// Anybody can add values under any key: the signature proves who
		// added one, not that it makes sense. Skip what does not.
		var info fileInfo
		if json.Unmarshal(r.Value, &info) != nil || info.Name != name || info.Size < 0 || !validHash(info.SHA256) {
			continue
		}
		byHash[info.SHA256] = append(byHash[info.SHA256], offer{info, r.Owner})
	}
	var versions [][]offer
	for _, v := range byHash {
		versions = append(versions, v)
	}
	slices.SortFunc(versions, func(a, b []offer) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a[0].SHA256, b[0].SHA256))
	})
	return versions, nil
}

// choose picks the version to download: the one whose hash starts with
// shaPrefix if given, else the most shared one.
func choose(versions [][]offer, name, shaPrefix string) ([]offer, error) {
	if len(versions) == 0 {
		return nil, fmt.Errorf("nobody shares %q", name)
	}
	if shaPrefix == "" {
		return versions[0], nil
	}
	var match [][]offer
	for _, v := range versions {
		if strings.HasPrefix(v[0].SHA256, strings.ToLower(shaPrefix)) {
			match = append(match, v)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("no version of %q has a SHA-256 starting with %s", name, shaPrefix)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("several versions of %q have a SHA-256 starting with %s", name, shaPrefix)
}

func printVersions(w io.Writer, versions [][]offer) {
	for _, v := range versions {
		fmt.Fprintf(w, "%s  %s  sha256 %s  %d owner(s)\n", v[0].Name, formatSize(v[0].Size), v[0].SHA256, len(v))
		for _, o := range v {
			fmt.Fprintf(w, "    %s\n", o.Owner)
		}
	}
}

func validHash(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && s == strings.ToLower(s)
}

// shuffled returns the offers in random order, to spread downloads over the
// owners.
func shuffled(offers []offer) []offer {
	offers = slices.Clone(offers)
	rand.Shuffle(len(offers), func(i, j int) { offers[i], offers[j] = offers[j], offers[i] })
	return offers
}

// library is the set of files a node serves, by SHA-256.
type library struct {
	mu    sync.Mutex
	files map[string]string // hex SHA-256 → path
}

func newLibrary() *library { return &library{files: map[string]string{}} }

// add hashes a file and serves it from now on.
func (l *library) add(path string) (fileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileInfo{}, err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return fileInfo{}, err
	}
	info := fileInfo{Name: filepath.Base(path), Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}
	l.mu.Lock()
	l.files[info.SHA256] = path
	l.mu.Unlock()
	return info, nil
}

// The protocol on a stream is one request line from the client,
//
//	GET <hex SHA-256>\n
//
// answered by "OK\n" and the file's bytes, or by "ERR <reason>\n".

// serve answers the streams peers open to n until ctx ends or n closes.
// Node.AcceptContext is net.Listener's Accept, with a context.
func (l *library) serve(ctx context.Context, n *p2psock.Node, log io.Writer) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := n.AcceptContext(ctx)
		if err != nil {
			return err
		}
		wg.Go(func() {
			// Cut the transfer short when ctx ends.
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			l.handle(c, log)
		})
	}
}

// handle answers one request.
func (l *library) handle(c *p2psock.Conn, log io.Writer) {
	defer c.Close()
	// The peer's ID was proved in the TLS handshake: it cannot be spoofed.
	peer := c.RemoteAddr().(*p2psock.Addr).ID
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 128)).ReadString('\n')
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	hash, ok := strings.CutPrefix(strings.TrimSpace(line), "GET ")
	l.mu.Lock()
	path, found := l.files[hash]
	l.mu.Unlock()
	if !ok || !found {
		fmt.Fprintf(c, "ERR no such file\n")
		return
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(c, "ERR %v\n", err)
		return
	}
	defer f.Close()
	start := time.Now()
	fmt.Fprintf(c, "OK\n")
	sent, err := io.Copy(c, f)
	if err != nil {
		fmt.Fprintf(log, "sending %s to %s: %v\n", filepath.Base(path), short(peer), err)
		return
	}
	fmt.Fprintf(log, "sent %s (%s) to %s in %v\n", filepath.Base(path), formatSize(sent), short(peer),
		time.Since(start).Round(time.Millisecond))
}

// download fetches a file into path from the first of its owners that
// delivers it with the SHA-256 they published, and returns that owner.
// Progress goes to progress (a terminal: stderr).
func download(ctx context.Context, n *p2psock.Node, offers []offer, path string, progress io.Writer) (p2psock.ID, error) {
	var errs []error
	for _, o := range offers {
		if o.Owner == n.ID() {
			continue // our own copy: a node cannot Connect to itself
		}
		err := fetch(ctx, n, o, path, progress)
		if err == nil {
			return o.Owner, nil
		}
		if ctx.Err() != nil {
			return p2psock.ID{}, err
		}
		err = fmt.Errorf("owner %s: %w", short(o.Owner), err)
		fmt.Fprintln(progress, err, "- trying the next owner")
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return p2psock.ID{}, errors.New("no owner to download from")
	}
	return p2psock.ID{}, fmt.Errorf("download failed: %w", errors.Join(errs...))
}

// fetch downloads one owner's copy into path. The bytes go to path+".part"
// and are hashed on the way; the file gets its name only once the hash
// matches, and the partial file is removed on any failure.
func fetch(ctx context.Context, n *p2psock.Node, o offer, path string, progress io.Writer) (err error) {
	c, err := n.Connect(ctx, o.Owner)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() }) // Ctrl-C interrupts the transfer
	defer stop()
	how := "direct"
	if p := c.Path(); p.Relayed {
		how = "through a relay"
	}
	fmt.Fprintf(progress, "downloading from %s (%s)\n", short(o.Owner), how)

	// Ask, and close our side: the owner reads EOF after the request.
	if _, err := fmt.Fprintf(c, "GET %s\n", o.SHA256); err != nil {
		return err
	}
	c.CloseWrite()
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	if status != "OK\n" {
		return fmt.Errorf("refused: %s", strings.TrimSpace(status))
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	part := path + ".part"
	f, err := os.Create(part)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(part)
		}
	}()
	h := sha256.New()
	bar := newProgressBar(progress, o.Size)
	_, err = io.CopyN(io.MultiWriter(f, h, bar), r, o.Size)
	bar.finish()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("the owner sent less than the %s it published", formatSize(o.Size))
		}
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA256 {
		return fmt.Errorf("SHA-256 mismatch: got %s, the owner published %s", got, o.SHA256)
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(part, path)
}

// short abbreviates an ID for messages.
func short(id p2psock.ID) string { return id.String()[:12] + "…" }

func formatSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
