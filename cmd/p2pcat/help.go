package main

const manual = `NAME
    p2pcat - netcat for p2psock networks

SYNOPSIS
    p2pcat [flags] -l [-k]             listen for streams
    p2pcat [flags] <ID>                open a stream to the node <ID>
    p2pcat [flags] -u <ID> | -u @<key> send datagrams (one per stdin line)
    p2pcat [flags] -u -l               receive datagrams
    p2pcat [flags] -g <group> [-any]   join a group: multicast (or anycast) lines
    p2pcat [flags] id                  print this node's ID
    p2pcat [flags] serve               run a public node: entry point, STUN, TURN relay
    p2pcat [flags] view [host:port]    run a node and serve a live page of what it sees
    p2pcat [flags] dht add|rm|get|watch <key> [value]

DESCRIPTION
    p2pcat joins a p2psock network as one node and moves bytes between that
    node and stdin/stdout. Peers are named by their IDs (52 characters of
    base32, as printed by "p2pcat id" or "p2pcat -l"); wherever a peer is -
    on this machine, on the LAN, behind a NAT - p2pcat finds a path to it, or
    relays through a public node when no direct path exists.

    With no entry point (-b or P2PCAT_BOOTSTRAP), nodes of the same network on
    this machine or LAN find each other: "p2pcat -l" in one terminal and
    "p2pcat <ID>" in another just work.

MODES
    -l  Listen. Prints "listening as <ID>" on stderr, accepts the first
        stream, copies stdin to it and its bytes to stdout. End of stdin
        half-closes the stream (the peer reads EOF); p2pcat exits when the
        peer has closed its side. With -k it then accepts the next stream,
        and so on, until interrupted.

    <ID>
        Connect to the node <ID>: stdin goes to the peer, the peer's bytes to
        stdout. End of stdin half-closes; p2pcat exits when the peer closes.

    -u <ID>, -u @<key>
        Datagrams. Each line of stdin (up to 64 KiB) is sent as one message,
        to the node <ID> or to the node closest to KeyOf(<key>), and p2pcat
        waits for its acknowledgement. Messages that arrive meanwhile are
        printed, one per line. Exits at the end of stdin.

    -u -l
        Print every message addressed to this node, or to a key this node is
        the closest to, one per line, until interrupted.

    -g <group>
        Join <group>. Each stdin line is multicast to every member. Lines
        from the group are printed as "<sender>: <line>" (the sender's first
        8 ID characters). At the end of stdin p2pcat keeps printing until
        interrupted, or for the -q duration.

    -g <group> -any
        Without joining, hand each stdin line to exactly one member of
        <group> (the nearest the network finds): "any server of this
        service". Fails if the group has no member. Exits at the end of
        stdin.

    id  Print this node's ID and exit.

    serve
        Run a public node until interrupted: an entry point others bootstrap
        from, a STUN server (every node is one) and a TURN relay on its own
        UDP port (-relay-port). Prints the addresses to bootstrap from. Run it
        on a host with a public address, with -p fixed (default 4000).

    view [host:port]
        Run a node until interrupted and serve, on the TCP address (default
        a free port on 127.0.0.1), a web page of the node and what it knows
        of the network: its ID, addresses and NAT, its routing table drawn
        as the ID ring (direct and relayed links, RTTs), its connections,
        group trees and DHT records, and its counters as charts, all
        updating live; and its Prometheus metrics at /metrics. Prints
        "view: http://..." on stderr. The page has no password: keep it on
        a loopback address.

    dht add <key> <value>   store <value> under <key> for -ttl (this node owns it)
    dht rm <key> <value>    remove one of this node's values
    dht get <key>           print every owner's live values, one per line
    dht watch <key>         print changes to <key> until interrupted

FLAGS
    -b host:port   entry point; repeat for more (also P2PCAT_BOOTSTRAP,
                   comma-separated)
    -n name        network name (default "p2psock")
    -i file        identity file (default: p2pcat/identity in the user's
                   config directory, created on first use). If another
                   p2pcat holds it, this one runs with a fresh identity.
    -p port        UDP port (default: any; 4000 for serve)
    -k             with -l: keep accepting streams
    -u             datagram mode
    -g group       group mode
    -any           with -g: anycast to one member instead of joining
    -q duration    with -g or -u -l: exit this long after the end of stdin
    -ttl duration  with dht add: lifetime of the value (default 1h)
    -relay-port n  with serve: the TURN relay's UDP port (default 3478)
    -timeout d     bound on connecting and on each send (default 30s)
    -v             log to stderr; -v -v for debug logs

EXIT STATUS
    0 success; 1 a runtime failure (unreachable peer, no path, network
    error); 2 a usage error (unknown flag, bad ID, missing argument).
    Errors are one line on stderr.

EXAMPLES
    p2pcat -l > received.iso                 # terminal 1: prints its ID
    p2pcat <ID> < image.iso                  # terminal 2: sends the file
    echo hello | p2pcat -u @room:lobby       # to whoever keeps "room:lobby"
    p2pcat -g chat                           # a group chat in a terminal
    p2pcat serve -p 4000                     # on a public host
    p2pcat -b 203.0.113.5:4000 -l            # behind a NAT, through it
    p2pcat dht add user:alice laptop; p2pcat dht get user:alice
`
