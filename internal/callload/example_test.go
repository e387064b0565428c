package callload_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/callcore/callcore/internal/callload"
)

// A run against a demo callserver on this machine: one publisher of about
// 780 VP8 packets a second, ten subscribers, the server's CPU per
// delivered packet. (Not run as a test: it needs a server.)
func ExampleRun() {
	serverPID := 12345 // the callserver's process
	rep, err := callload.Run(context.Background(), callload.Config{
		URL:         "http://127.0.0.1:8080",
		TokenURL:    "http://127.0.0.1:8080/dev/token",
		Publishers:  1,
		Subscribers: 10,
		Bitrate:     7_200_000, // 30,000-byte frames: 26 packets each
		FPS:         30,
		Warmup:      5 * time.Second,
		Duration:    25 * time.Second,
		ServerPID:   serverPID,
	}, os.Stderr)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.0f packets/s delivered, %.2f µs of server CPU each, %d lost\n",
		rep.DeliveredPerSecond, rep.Server.MicrosPerPacket, rep.Lost)
	_ = rep.WriteTable(os.Stdout)
}
