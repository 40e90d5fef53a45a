// Package dht is a distributed hash table on a p2psock network: every node
// running it stores the records of the keys it is responsible for, and reads
// and writes the records of any key.
//
// # Records
//
// A key holds a set of values. Each value is a Record: it has an owner, the
// node that added it and signed it with its identity, and an expiry time (a
// TTL chosen by the owner; Config.DefaultTTL, 1 h by default, if none).
// Several owners can add values under the same key, and one owner several
// values, so a key works like a multimap: "user:alice" can list every device
// of alice, each added by the device itself. Only the owner can change its
// values: Add adds one (or renews its TTL), Remove takes one of its values
// away and Delete all of them; the values of other owners are untouched.
// Because every record is signed, a node that stores or forwards records
// cannot forge or alter them, only withhold them.
//
// # Replica sets
//
// The records of a key live on its replica set: the Config.Replicas live
// nodes (6 by default) whose IDs are closest to overlay.KeyOf(key), found
// with a lookup over disjoint paths, at most one node per subnet
// (overlay.LookupDiverse), so that identities ground next to a key on one
// network take one place at most; the calling node is one of them if it is
// among the closest.
// A write goes to every member and succeeds once one of them stored it. Get
// takes one lookup and one round of reads of every member, and returns the
// union of what they hold, so a member that lost a record or never got it
// does not hide it, and a removal seen by any member takes effect. Owners
// store their live records again every Config.Republish interval, and
// members hand their records to nodes that join the replica set, so records
// survive nodes coming and going. Records expire on their own: a node that
// stops republishing does not leave stale values behind for longer than
// their TTL.
//
// # Watching
//
// Watch registers the calling node with a key's replica set and reports every
// value added, removed or expired there as an Event, once even when several
// replicas report it. The registration is a lease the DHT renews while the
// watch lasts, so nodes that join the replica set learn of it too.
//
// # Usage
//
// Start the DHT on a node before its Bind, so the node serves the records it
// becomes responsible for from the start:
//
//	n, err := p2psock.NewNode(p2psock.Config{Bootstrap: []string{"198.51.100.7:4000"}})
//	if err != nil { ... }
//	d, err := dht.New(n, dht.Config{})
//	if err != nil { ... }
//	defer d.Close()
//	if err := n.Bind(ctx); err != nil { ... }
//
//	err = d.Add(ctx, "user:alice", []byte("laptop"), time.Hour) // signed by n
//	rs, err := d.Get(ctx, "user:alice")                         // every owner's live values
//	for _, r := range rs {
//		fmt.Printf("%s from %v until %v\n", r.Value, r.Owner, r.Expires)
//	}
//	events, err := d.Watch(ctx, "user:alice") // until ctx ends
//
// # Limits and errors
//
// Keys are at most Config.MaxKeySize bytes (1 KiB by default), values
// Config.MaxValueSize (60 KiB, also the maximum, so that a record fits in one
// overlay message), TTLs at most Config.MaxTTL (24 h). Add fails at once
// beyond them, with ErrKeyTooLarge, ErrValueTooLarge or ErrBadTTL, and Get,
// GetFrom and Watch with ErrKeyTooLarge for a long key. Each replica keeps at
// most Config.MaxValuesPerOwner values per key and owner, and
// Config.MaxRecords records (values and tombstones) and Config.MaxBytes bytes
// in all, shared fairly: one owner may hold Config.OwnerPercent of them, the
// nodes of one subnet Config.SubnetPercent, and a full replica makes room for
// a writer only by evicting records of a writer that holds more. Stats counts
// what a replica refused, by reason. A write that no replica stored fails with
// ErrQuota if a replica refused it for its quota, else with ErrStale if one
// holds a newer operation of the same owner, else with ErrNoReplica: no
// replica answered, or none accepted the operation (it wraps the requests'
// errors). A read or watch fails with ErrNoReplica when no replica answered.
// ErrKeyTooLarge and ErrValueTooLarge are also overlay.ErrMessageTooLarge
// (p2psock.ErrMessageTooLarge). A call in progress when Close comes ends with
// ErrClosed, and writes, reads and watches after Close fail with it;
// ErrClosed is also net.ErrClosed. Errors can be tested with errors.Is.
//
// The messages of the DHT (overlay service 3), the signed record format and
// the rules replicas apply are specified in docs/PROTOCOL.md, §10.
package dht
