package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callcore/callcore/channel"
)

// Claims are what a token says: the user (the JWT subject) and whether it
// may create calls.
type Claims struct {
	// Create allows the user to create calls.
	Create bool `json:"create,omitempty"`
	jwt.RegisteredClaims
}

// IssueToken signs an HS256 token for user, valid for ttl, allowing it to
// create calls when create is set. Servers that issue their own tokens
// (from a login) use it with the secret given to Config.Secret.
func IssueToken(secret []byte, user string, create bool, ttl time.Duration) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("%w: secret shorter than %d bytes", ErrInvalidConfig, MinSecretLen)
	}
	if user == "" || len(user) > channel.MaxIDLen || !validName(user) {
		return "", fmt.Errorf("%w: user id must be 1 to %d bytes without whitespace or control characters", ErrInvalidConfig, channel.MaxIDLen)
	}
	now := time.Now()
	c := Claims{Create: create, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// tokenLeeway is the clock skew allowed for a token's expiry.
const tokenLeeway = 5 * time.Second

// verifyToken checks token's signature (HS256 only), expiry (required) and
// subject, and returns its claims. Every failure wraps ErrUnauthenticated.
func verifyToken(secret []byte, token string, now time.Time) (Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(tokenLeeway),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if c.Subject == "" || len(c.Subject) > channel.MaxIDLen || !validName(c.Subject) {
		return Claims{}, fmt.Errorf("%w: token subject must be a user id of 1 to %d bytes without whitespace", ErrUnauthenticated, channel.MaxIDLen)
	}
	return c, nil
}

// Errors of the server. Match them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every Config.Validate failure.
	ErrInvalidConfig = errors.New("server: invalid config")
	// ErrUnauthenticated: a missing, malformed, badly signed or expired
	// token, or a first message that is not auth.
	ErrUnauthenticated = errors.New("server: unauthenticated")
	// ErrInvalidMessage: a message that is not valid JSON, has an unknown
	// type or field, or lacks what its type needs.
	ErrInvalidMessage = errors.New("server: invalid message")
	// ErrRateLimited: a request past the connection's rate limit.
	ErrRateLimited = errors.New("server: rate limited")
)
