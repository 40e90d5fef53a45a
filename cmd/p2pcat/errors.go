package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// failure is an error p2pcat reports in its own words: msg, one short line
// that names no library internals. It wraps the error it explains, for
// errors.Is.
type failure struct {
	msg string
	err error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.err }

// failf returns a failure saying what (what p2pcat was doing, "connect to
// abcdefgh") and, after a colon, why err happened in words (describe).
func failf(what string, err error) error {
	if err == nil {
		return nil
	}
	var f *failure
	if errors.As(err, &f) {
		return &failure{msg: what + ": " + f.msg, err: err}
	}
	return &failure{msg: what + ": " + describe(err), err: err}
}

// explain turns an error no mode explained into a failure; usage errors,
// interruptions and failures pass unchanged.
func explain(err error) error {
	var (
		f  *failure
		ue cli.UsageError
		in cli.Interrupted
	)
	if err == nil || errors.As(err, &f) || errors.As(err, &ue) || errors.As(err, &in) {
		return err
	}
	return &failure{msg: describe(err), err: err}
}

// describe says why err happened, in a few words: the library's sentinels
// and quic-go's connection errors by what they mean to a user, any other
// error by its innermost message (a *net.OpError's addresses, two IDs of 52
// characters each, are left out).
func describe(err error) string {
	var (
		idle *quic.IdleTimeoutError
		app  *quic.ApplicationError
		op   *net.OpError
	)
	switch {
	case errors.Is(err, p2psock.ErrReset):
		return "the peer refused or abandoned the stream (busy, not listening for streams, or not allowed)"
	case errors.Is(err, p2psock.ErrNoEntryPoint):
		return "no entry point (-b) answered"
	case errors.Is(err, p2psock.ErrUnreachable) && errors.Is(err, context.DeadlineExceeded):
		return "no answer before -timeout"
	case errors.Is(err, p2psock.ErrUnreachable):
		return "no node in the network has that ID"
	case errors.Is(err, p2psock.ErrNoPath):
		return "no path to the peer: no direct path, and no relay worked (check -relay and its password)"
	case errors.Is(err, p2psock.ErrRefused):
		return "the peer refused the connection (it is closing)"
	case errors.Is(err, p2psock.ErrPeerIdentity):
		return "the peer could not prove its ID"
	case errors.Is(err, p2psock.ErrMessageTooLarge):
		return "message larger than 64 KiB"
	case errors.Is(err, p2psock.ErrEmptyGroup):
		return "the group has no member"
	case errors.Is(err, dht.ErrNoReplica):
		return "no node of the network stored it"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "no answer before -timeout"
	case errors.As(err, &idle):
		return "the peer stopped answering"
	case errors.As(err, &app) && app.Remote:
		return "the peer closed the connection"
	case errors.As(err, &app):
		return "the connection closed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the stream ended early"
	case errors.As(err, &op) && op.Err != nil:
		return describe(op.Err)
	}
	return cli.OneLine(err)
}
