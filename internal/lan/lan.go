// Package lan finds the nodes of a network on the same machine and on the
// same LAN, so that nodes started with no entry point meet.
//
// On one machine, nodes register in a directory (one file per node, named
// after its process and port, holding its address); a node reads the others'
// files and drops those of processes that are gone. On a LAN, nodes announce
// themselves with a small UDP datagram to a multicast group (site-local
// 239.255.80.80, port 7447, TTL 1), sent from the node's own socket so that
// the source address is the node's; a listener that hears a node it does not
// know answers with its own announcement. Announcements carry no secret and
// are only hints: the overlay verifies every node it contacts.
package lan

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Group is the multicast group and port of announcements.
var Group = &net.UDPAddr{IP: net.IPv4(239, 255, 80, 80), Port: 7447}

// magic starts every announcement: "p2psock" and the format version 1.
var magic = []byte("p2psock\x01")

// AnnouncementLen is the size of an announcement: magic (8), network hash
// (8), node ID (32).
const AnnouncementLen = 48

// NetworkHash is the first 8 bytes of SHA-256 of the network name.
func NetworkHash(network string) [8]byte {
	h := sha256.Sum256([]byte("p2psock network " + network))
	var out [8]byte
	copy(out[:], h[:8])
	return out
}

// Announcement is what a node multicasts about itself.
type Announcement struct {
	Network [8]byte
	ID      [32]byte
}

// Append encodes a.
func (a Announcement) Append(b []byte) []byte {
	b = append(b, magic...)
	b = append(b, a.Network[:]...)
	return append(b, a.ID[:]...)
}

// ErrNotAnnouncement is returned by Parse for any other datagram.
var ErrNotAnnouncement = errors.New("lan: not an announcement")

// Parse decodes an announcement.
func Parse(b []byte) (Announcement, error) {
	var a Announcement
	if len(b) != AnnouncementLen || !bytes.Equal(b[:8], magic) {
		return a, ErrNotAnnouncement
	}
	copy(a.Network[:], b[8:16])
	copy(a.ID[:], b[16:])
	return a, nil
}

// Listen joins the announcement group on the default multicast interface.
func Listen() (*net.UDPConn, error) {
	c, err := net.ListenMulticastUDP("udp4", nil, Group)
	if err != nil {
		return nil, fmt.Errorf("lan: joining %v: %w", Group, err)
	}
	return c, nil
}

// Registry is a node's entry in the directory of the nodes of one network
// on this machine.
type Registry struct {
	dir  string
	file string
}

// DefaultDir is the registry's directory: per user, under the system's
// temporary directory.
func DefaultDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("p2psock-%d", os.Getuid()), "local")
}

// Register records addr as a node of network in dir ("" is DefaultDir).
func Register(dir, network string, addr netip.AddrPort) (*Registry, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	h := NetworkHash(network)
	dir = filepath.Join(dir, fmt.Sprintf("%x", h))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lan: registry: %w", err)
	}
	r := &Registry{dir: dir, file: filepath.Join(dir, fmt.Sprintf("%d-%d", os.Getpid(), addr.Port()))}
	tmp := r.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr.String()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("lan: registry: %w", err)
	}
	if err := os.Rename(tmp, r.file); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("lan: registry: %w", err)
	}
	return r, nil
}

// OpenRegistry returns the registry of network in dir ("" is DefaultDir)
// to read its nodes (Peers) without recording one.
func OpenRegistry(dir, network string) *Registry {
	if dir == "" {
		dir = DefaultDir()
	}
	return &Registry{dir: filepath.Join(dir, fmt.Sprintf("%x", NetworkHash(network)))}
}

// Peers returns the addresses of the other nodes registered, dropping the
// entries of processes that no longer run.
func (r *Registry) Peers() []string {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		path := filepath.Join(r.dir, e.Name())
		if path == r.file || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		pid, _, ok := strings.Cut(e.Name(), "-")
		p, err := strconv.Atoi(pid)
		if !ok || err != nil {
			continue
		}
		if !alive(p) {
			os.Remove(path)
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if ap, err := netip.ParseAddrPort(strings.TrimSpace(string(b))); err == nil {
			out = append(out, ap.String())
		}
	}
	return out
}

// Close removes the node's entry.
func (r *Registry) Close() error {
	if r.file == "" {
		return nil // opened to read (OpenRegistry)
	}
	return os.Remove(r.file)
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
