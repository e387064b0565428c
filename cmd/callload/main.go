// Command callload loads a running callserver the way real clients do and
// measures it. It joins P publishers and N subscribers, spread over
// channels, through the server's signalling protocol with one pion
// PeerConnection each; publishers send VP8 in real time (an IVF file
// given with -ivf, or a synthetic stream at -bitrate, -fps and
// -key-interval) and Opus silence with -audio. After -warmup it measures
// for -duration and reports join times, delivered packets/s, loss (against
// what was sent, and as sequence gaps) and, with -server-pid, the
// server's CPU time per delivered packet and its RSS, as a table or, with
// -json, as JSON.
//
//	go run ./cmd/callserver -ice-loopback &
//	go run ./cmd/callload -token-url http://127.0.0.1:8080/dev/token \
//	    -publishers 1 -subscribers 10 -bitrate 7.4M -duration 25s \
//	    -server-pid $(pgrep -n callserver)
//
// Tokens are signed with the server's secret (-secret-file) or fetched
// from a demo server's /dev/token (-token-url). The package
// internal/callload holds the machinery; this command is its flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callcore/callcore/internal/callload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "callload:", err)
		os.Exit(1)
	}
}

// run parses args, runs the load and writes the report to out; progress
// and usage go to logw.
func run(ctx context.Context, args []string, out, logw io.Writer) error {
	cfg, asJSON, err := parse(args, logw)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	rep, err := callload.Run(ctx, cfg, logw)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(out)
}

// parse turns the command line into a validated Config.
func parse(args []string, logw io.Writer) (cfg callload.Config, asJSON bool, err error) {
	fs := flag.NewFlagSet("callload", flag.ContinueOnError)
	fs.SetOutput(logw)
	var secret, secretFile, size string
	bitrate := bitsPerSecond(1_500_000)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "the callserver's base URL, or several comma-separated (nodes of one cluster): participants are spread over them round robin")
	fs.StringVar(&secret, "secret", "", "the server's token secret, to sign tokens with; prefer -secret-file")
	fs.StringVar(&secretFile, "secret-file", "", "file holding the server's token secret")
	fs.StringVar(&cfg.TokenURL, "token-url", "", "a demo server's token endpoint, e.g. http://127.0.0.1:8080/dev/token")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "participants that publish video (and -audio)")
	fs.IntVar(&cfg.Subscribers, "subscribers", 10, "participants that only receive")
	fs.IntVar(&cfg.Channels, "channels", 1, "channels to spread the participants over, round robin")
	fs.StringVar(&cfg.IVF, "ivf", "", "VP8 IVF file the publishers send in a loop (default: a synthetic stream)")
	fs.Var(&bitrate, "bitrate", "synthetic video bit rate in bit/s (suffixes k, M)")
	fs.IntVar(&cfg.FPS, "fps", 30, "synthetic video frame rate")
	fs.DurationVar(&cfg.KeyInterval, "key-interval", 2*time.Second, "synthetic video key-frame interval (also one on every PLI)")
	fs.StringVar(&size, "size", "640x360", "synthetic video size, WxH")
	fs.BoolVar(&cfg.Audio, "audio", false, "publishers also send Opus (20 ms frames of silence)")
	fs.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "media time after the joins before measuring")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "the measuring window")
	fs.DurationVar(&cfg.JoinTimeout, "join-timeout", 30*time.Second, "bound on the whole join phase")
	fs.IntVar(&cfg.JoinParallel, "join-parallel", 8, "participants joining at once")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "the server's pid: report its CPU per delivered packet and RSS from /proc")
	fs.StringVar(&cfg.Prefix, "prefix", "", "prefix of the run's user and channel ids (default: load- and a random suffix)")
	fs.BoolVar(&asJSON, "json", false, "write the report as JSON")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Bitrate = int(bitrate)
	if urls := strings.Split(cfg.URL, ","); len(urls) > 1 {
		cfg.URL, cfg.URLs = strings.TrimSpace(urls[0]), nil
		for _, u := range urls[1:] {
			cfg.URLs = append(cfg.URLs, strings.TrimSpace(u))
		}
	}
	if cfg.Width, cfg.Height, err = parseSize(size); err != nil {
		return cfg, false, err
	}
	if secret != "" && secretFile != "" {
		return cfg, false, errors.New("-secret and -secret-file both given: choose one")
	}
	cfg.Secret = []byte(secret)
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return cfg, false, fmt.Errorf("-secret-file: %w", err)
		}
		cfg.Secret = []byte(strings.TrimSpace(string(b)))
	}
	if len(cfg.Secret) == 0 && cfg.TokenURL == "" {
		return cfg, false, fmt.Errorf("no token source: give -secret-file (the server's secret) or -token-url (a demo server's, e.g. %s/dev/token)", strings.TrimSuffix(cfg.URL, "/"))
	}
	return cfg, asJSON, cfg.Validate()
}

// parseSize reads "640x360".
func parseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("-size %q: want WxH, e.g. 640x360", s)
	}
	return w, h, nil
}

// bitsPerSecond is a flag value taking 1500000, 1500k or 1.5M.
type bitsPerSecond int

func (b *bitsPerSecond) String() string { return strconv.Itoa(int(*b)) }

func (b *bitsPerSecond) Set(s string) error {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v*mult > 1e10 {
		return fmt.Errorf("want bits per second such as 1500000, 1500k or 1.5M")
	}
	*b = bitsPerSecond(v * mult)
	return nil
}
