// Package auth verifies bearer tokens: HS256 JWTs signed with the
// configured secret and, in development mode, a fixed development token.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/service"
)

// Claims are the JWT claims fluxgate reads.
type Claims struct {
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
	Picture string `json:"picture,omitempty"`
	jwt.RegisteredClaims
}

// DevSubject is the subject of the development user.
const DevSubject = "dev"

// SignIner upserts the user behind a verified identity.
type SignIner interface {
	SignIn(ctx context.Context, id service.Identity) (*fluxgate.User, error)
}

// Authenticator turns a bearer token into a user.
type Authenticator struct {
	secret   []byte
	devToken string // non-empty in development mode
	issuer   string
	users    SignIner
	now      func() time.Time
}

// New returns an Authenticator. secret signs and verifies JWTs; devToken,
// when non-empty, is accepted as the development user's token.
func New(secret []byte, devToken string, users SignIner) *Authenticator {
	return &Authenticator{secret: secret, devToken: devToken, issuer: "fluxgate", users: users, now: time.Now}
}

// DevMode reports whether the development token is accepted.
func (a *Authenticator) DevMode() bool { return a.devToken != "" }

// Result is an authenticated caller with the moment its token expires
// (zero for the development token).
type Result struct {
	User      *fluxgate.User
	ExpiresAt time.Time
}

// Authenticate verifies a raw token ("Bearer " prefix optional).
// Returns EUNAUTHENTICATED for a missing, malformed, expired or
// badly-signed token.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Result, error) {
	tok := strings.TrimSpace(raw)
	if len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") {
		tok = strings.TrimSpace(tok[7:])
	}
	if tok == "" {
		return Result{}, fluxgate.Errorf(fluxgate.EUNAUTHENTICATED, "authentication required: send Authorization: Bearer <token>")
	}
	if a.devToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.devToken)) == 1 {
		u, err := a.users.SignIn(ctx, service.Identity{Subject: DevSubject, Name: "Developer", Email: "dev@fluxgate.local"})
		return Result{User: u}, err
	}
	var c Claims
	_, err := jwt.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(a.now), jwt.WithLeeway(30*time.Second))
	if err != nil {
		msg := "invalid token"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "token expired"
		}
		return Result{}, fluxgate.Errorf(fluxgate.EUNAUTHENTICATED, "%s", msg)
	}
	u, err := a.users.SignIn(ctx, service.Identity{Subject: c.Subject, Name: c.Name, Email: c.Email, AvatarURL: c.Picture})
	if err != nil {
		return Result{}, err
	}
	return Result{User: u, ExpiresAt: c.ExpiresAt.Time}, nil
}

// Issue signs a token for the given identity, valid for ttl.
func Issue(secret []byte, id service.Identity, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("no signing secret configured")
	}
	if id.Subject == "" {
		return "", errors.New("subject is required")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("ttl must be positive, got %s", ttl)
	}
	c := Claims{
		Name:    id.Name,
		Email:   id.Email,
		Picture: id.AvatarURL,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   id.Subject,
			Issuer:    "fluxgate",
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
