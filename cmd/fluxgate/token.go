package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fluxgate/fluxgate/auth"
	"github.com/fluxgate/fluxgate/service"
)

func runToken(args []string, stdout, stderr io.Writer) error {
	var c Config
	var id service.Identity
	var ttl string
	fs := flag.NewFlagSet("fluxgate token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.DataDir, "data-dir", envOr("FLUXGATE_DATA_DIR", defaultDataDir()), "data dir (its development secret signs when no secret is configured) (FLUXGATE_DATA_DIR)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", envOr("FLUXGATE_JWT_SECRET", ""), "HS256 secret (FLUXGATE_JWT_SECRET)")
	fs.StringVar(&id.Subject, "subject", "", "token subject (required)")
	fs.StringVar(&id.Name, "name", "", "display name")
	fs.StringVar(&id.Email, "email", "", "e-mail address")
	fs.StringVar(&id.AvatarURL, "picture", "", "avatar URL")
	fs.StringVar(&ttl, "ttl", "24h", "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id.Subject == "" {
		return fmt.Errorf("--subject is required")
	}
	d, err := parseTTL(ttl)
	if err != nil {
		return err
	}
	secret := c.JWTSecret
	if secret == "" {
		if secret, err = persistentSecret(c.DataDir, "dev-jwt-secret"); err != nil {
			return err
		}
	}
	tok, err := auth.Issue([]byte(secret), id, d, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
