// Package bench holds callcore's benchmarks, each beside the baseline it
// must beat, so that one run shows both sides:
//
//	go test ./bench -run '^$' -bench . -benchmem
//
// Every benchmark reports deliveries per second as "pkts/s", and checks at
// its sinks that every packet arrived with the expected checksum, so a sink
// that does nothing cannot make a number.
package bench
