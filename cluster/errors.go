package cluster

import (
	"errors"
	"fmt"

	"github.com/callcore/callcore/channel"
)

// Errors of the cluster itself; the channel's own refusals come back as
// channel's sentinel errors (errors.Is), whichever node decided them.
var (
	// ErrInvalid: a bad configuration or argument.
	ErrInvalid = errors.New("cluster: invalid")
	// ErrUnavailable: the engine (NATS) or the channel's owner could not
	// be reached in time, or no node took over the channel.
	ErrUnavailable = errors.New("cluster: unavailable")
	// ErrNotOwner: the node asked to run an operation does not own the
	// channel (any more); the caller looks the owner up again.
	ErrNotOwner = errors.New("cluster: not the channel's owner")
	// ErrFenced: a node lost a channel it owned to another node (its
	// lease expired); its writes are refused by the engine.
	ErrFenced = errors.New("cluster: ownership lost")
	// ErrBadMessage: a message from the engine that does not decode.
	ErrBadMessage = errors.New("cluster: bad message")
	// ErrClosed: the node is closed.
	ErrClosed = errors.New("cluster: node closed")
)

// wireErrors are the errors that cross nodes, by code.
var wireErrors = []struct {
	code string
	err  error
}{
	{"unauthorized", channel.ErrUnauthorized},
	{"notMember", channel.ErrNotMember},
	{"exists", channel.ErrExists},
	{"notFound", channel.ErrNotFound},
	{"full", channel.ErrFull},
	{"kindNotAllowed", channel.ErrKindNotAllowed},
	{"invalid", channel.ErrInvalid},
	{"closed", channel.ErrClosed},
	{"slow", channel.ErrSlowConsumer},
	{"left", channel.ErrLeft},
	{"notOwner", ErrNotOwner},
	{"fenced", ErrFenced},
	{"unavailable", ErrUnavailable},
	{"badMessage", ErrBadMessage},
	{"clusterInvalid", ErrInvalid},
	{"nodeClosed", ErrClosed},
}

// errCode returns the code of err's sentinel ("" for nil, "other" for an
// error without one).
func errCode(err error) string {
	if err == nil {
		return ""
	}
	for _, w := range wireErrors {
		if errors.Is(err, w.err) {
			return w.code
		}
	}
	return "other"
}

// codeErr rebuilds an error from its code and message.
func codeErr(code, msg string) error {
	if code == "" {
		return nil
	}
	for _, w := range wireErrors {
		if w.code == code {
			return fmt.Errorf("%w (%s)", w.err, msg)
		}
	}
	return fmt.Errorf("%w: remote error: %s", ErrUnavailable, msg)
}
