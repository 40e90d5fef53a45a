package main

const manual = `NAME
    p2pcat - netcat for p2psock networks

SYNOPSIS
    p2pcat [flags] -l [-k]             listen for streams
    p2pcat [flags] <ID>                open a stream to the node <ID>
    p2pcat [flags] -l -to <addr>       forward each stream to a local TCP or unix address
    p2pcat [flags] -l -exec <command>  run <command> for each stream
    p2pcat [flags] -from <addr> <ID>   forward each connection to <addr> as a stream to <ID>
    p2pcat [flags] -u <ID> | -u @<key> send datagrams (one per stdin line)
    p2pcat [flags] -u -l               receive datagrams
    p2pcat [flags] -g <group> [-any]   join a group: multicast (or anycast) lines
    p2pcat [flags] id                  print this node's ID
    p2pcat [flags] serve               run a public node: entry point, STUN, TURN relay
    p2pcat [flags] doctor              print what this node learns of its NAT
    p2pcat [flags] view [host:port]    run a node and serve a live page of what it sees
    p2pcat [flags] dht add|rm|get|watch <key> [value]
    p2pcat help | version              this manual; the version

DESCRIPTION
    p2pcat joins a p2psock network as one node and moves bytes between that
    node and stdin/stdout. Peers are named by their IDs (52 characters of
    base32, as printed by "p2pcat id" or "p2pcat -l"); wherever a peer is -
    on this machine, on the LAN, behind a NAT - p2pcat finds a path to it, or
    relays through a public node when no direct path exists.

    With no entry point (-b or P2PCAT_BOOTSTRAP), nodes of the same network on
    this machine or LAN find each other: "p2pcat -l" in one terminal and
    "p2pcat <ID>" in another just work.

    When stderr is a terminal, a stream shows its progress there, once a
    second: bytes each way, the rate and whether the path is direct or
    relayed. Scripts (stderr not a terminal) see none of it.

    One-shot commands (dht add, rm and get, -u sends, p2pcat <ID>) run their
    node as a light client: it uses the nodes already there as its proxies
    and never becomes a member of the network, so that its coming and going
    costs the network nothing (it is reached by ID all the same). With no
    node around to use, it starts as a full member, as -full makes it.

    To be found, every p2pcat (but a light client) announces itself on the LAN by UDP multicast
    (to 239.255.80.80:7447, every few seconds, with its ID and addresses)
    and listens for the others' announcements. -no-lan (or
    P2PCAT_MACHINE_ONLY=1) keeps discovery to this machine: nothing is sent
    to the LAN.

MODES
    -l  Listen. Prints "listening as <ID>" and "ticket <ticket>" on stderr
        (with -json, {"id": ..., "ticket": ...} on stdout), accepts the first
        stream, copies stdin to it and its bytes to stdout, and refuses
        every other stream meanwhile (their senders fail with status 1).
        It closes its side of the stream once its stdin has ended and it
        has read the whole stream, and then exits.

    -l -k
        Keep listening: serve streams concurrently (up to 64), until
        interrupted. What the peers send goes to stdout (chunks of
        concurrent streams may interleave); stdin goes to one stream at a
        time, and a stream that starts while another has it gets none.

    -l -to host:port, -l -to unix:/path
        Port forwarding, the listening side (like ssh -R, or dumbpipe
        listen-tcp): each stream is connected to this local address, until
        interrupted. Many streams are served at once (up to 64).

    -l -exec <command>
        Each stream runs <command> (with /bin/sh -c), the stream as its
        stdin and stdout (netcat -e, socat EXEC); $P2PCAT_PEER is the
        peer's ID. Its stderr is p2pcat's.

    -from host:port <ID>, -from unix:/path <ID>
        Port forwarding, the connecting side (like ssh -L, or dumbpipe
        connect-tcp): listen on this local address and forward each
        connection made to it as one stream to <ID>, until interrupted.
        Prints "forwarding <addr> to <ID>" once it listens.
        For ssh, no -from is needed: ssh -o ProxyCommand='p2pcat %h' user@<ID>

    <ID>
        Connect to the node <ID>: stdin goes to the peer, the peer's bytes to
        stdout. End of stdin half-closes (the peer reads EOF); p2pcat exits
        when the peer closes its side. A p2pcat peer closes its side only
        after it has read everything, so status 0 means it got every byte.
        When stdin is a terminal, p2pcat also stops when the peer is done.

        Either side (<ID> or -l) whose peer has sent its end and then left
        (interrupted, or it closed the stream) stops at once, even with its
        own stdin still open: status 0 if it had sent nothing, else 1 (the
        peer may have missed some). A peer that vanishes without a word
        (killed, its machine or network gone) is noticed within 30 s, when
        QUIC's idle timeout ends the connection (both ends send keepalives
        every 10 s): status 1, "the peer stopped answering".

    -u <ID>, -u @<key>
        Datagrams. Each line of stdin (up to 65536 bytes) is sent as one
        message, to the node <ID> or to the node closest to KeyOf(<key>),
        and p2pcat waits for its acknowledgement. Messages that arrive
        meanwhile are printed, one per line. Exits at the end of stdin.
        Like every p2pcat, the sender is a full node while it runs: it may
        itself be the node closest to <key>. Then no other node got the
        message, and p2pcat fails (status 1) rather than keep it to itself.

    -u -l
        Print every message addressed to this node, or to a key this node is
        the closest to, one per line, until interrupted.

    -g <group>
        Join <group> (until interrupted: then it leaves the group and the
        network). Each stdin line is multicast to every member. Lines
        from the group are printed as "<sender>: <line>" (the sender's first
        8 ID characters). At the end of stdin p2pcat keeps printing until
        interrupted, or for the -q duration.

    -g <group> -any
        Without joining, hand each stdin line to exactly one member of
        <group> (the nearest the network finds): "any server of this
        service". Fails if the group has no member. Exits at the end of
        stdin.

    id  Print this node's ID and exit.

    help, version
        Print this manual, or p2pcat's version and commit.

    serve
        Run a public node until interrupted: an entry point others bootstrap
        from, a STUN server (every node is one) and a TURN relay on its own
        UDP port (-relay-port). Prints the addresses to bootstrap from. Run it
        on a host with a public address, with -p fixed (default 4000).

    doctor
        Join the network and print what this node learns of its NAT: its
        local and public addresses, the NAT's mapping behaviour (none,
        endpoint-independent or -dependent), its filtering behaviour (which
        unsolicited packets get through: public contacts send probes from
        another port and another IP), the NAT type they make (open, full
        cone, restricted cone, port-restricted cone, symmetric) and whether
        it relays for others, like "tailscale netcheck". With -json, one
        JSON object.

    view [host:port]
        Run a node until interrupted and serve, on the TCP address (default
        a free port on 127.0.0.1), a web page of the node and what it knows
        of the network: its ID, addresses and NAT, its routing table drawn
        as the ID ring (direct, punched and relayed links, RTTs), its
        connections, group trees and DHT records, and its counters as
        charts, all updating live; and its Prometheus metrics at /metrics.
        Prints "view: http://..." on stderr. The page has no password: keep
        it on a loopback address.

    dht add <key> <value>   store <value> under <key> for -ttl (this node owns it);
                            fails if no other node is there to keep it
    dht rm <key> <value>    remove one of this node's values; fails if this
                            node has no such value
    dht get <key>           print every owner's live values, one per line;
                            fails if there is none
    dht watch <key>         print changes to <key> until interrupted
    The values of add and rm belong to the identity (-i): they fail while
    another p2pcat holds the identity file.

TICKETS
    A ticket (p2pcat1...) is one string that holds a node's ID, its network
    name, addresses it can be joined through (its public and local
    addresses, and its entry points) and its relays. "p2pcat -l" prints
    its own; wherever an ID is taken, a ticket may be given instead, and
    then p2pcat joins through the ticket's addresses (unless -b is given),
    in the ticket's network (unless -n is) and with its relays (unless
    -relay is): two machines with no entry point and no LAN in common
    meet. A ticket may carry a relay's password: share it as you would.
    A ticket's node was in the network when it printed the ticket: if the
    network answers that no node has its ID, p2pcat asks again every
    second until -timeout (an ID given as such fails at once).

    Streams opened to a node that does not take them (serve, -u, -g, dht,
    a busy -l) are refused at once: their senders fail with status 1.

FLAGS
    -b host:port   entry point; repeat for more (also P2PCAT_BOOTSTRAP,
                   comma-separated). If none answers, p2pcat fails: it
                   does not start a network of its own
    -n name        network name (default "p2psock")
    -i file        identity file (default: p2pcat/identity in the user's
                   config directory, created on first use). If another
                   p2pcat holds it, this one runs with a fresh identity.
    -p port        UDP port (default: any; 4000 for serve)
    -k             with -l: keep accepting streams, concurrently
    -allow id,...  with -l (and -to, -exec): take streams only from these
                   IDs (or tickets); the others' streams are refused
    -json          id, version, the listening line and doctor's report as
                   JSON on stdout
    -u             datagram mode
    -g group       group mode
    -any           with -g: anycast to one member instead of joining
    -q duration    with -g or -u -l: exit this long after the end of stdin
    -ttl duration  with dht add: lifetime of the value (default 1h)
    -relay-port n  with serve: the TURN relay's UDP port (default 3478)
    -relay url     a TURN relay for peers with no direct path,
                   turn://user:password@host:port; repeat for more
    -force-relay   go through a relay even where a direct path exists
    -full          one-shot commands (dht get/add/rm, -u sends, <ID>) join
                   as a full member of the network instead of a light client
    -no-lan        no LAN multicast: discovery on this machine only
    -timeout d     bound on joining, connecting and each send (default 30s)
    -view addr     serve this node's view page and /metrics on the TCP address
                   addr (as "p2pcat view" does; keep it on a loopback address);
                   prints "view: http://..." on stderr
    -v             log to stderr; -v -v for debug logs
    -version       print the version and exit

EXIT STATUS
    0    success: the data reached the other side (a stream's peer read it
         all, a datagram was acknowledged by a node other than this one, a
         dht add was stored and a dht rm removed something)
    1    a runtime failure: unreachable peer, refused stream, no path, no
         entry point, nothing found; one line on stderr says which
    2    a usage error (unknown flag, bad ID, missing argument)
    130  interrupted by SIGINT (^C); 143 by SIGTERM; 129 by SIGHUP (how
         ssh ends a ProxyCommand; ignored under nohup). Each ends every
         mode at once: streams are half-closed, the node leaves the
         network; a second signal, or 2 s, ends p2pcat regardless.

EXAMPLES
    p2pcat -l > received.iso                 # terminal 1: prints its ID
    p2pcat <ID> < image.iso                  # terminal 2: sends the file
    echo hello | p2pcat -u @room:lobby       # to whoever keeps "room:lobby"
    p2pcat -g chat                           # a group chat in a terminal
    p2pcat serve -p 4000                     # on a public host
    p2pcat -b 203.0.113.5:4000 -l            # behind a NAT, through it
    p2pcat -l -to 127.0.0.1:22 -allow <ID>   # expose this host's sshd to one peer
    ssh -o ProxyCommand='p2pcat %h' me@<ID>  # ... and log in from there
    p2pcat -from 127.0.0.1:8080 <ticket>     # then: curl http://127.0.0.1:8080/
    p2pcat dht add user:alice laptop; p2pcat dht get user:alice
`
