package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/callcore/callcore/server"
)

// A server mounted as an http.Handler, and a client creating a call over
// the protocol of docs/protocol.md.
func Example() {
	secret := []byte("a secret of at least thirty-two bytes")
	srv, err := server.New(server.Config{Secret: secret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	// The embedding application signs its users' tokens.
	tok, err := server.IssueToken(secret, "alice", true, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.CloseNow()
	for _, msg := range []string{
		`{"id":1,"type":"auth","data":{"token":"` + tok + `"}}`,
		`{"id":2,"type":"create","data":{"channelId":"standup","config":{"maxUsers":10}}}`,
		`{"id":3,"type":"muteUser","data":{"userId":"bob","kind":"audio","state":true}}`,
	} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			log.Fatal(err)
		}
	}
	// Three answers, in the order of the requests, and the cnl:create
	// event, pushed beside them.
	got := map[string]string{}
	for range 4 {
		_, b, err := conn.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		var m struct {
			ID    int
			Type  string
			Data  struct{ Event string }
			Error struct{ Code string }
		}
		if err := json.Unmarshal(b, &m); err != nil {
			log.Fatal(err)
		}
		got[fmt.Sprint(m.ID)] = strings.TrimSpace(m.Type + " " + m.Data.Event + m.Error.Code)
	}
	fmt.Println("auth:", got["1"])
	fmt.Println("create:", got["2"])
	fmt.Println("muteUser bob:", got["3"])
	fmt.Println("pushed:", got["0"])
	// Output:
	// auth: result
	// create: result
	// muteUser bob: error NotMember
	// pushed: event cnl:create
}
