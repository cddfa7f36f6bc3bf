package gitrepo

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// Auth holds push/fetch credentials for one repository. Use either HTTPS
// (Token, or Username + Password) or SSH (SSHPrivateKey + KnownHosts). Its
// String, GoString and LogValue methods never print secrets.
type Auth struct {
	// HTTPS basic auth. With Token set and Username empty, the username
	// "git" is sent (GitHub, Gitea and GitLab accept any username with a
	// token; GitLab deploy tokens need their own username).
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`

	// SSH. SSHUser defaults to "git". KnownHosts (the content of a
	// known_hosts file) is required: host keys are always verified.
	SSHUser       string `json:"sshUser,omitempty"`
	SSHPrivateKey []byte `json:"sshPrivateKey,omitempty"`
	SSHPassphrase string `json:"sshPassphrase,omitempty"`
	KnownHosts    []byte `json:"knownHosts,omitempty"`
}

// IsZero reports whether no credentials are set.
func (a Auth) IsZero() bool {
	return a.Username == "" && a.Password == "" && a.Token == "" && len(a.SSHPrivateKey) == 0
}

func (a Auth) kind() string {
	switch {
	case len(a.SSHPrivateKey) > 0:
		return "ssh"
	case a.Token != "":
		return "token"
	case a.Password != "" || a.Username != "":
		return "basic"
	}
	return "none"
}

func (a Auth) String() string   { return "gitrepo.Auth{" + a.kind() + ", redacted}" }
func (a Auth) GoString() string { return a.String() }

// LogValue keeps secrets out of slog output.
func (a Auth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// secrets lists the values that must never appear in errors or logs.
func (a Auth) secrets() []string {
	var s []string
	for _, v := range []string{a.Password, a.Token, a.SSHPassphrase} {
		if v != "" {
			s = append(s, v)
		}
	}
	if a.Username != "" && (a.Password != "" || a.Token != "") {
		pw := a.Password
		if pw == "" {
			pw = a.Token
		}
		s = append(s, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+pw)))
	}
	return s
}

// Remote is a Git repository to work on.
type Remote struct {
	URL  string
	Auth Auth
}

// normalize moves credentials embedded in an HTTP(S) URL
// (https://user:token@host/…) into Auth and strips them from the URL, so
// the URL can be stored, logged and used as a cache key.
func (r Remote) normalize() (Remote, error) {
	if r.URL == "" {
		return r, &InvalidInputError{Field: "url", Reason: "repository URL is empty"}
	}
	u, err := url.Parse(r.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// scp-like SSH ("git@host:org/repo.git") and local paths.
		if err != nil && strings.Contains(r.URL, "://") {
			return r, &InvalidInputError{Field: "url", Reason: "unparsable repository URL " + RedactURL(r.URL)}
		}
		return r, nil
	}
	if u.User != nil && (u.Scheme == "http" || u.Scheme == "https") {
		user := u.User.Username()
		if pw, ok := u.User.Password(); ok && r.Auth.Password == "" && r.Auth.Token == "" {
			r.Auth.Username, r.Auth.Password = user, pw
		} else if !ok && r.Auth.Token == "" && r.Auth.Password == "" && user != "" {
			r.Auth.Token = user // https://<token>@host/…
		}
		u.User = nil
		r.URL = u.String()
	}
	return r, nil
}

// transportAuth builds the go-git auth method. knownHostsPath is where the
// known_hosts content is written for SSH.
func (a Auth) transportAuth(rawURL, knownHostsPath string) (transport.AuthMethod, error) {
	switch {
	case len(a.SSHPrivateKey) > 0:
		if len(a.KnownHosts) == 0 {
			return nil, &InvalidInputError{Field: "knownHosts", Reason: "SSH needs known_hosts to verify the server"}
		}
		user := a.SSHUser
		if user == "" {
			user = "git"
		}
		pk, err := gitssh.NewPublicKeys(user, a.SSHPrivateKey, a.SSHPassphrase)
		if err != nil {
			return nil, &InvalidInputError{Field: "sshPrivateKey", Reason: "cannot parse the private key (or wrong passphrase)"}
		}
		if err := os.MkdirAll(filepath.Dir(knownHostsPath), 0o700); err != nil {
			return nil, fmt.Errorf("known_hosts dir: %w", err)
		}
		if err := os.WriteFile(knownHostsPath, a.KnownHosts, 0o600); err != nil {
			return nil, fmt.Errorf("write known_hosts: %w", err)
		}
		cb, err := gitssh.NewKnownHostsCallback(knownHostsPath)
		if err != nil {
			return nil, &InvalidInputError{Field: "knownHosts", Reason: "cannot parse known_hosts"}
		}
		pk.HostKeyCallback = cb
		return pk, nil
	case a.Token != "":
		user := a.Username
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: a.Token}, nil
	case a.Username != "" || a.Password != "":
		return &githttp.BasicAuth{Username: a.Username, Password: a.Password}, nil
	}
	return nil, nil
}

// Sealer encrypts stored push credentials with AES-GCM. The key comes from
// configuration (16, 24 or 32 bytes; see ParseKey).
type Sealer struct {
	aead cipher.AEAD
}

const sealVersion = 1

// ParseKey decodes a key given in configuration as base64 (standard or
// URL alphabet) or hex, and checks its length (16, 24 or 32 bytes).
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	// Hex first: a hex string is also valid base64.
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if k, err := dec(s); err == nil && (len(k) == 16 || len(k) == 24 || len(k) == 32) {
			return k, nil
		}
	}
	return nil, errors.New("credential key must be 16, 24 or 32 bytes, base64 or hex encoded")
}

// NewSealer returns a Sealer for key.
func NewSealer(key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext; the output is version byte | nonce | ciphertext.
func (s *Sealer) Seal(plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, []byte{sealVersion}), nil
}

// ErrBadCiphertext is returned by Open for data that was not sealed with
// this key or was altered.
var ErrBadCiphertext = errors.New("stored credentials cannot be decrypted (wrong key or corrupted)")

// Open decrypts data produced by Seal.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrBadCiphertext
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte{sealVersion})
	if err != nil {
		return nil, ErrBadCiphertext
	}
	return pt, nil
}

// SealAuth encrypts credentials for storage.
func (s *Sealer) SealAuth(a Auth) ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode credentials: %w", err)
	}
	return s.Seal(b)
}

// OpenAuth decrypts credentials sealed by SealAuth.
func (s *Sealer) OpenAuth(sealed []byte) (Auth, error) {
	var a Auth
	b, err := s.Open(sealed)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, ErrBadCiphertext
	}
	return a, nil
}
