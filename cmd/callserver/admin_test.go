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
	addr, done, logs := start(t, ctx, nil, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-ice-loopback")
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

// TestLimitFlags: every limit is a flag and an environment variable that
// reaches the server's config; -log-format json logs JSON; bad values are
// refused.
func TestLimitFlags(t *testing.T) {
	env := map[string]string{"CALLSERVER_MAX_CONNS_PER_IP": "200", "CALLSERVER_RESUME_GRACE": "40s", "CALLSERVER_IDLE_CLOSE": "5m"}
	o, err := parse([]string{"-max-conns-per-user", "4", "-max-message-bytes", "65536", "-request-rate", "5", "-request-burst", "9",
		"-max-refusals", "7", "-send-queue", "64", "-media-grace", "20s", "-join-request-timeout", "1m", "-auth-timeout", "3s",
		"-ping-interval", "5s", "-ping-timeout", "6s", "-write-timeout", "2s", "-drain-timeout", "2m"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := o.config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnsPerIP != 200 || cfg.MaxConnsPerUser != 4 || cfg.MaxMessageBytes != 65536 || cfg.RequestRate != 5 ||
		cfg.RequestBurst != 9 || cfg.MaxRefusals != 7 || cfg.SendQueue != 64 || cfg.ResumeGrace != 40*time.Second ||
		cfg.Grace != 20*time.Second || cfg.IdleTimeout != 5*time.Minute || cfg.JoinRequestTimeout != time.Minute ||
		cfg.AuthTimeout != 3*time.Second || cfg.PingInterval != 5*time.Second || cfg.PingTimeout != 6*time.Second ||
		cfg.WriteTimeout != 2*time.Second || o.drainTimeout != 2*time.Minute {
		t.Errorf("config: %+v drain %v", cfg, o.drainTimeout)
	}
	env = map[string]string{"CALLSERVER_WEBHOOK_SECRET": "0123456789abcdef0123"}
	o, err = parse([]string{"-webhook-urls", "http://127.0.0.1:9/a, https://hooks.example/b", "-webhook-queue", "8"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _, err = o.config(nil); err != nil || len(cfg.Webhooks.URLs) != 2 || string(cfg.Webhooks.Secret) != env["CALLSERVER_WEBHOOK_SECRET"] || cfg.Webhooks.Queue != 8 {
		t.Errorf("webhooks: %+v %v", cfg.Webhooks, err)
	}
	for _, bad := range [][]string{{"-max-conns-per-ip", "-1"}, {"-max-message-bytes", "10"}, {"-drain-timeout", "-1s"},
		{"-webhook-urls", "http://127.0.0.1:9/"}, {"-webhook-urls", "file:///x", "-webhook-secret", "0123456789abcdef0123"}} {
		o, err := parse(bad, noEnv)
		if err == nil {
			_, _, err = o.config(nil)
		}
		if err == nil {
			t.Errorf("%v was accepted", bad)
		}
	}
	if err := run(context.Background(), nil, []string{"-log-format", "xml"}, noEnv, io.Discard, nil); err == nil {
		t.Error("-log-format xml was accepted")
	}

	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, []string{"-addr", "127.0.0.1:0", "-ice-loopback", "-log-format", "json"}, noEnv, logs, func(string) { cancel() })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	if !strings.HasPrefix(logs.String(), `{"time":`) || !strings.Contains(logs.String(), `"msg":"callserver listening"`) {
		t.Errorf("json logs: %s", logs)
	}
}
