package overlay

// DefaultMemoryBudget is Config.MemoryBudget when it is 0: 256 MiB.
const DefaultMemoryBudget = 256 << 20

// Budget is a node's memory budget in bytes: the most that what other nodes
// and strangers send it may make it keep. It is one knob, like a resource
// manager's, from which each bounded table and pool takes its share; a
// limit set on its own (a non-zero Config field) overrides its share. The
// shares, of a budget B:
//
//	route reassembly          B/32   (8 MiB of the default)
//	link reassembly           B/64   (4 MiB)
//	                          each at least SourceShare (16) messages of
//	                          64 KiB, 1 MiB, so that one source's share
//	                          holds a message of the largest size
//	duplicate memory          B/64, at about 64 bytes an entry (65,536 entries)
//	received messages         B/32, at most 64 KiB each (128 messages)
//	QUIC connections          B/2, each counted as its initial receive window
//	                          (1 MiB: a peer's unread data) plus the state
//	                          of 256 open streams at 4 KiB (64 connections
//	                          of 256 streams)
//	streams waiting for Accept  B/256, at 4 KiB each (256 streams)
//	DHT records               B/4    (64 MiB)
//
// which add up to less than B for a budget of 16 MiB or more. Every
// table's drops are counted by reason (Counters, and the counters of the
// streams and the DHT).
type Budget int64

// Sizes the shares are counted in.
const (
	duplicateEntryBytes = 64
	// ConnWindowBytes is the initial QUIC connection receive window, the
	// most a peer can send on a connection before the program reads; the
	// connections' share of the budget is counted in it.
	ConnWindowBytes = 1 << 20
	// StreamWindowBytes is the initial QUIC stream receive window.
	StreamWindowBytes = 512 << 10
	streamStateBytes  = 4 << 10 // the state of an open stream, counted generously
	// StreamsPerConn is the number of streams a peer may have open on its
	// connection, counted in the connection's share.
	StreamsPerConn = 256
	connBytes      = ConnWindowBytes + StreamsPerConn*streamStateBytes
)

func (b Budget) bytes() int64 {
	if b <= 0 {
		return DefaultMemoryBudget
	}
	return int64(b)
}

func atLeast1(n int64) int { return int(max(n, 1)) }

// Reassembly is the share of routed messages being reassembled, in bytes.
func (b Budget) Reassembly() int { return atLeast1(b.bytes() / 32) }

// LinkReassembly is the share of link messages being reassembled, in bytes.
func (b Budget) LinkReassembly() int { return atLeast1(b.bytes() / 64) }

// Duplicates is the number of delivered messages remembered.
func (b Budget) Duplicates() int { return atLeast1(b.bytes() / 64 / duplicateEntryBytes) }

// RecvQueue is the number of received messages held for Recv.
func (b Budget) RecvQueue() int { return atLeast1(b.bytes() / 32 / MaxMessage) }

// Conns is the number of QUIC connections peers may have open at once.
func (b Budget) Conns() int { return atLeast1(b.bytes() / 2 / connBytes) }

// AcceptQueue is the number of streams that may wait for Accept.
func (b Budget) AcceptQueue() int { return atLeast1(b.bytes() / 256 / streamStateBytes) }

// Store is the share of DHT records a replica keeps, in bytes.
func (b Budget) Store() int64 { return max(b.bytes()/4, 1) }

// Budget returns the node's memory budget (Config.MemoryBudget).
func (o *Overlay) Budget() Budget { return Budget(o.cfg.MemoryBudget) }
