package gitrepo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

const secretToken = "ghp_s3cr3tT0kenValue1234567890"

// assertNoSecret fails if s contains the token in any common encoding.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, form := range []string{secretToken, base64.StdEncoding.EncodeToString([]byte("oauth2:" + secretToken)), "s3cr3tT0ken"} {
		if strings.Contains(s, form) {
			t.Fatalf("%s leaks the secret: %s", what, s)
		}
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCredentialsNeverInErrors(t *testing.T) {
	// A server that refuses, and one that echoes the request (credentials
	// included) in an error body.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "bad credentials "+r.Header.Get("Authorization"), http.StatusUnauthorized)
	}))
	defer refuse.Close()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		http.Error(w, fmt.Sprintf("boom for %s:%s at %s (%s)", u, p, r.URL, r.Header.Get("Authorization")), http.StatusInternalServerError)
	}))
	defer echo.Close()

	var logs bytes.Buffer
	dir := t.TempDir()
	w := newWorkspace(t, Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil)), MaxAttempts: 2})
	tests := []struct {
		name    string
		remote  Remote
		wantErr error
	}{
		{"token in URL, nothing listening", Remote{URL: "https://oauth2:" + secretToken + "@" + closedPort(t) + "/org/repo.git"}, nil},
		{"token in URL, refused", Remote{URL: strings.Replace(refuse.URL, "http://", "http://oauth2:"+secretToken+"@", 1) + "/org/repo.git"}, ErrAuth},
		{"token auth, refused", Remote{URL: refuse.URL + "/org/repo.git", Auth: Auth{Token: secretToken}}, ErrAuth},
		{"basic auth, server echoes credentials", Remote{URL: echo.URL + "/org/repo.git", Auth: Auth{Username: "oauth2", Password: secretToken}}, nil},
		{"token as URL user, server echoes", Remote{URL: strings.Replace(echo.URL, "http://", "http://"+secretToken+"@", 1) + "/repo.git"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			_, err := w.ReadFiles(ctx, tt.remote, "main", envDir)
			if err == nil {
				t.Fatal("expected an error")
			}
			assertNoSecret(t, "ReadFiles error", err.Error())
			assertNoSecret(t, "ReadFiles error (%+v)", fmt.Sprintf("%+v %#v", err, err))
			for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
				assertNoSecret(t, "wrapped error", e.Error())
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			_, err = w.Commit(ctx, CommitRequest{Remote: tt.remote, Branch: "main", Dir: envDir, Author: testUser,
				Edit: DeployEdit(DeployRequest{Replicas: ptr(int32(2))})})
			if err == nil {
				t.Fatal("expected an error")
			}
			assertNoSecret(t, "Commit error", err.Error())
		})
	}
	assertNoSecret(t, "logs", logs.String())
	// Nothing on disk (cache config, known_hosts…) holds the token either.
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		assertNoSecret(t, p, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Printing or logging credentials shows no secret.
	a := Auth{Username: "oauth2", Password: secretToken, Token: secretToken, SSHPassphrase: secretToken}
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("auth", "auth", a)
	assertNoSecret(t, "formatted Auth", fmt.Sprintf("%v %+v %#v %s", a, a, a, a)+logs.String())
}

func TestRedact(t *testing.T) {
	s := `Get "https://oauth2:` + secretToken + `@github.com/org/repo.git/info/refs": dial tcp; also ssh://git:pw@host/x and token ` + secretToken
	got := Redact(s, secretToken)
	assertNoSecret(t, "Redact", got)
	if !strings.Contains(got, "https://github.com/org/repo.git/info/refs") || !strings.Contains(got, "ssh://host/x") || !strings.Contains(got, "[REDACTED]") {
		t.Fatalf("Redact = %q", got)
	}
	if RedactURL("git@github.com:org/repo.git") != "git@github.com:org/repo.git" {
		t.Fatal("scp-like SSH address altered")
	}
}

func TestSealer(t *testing.T) {
	key, err := ParseKey(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	a := Auth{Username: "oauth2", Token: secretToken}
	sealed, err := s.SealAuth(a)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "sealed", string(sealed))
	sealed2, _ := s.SealAuth(a)
	if bytes.Equal(sealed, sealed2) {
		t.Fatal("nonce reused")
	}
	got, err := s.OpenAuth(sealed)
	if err != nil || got.Token != secretToken || got.Username != "oauth2" {
		t.Fatalf("OpenAuth = %v, %v", got, err)
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	if _, err := s.OpenAuth(tampered); !errors.Is(err, ErrBadCiphertext) {
		t.Fatalf("tampered: %v", err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed); !errors.Is(err, ErrBadCiphertext) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := ParseKey("too-short"); err == nil {
		t.Fatal("short key accepted")
	}
	if k, err := ParseKey(strings.Repeat("ab", 16)); err != nil || len(k) != 16 {
		t.Fatalf("hex key: %v", err)
	}
}

func TestSSHAuth(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(block)
	hostPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshHostPub, _ := ssh.NewPublicKey(hostPub)
	knownHosts := []byte("git.example.com " + string(ssh.MarshalAuthorizedKey(sshHostPub)))
	dir := t.TempDir()

	a := Auth{SSHPrivateKey: keyPEM, KnownHosts: knownHosts}
	m, err := a.transportAuth("ssh://git@git.example.com/org/repo.git", filepath.Join(dir, "kh"))
	if err != nil {
		t.Fatal(err)
	}
	pk, ok := m.(*gitssh.PublicKeys)
	if !ok || pk.User != "git" {
		t.Fatalf("auth = %T %+v", m, m)
	}
	// The known host key is accepted, any other refused.
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	if err := pk.HostKeyCallback("git.example.com:22", addr, sshHostPub); err != nil {
		t.Fatalf("known host refused: %v", err)
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, _ := ssh.NewPublicKey(otherPub)
	if err := pk.HostKeyCallback("git.example.com:22", addr, otherKey); err == nil {
		t.Fatal("unknown host key accepted")
	}
	var inv *InvalidInputError
	if _, err := (Auth{SSHPrivateKey: keyPEM}).transportAuth("", filepath.Join(dir, "kh2")); !errors.As(err, &inv) || inv.Field != "knownHosts" {
		t.Fatalf("no known_hosts: %v", err)
	}
	if _, err := (Auth{SSHPrivateKey: []byte("junk"), KnownHosts: knownHosts}).transportAuth("", filepath.Join(dir, "kh3")); !errors.As(err, &inv) || inv.Field != "sshPrivateKey" {
		t.Fatalf("bad key: %v", err)
	}
}

func TestCleanPath(t *testing.T) {
	for _, tt := range []struct {
		p, want string
		ok      bool
	}{
		{envDir + "/deployment.yaml", envDir + "/deployment.yaml", true},
		{envDir + "/sub/./x.yaml", envDir + "/sub/x.yaml", true},
		{envDir + "/../x.yaml", "", false},
		{"../x.yaml", "", false},
		{"/abs.yaml", "", false},
		{"k8s/base/x.yaml", "", false},
		{envDir + "/.git/config", "", false},
	} {
		got, err := CleanPath(envDir, tt.p)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CleanPath(%q) = %q, %v", tt.p, got, err)
		}
	}
}
