module github.com/callcore/callcore

go 1.26.0

require (
	github.com/pion/rtcp v1.2.19
	github.com/pion/rtp v1.10.6
	github.com/pion/srtp/v3 v3.1.3
	go.uber.org/goleak v1.3.0
	golang.org/x/image v0.47.0
	golang.org/x/net v0.62.0
)

require (
	github.com/pion/logging v0.2.4 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	github.com/pion/transport/v5 v5.1.1 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
