// Package web holds the browser side of callcore: the SDK (sdk/calls.js and
// its modules, with TypeScript typings in sdk/calls.d.ts) and a demo page
// (index.html, app.js, style.css). The call server serves FS as is: the
// demo at "/" and the SDK at "/sdk/calls.js".
package web

import "embed"

// FS holds index.html, app.js, style.css and sdk/*, at those paths.
//
//go:embed index.html app.js style.css sdk/*
var FS embed.FS
