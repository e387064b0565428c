// Package server is callcore's reference call server: the call API of
// docs/api.md (create, join, leave, delete, addUsers, delUsers, modUsers,
// getUsers, configure, addTracks, removeTracks, muteTracks, muteUser, the
// events and the connection status) over a signalling WebSocket, with the
// media carried by WebRTC (transport/webrtc) through the forwarding core.
// With Config.RTP a member may also bring plain RTP into its channel
// (rtpPublish) and take a track out as plain RTP (rtpReceive), through the
// same media plane (plane/rtpplane). cmd/callserver runs it; embedders mount a *Server as an http.Handler.
//
// # Identity
//
// A client's first message is auth with a signed token (JWT, HS256 only,
// expiry required) whose subject is the user id and whose create claim
// allows creating calls. The server never takes a user id from anything
// else. IssueToken makes such tokens; Config.DevTokens serves them to
// anyone at /dev/token, for demos.
//
// # Threading
//
// Each WebSocket is a session: its read loop answers requests in order
// (a create or join runs beside it, since a join may wait for an admin),
// one writer goroutine writes answers and pushes from a bounded queue (a
// client that lets it fill is disconnected), and a keepalive goroutine
// pings. A session in a channel has a stay: the channel's event stream
// pumped to the client by one goroutine, and a WebRTC peer whose server
// offers are made by another. Callbacks from the peer never block and
// never take a lock held while calling into the peer.
//
// # Operations
//
// Drain stops the server taking new calls while those in progress go on
// (/readyz fails, /healthz answers); Collector and AdminHandler give
// Prometheus metrics read from the core's counters at each scrape;
// Config.Webhooks sends the channels' lifecycle as signed POSTs
// (VerifySignature checks them); getStats gives a user the server's view
// of its tracks.
//
// The wire protocol is docs/protocol.md.
package server
