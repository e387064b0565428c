module github.com/callcore/callcore

go 1.26.0

require (
	github.com/pion/rtp v1.10.6
	go.uber.org/goleak v1.3.0
	golang.org/x/image v0.47.0
)

require github.com/pion/randutil v0.1.0 // indirect
