// Package bench holds the benchmarks that drive several packages together
// (the forward core with a transport, or under the plane), each beside the
// baseline it must beat, so that one run shows both sides; a package's own
// benchmarks live beside it:
//
//	go test ./bench -run '^$' -bench . -benchmem
//
// Every benchmark reports deliveries per second as "pkts/s", and checks at
// its sinks that every packet arrived with the expected checksum, so a sink
// that does nothing cannot make a number.
package bench
