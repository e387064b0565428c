// Package fuzz holds the fuzz targets that drive several packages
// together: a forward.Track, its subscribers and the in-memory transport.
// A package's own targets live beside it. Each checks an oracle: a
// reference model or an invariant, never only "no panic". Run one with
//
//	go test ./fuzz -run '^$' -fuzz '^FuzzMunger$' -fuzztime 30s
//
// Seeds, crashers included, live in testdata/fuzz.
package fuzz
