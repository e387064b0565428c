// Package fuzz holds callcore's fuzz targets. Each checks an oracle: a
// reference model or an invariant, never only "no panic". Run one with
//
//	go test ./fuzz -run '^$' -fuzz '^FuzzMunger$' -fuzztime 30s
//
// Seeds, crashers included, live in testdata/fuzz.
package fuzz
