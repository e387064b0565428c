package link

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// protoVersion is the control protocol's version, sent in the hello. A
// peer speaking another version is refused.
const protoVersion = 1

// Message types on the control channel.
const (
	msgHello  = "hello"  // first message each way: version, session nonce, SRTP keys, UDP port
	msgTrack  = "track"  // a track offered: its ID, link SSRCs, codec, mute sources
	msgSynced = "synced" // every offer of this session has been sent
	msgEnd    = "end"    // a track withdrawn
	msgMutes  = "mutes"  // the origin's mute sources of a track changed
	msgMute   = "mute"   // ask the origin to set or clear one mute source
	msgPause  = "pause"  // stop sending a track (the far node has no use for it)
	msgResume = "resume" // send it again, from a key frame
	msgPing   = "ping"   // keepalive
)

// msg is one control message, one JSON object a line. Fields are used by
// the types noted.
type msg struct {
	T       string `json:"t"`
	V       int    `json:"v,omitempty"`       // hello
	Nonce   string `json:"nonce,omitempty"`   // hello: this side's half of the session ID
	Keys    string `json:"keys,omitempty"`    // hello: base64 SRTP master key and salt this side sends with
	Port    int    `json:"port,omitempty"`    // hello: this side's UDP port
	ID      string `json:"id,omitempty"`      // track, end, mutes, mute, pause, resume
	SSRC    uint32 `json:"ssrc,omitempty"`    // track: media SSRC on the link
	RTXSSRC uint32 `json:"rtxssrc,omitempty"` // track: retransmission SSRC on the link
	RTXPT   uint8  `json:"rtxpt,omitempty"`   // track: retransmission payload type
	Kind    uint8  `json:"kind,omitempty"`    // track: forward.Kind
	Clock   uint32 `json:"clock,omitempty"`   // track: clock rate
	PT      uint8  `json:"pt,omitempty"`      // track: payload type
	Mime    string `json:"mime,omitempty"`    // track
	Sources uint32 `json:"sources,omitempty"` // track, mutes: forward.MuteSource bits
	Source  uint32 `json:"source,omitempty"`  // mute
	On      bool   `json:"on,omitempty"`      // mute
}

// maxLine bounds one control message.
const maxLine = 64 << 10

// ctrl is one control connection: JSON lines, written under a mutex with a
// deadline, read by one goroutine.
type ctrl struct {
	conn    net.Conn
	timeout time.Duration
	rd      *bufio.Scanner // owned by the reading goroutine

	mu  sync.Mutex // guards enc and writes to conn
	enc *json.Encoder
}

func newCtrl(c net.Conn, timeout time.Duration) *ctrl {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), maxLine)
	return &ctrl{conn: c, timeout: timeout, rd: sc, enc: json.NewEncoder(c)}
}

// send writes one message; a write that cannot finish within the timeout
// fails (and the reader soon ends the session).
func (c *ctrl) send(m *msg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	return c.enc.Encode(m)
}

// recv reads one message, waiting at most the timeout.
func (c *ctrl) recv() (*msg, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	if !c.rd.Scan() {
		if err := c.rd.Err(); err != nil {
			return nil, err
		}
		return nil, net.ErrClosed
	}
	m := new(msg)
	if err := json.Unmarshal(c.rd.Bytes(), m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return m, nil
}
