package testcert

import (
	"crypto/tls"
	"testing"
)

// Mutual makes a self-signed certificate for "localhost", 127.0.0.1 and
// ::1 (New), valid for an hour, for both ends of mutual TLS 1.3: server
// requires and verifies the client's certificate, client presents it and
// trusts the server's (the same one).
func Mutual(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	c := New(t)
	certs, pool := c.Server.Certificates, c.Client.RootCAs
	server = &tls.Config{Certificates: certs, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client = &tls.Config{Certificates: certs, RootCAs: pool, ServerName: "localhost",
		MinVersion: tls.VersionTLS13}
	return server, client
}
