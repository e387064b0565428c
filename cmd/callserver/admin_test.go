package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestRunAdmin: -admin-addr serves the metrics and pprof on a listener of
// its own; the public one does not serve them.
func TestRunAdmin(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- run(ctx, nil, []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-ice-loopback"}, noEnv, logs, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	m := regexp.MustCompile(`"admin listening" url=(http://[0-9.:]+)/`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no admin address in the log: %s", logs)
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(m[1] + "/metrics"); code != http.StatusOK || !strings.Contains(body, "callcore_channels 0") {
		t.Errorf("admin /metrics: %d %.200s", code, body)
	}
	if code, _ := get(m[1] + "/debug/pprof/"); code != http.StatusOK {
		t.Errorf("admin pprof: %d", code)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if code, _ := get("http://" + addr + path); code == http.StatusOK {
			t.Errorf("the public listener serves %s", path)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	if _, _, err := (options{addr: "127.0.0.1:1", adminAddr: "127.0.0.1:1"}).config(nil); err == nil {
		t.Error("an admin address equal to the public one was accepted")
	}
}
