package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// knownCodes are every error code the protocol has.
var knownCodes = []string{"UnAuthorized", "Exists", "NotFound", "NotMember", "Full", "KindNotAllowed",
	"Invalid", "Closed", CodeGlare, CodeRateLimited, CodeInternal}

// FuzzMessage sends one arbitrary message to an authenticated session in
// a channel, followed by a getUsers with a known id. Oracle: the server
// never answers with a code outside the protocol's, never panics, answers
// the known request (unless it closed the connection with one of the
// protocol's statuses for bad input), and answers the fuzzed message at
// most once; the channel still has its owner afterwards.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"type":"getUsers"}`,
		`{"id":1,"type":"muteTracks","data":{"names":["cam"],"state":true}}`,
		`{"id":1,"type":"join","data":{"channelId":"c"}}`,
		`{"id":1,"type":"addTracks","data":{"tracks":[{"name":"a","kind":"audio","trackId":"x"}]}}`,
		`{"id":1,"type":"offer","data":{"sdp":"v=0\r\n"}}`,
		`{"id":1,"type":"leave"}`,
		`{"id":1,"type":"setPreference","data":{"userId":"o","trackName":"cam","maxHeight":180,"paused":false}}`,
		`{"id":1,"type":"modUsers","data":{"users":[{"id":"owner","mode":0}]}}`,
		`{"id":1,"type":"delete"}`,
		`{"id":1,"type":"rtpPublish","data":{"tracks":[{"name":"enc","kind":"video","codec":"VP8"}]}}`,
		`{"id":1,"type":"rtpReceive","data":{"userId":"o","trackName":"cam","address":"127.0.0.1:9","rtcpMux":true}}`,
		`{"id":1,"type":"auth","data":{"token":"x"}}`,
		`[1,2,3]`, `null`, `{"id":-1}`, `{"id":1e99,"type":"x"}`, `{"id":1,"type":"candidate","data":{"candidate":"candidate:1 1 UDP 1 127.0.0.1 9 typ host"}}`,
	} {
		f.Add([]byte(s))
	}
	ts := newTestServer(f, func(c *Config) {
		c.RequestBurst, c.AddrRequestRate, c.AddrRequestBurst = 1<<20, 1e6, 1<<20
		c.RTP.Addr = "127.0.0.1" // RTP requests open loopback ports, at most RTP.MaxStreams a stay
	})
	f.Fuzz(func(t *testing.T, msg []byte) {
		owner := strings.Repeat("o", 1+len(msg)%5) // channels of their own, so inputs do not interfere
		ch := "c" + owner + string(rune('a'+len(msg)%26))
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, ts.wsURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		tok, _ := IssueToken(testSecret, owner, true, time.Hour)
		for _, m := range [][]byte{
			[]byte(`{"id":900001,"type":"auth","data":{"token":"` + tok + `"}}`),
			[]byte(`{"id":900002,"type":"create","data":{"channelId":"` + ch + `","tracks":[{"name":"cam","kind":"video","trackId":"t"}]}}`),
			msg,
			[]byte(`{"id":900003,"type":"getUsers"}`),
		} {
			if err := conn.Write(ctx, websocket.MessageText, m); err != nil {
				t.Fatal(err)
			}
		}
		answers := map[uint64]int{}
		for answers[900003] == 0 {
			_, b, err := conn.Read(ctx)
			if err != nil {
				switch websocket.CloseStatus(err) {
				case websocket.StatusUnsupportedData, websocket.StatusMessageTooBig, websocket.StatusPolicyViolation, websocket.StatusNormalClosure:
					return // refused input, or the fuzzed message was a leave/delete followed by our getUsers... closing is allowed
				}
				t.Fatalf("connection ended without an answer: %v", err)
			}
			var m struct {
				ID    uint64
				Type  string
				Error *wireError
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("server sent bad JSON: %s", b)
			}
			if m.Error != nil && !slices.Contains(knownCodes, m.Error.Code) {
				t.Fatalf("unknown error code %q", m.Error.Code)
			}
			if m.Type == "result" || m.Type == "error" {
				answers[m.ID]++
			}
			if m.ID == 900002 && m.Type != "result" {
				t.Fatalf("create failed: %+v", m.Error)
			}
		}
		for id, n := range answers {
			if n > 1 && id != 0 {
				t.Fatalf("request %d answered %d times", id, n)
			}
		}
		// The session is sound: delete the channel for the next input (it
		// may be gone already, by the fuzzed message).
		_ = conn.Write(ctx, websocket.MessageText, []byte(`{"id":900004,"type":"delete"}`))
		_ = conn.Write(ctx, websocket.MessageText, []byte(`{"id":900005,"type":"leave"}`))
		for {
			_, b, err := conn.Read(ctx)
			if err != nil || strings.Contains(string(b), `"id":900005`) {
				break
			}
		}
		if c, err := ts.Registry().Get(ch); err == nil {
			_ = c.Delete(owner, "")
		}
	})
}
