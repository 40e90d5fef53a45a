package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Interrupted is the error of a program stopped by a signal: exit status
// 128 plus the signal's number, as shells report it (130 for SIGINT, 143
// for SIGTERM).
type Interrupted struct {
	// Signal is the signal that stopped the program.
	Signal syscall.Signal
}

// Error names the signal.
func (e Interrupted) Error() string { return "interrupted by " + e.Signal.String() }

// Status returns 128 plus the signal's number.
func (e Interrupted) Status() int { return 128 + int(e.Signal) }

// InterruptedBy returns the Interrupted error of a program whose context
// ended: the signal that ended it (NotifyContext), or SIGINT for a context
// canceled otherwise (a test's). It returns nil while ctx is live.
func InterruptedBy(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	var in Interrupted
	if errors.As(context.Cause(ctx), &in) {
		return in
	}
	return Interrupted{Signal: syscall.SIGINT}
}

// NotifyContext returns a context that ends, with an Interrupted cause, on
// the first SIGINT, SIGTERM or SIGHUP (unless SIGHUP is ignored, as under
// nohup: it stays ignored). The program then has grace to stop cleanly
// (close streams, leave the network); a second signal, or grace running
// out, exits the process at once with the Interrupted status. stop
// releases the signals.
//
// SIGHUP matters to programs run as ssh's ProxyCommand: ssh ends its proxy
// with SIGHUP, and a proxy killed by it would leave its peer waiting for
// an idle timeout.
func NotifyContext(grace time.Duration) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if !signal.Ignored(syscall.SIGHUP) {
		signal.Notify(sigs, syscall.SIGHUP)
	}
	done := make(chan struct{})
	go func() {
		var s os.Signal
		select {
		case s = <-sigs:
		case <-done:
			return
		}
		in := Interrupted{Signal: s.(syscall.Signal)}
		cancel(in)
		t := time.NewTimer(grace)
		select {
		case <-sigs:
		case <-t.C:
		case <-done:
			return
		}
		os.Exit(in.Status())
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}
