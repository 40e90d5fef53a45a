// Package cli is what the command lines of p2pcat and of the example
// programs share: exit statuses and one-line error reports, flag sets that
// return their errors (with flags among the arguments, netcat style), the
// global flags that say how a node joins its network, identity files,
// starting a node with its DHT, and retrying a first request while a fresh
// node settles in.
//
// The programs own their command lines: cli defines flags only on a flag set
// a program gives it, and reads no environment variable of its own (it asks
// os.UserConfigDir where identity files go by default). A program's main is
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
//		err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
//		stop()
//		os.Exit(cli.Program{Name: "share", Usage: usage}.ExitStatus(err, os.Stderr))
//	}
//
// where run builds its flag set with NewFlagSet on every call, so that tests
// call run as often as they like.
package cli
