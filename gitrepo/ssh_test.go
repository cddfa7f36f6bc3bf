package gitrepo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshGitServer is a minimal SSH server that runs git-upload-pack and
// git-receive-pack for clients holding clientKey.
type sshGitServer struct {
	addr    string
	hostPub ssh.PublicKey
	ln      net.Listener
	wg      sync.WaitGroup
}

func newSSHGitServer(t *testing.T, clientKey ssh.PublicKey) *sshGitServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), clientKey.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshGitServer{addr: ln.Addr().String(), hostPub: hostSigner.PublicKey(), ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, cfg)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *sshGitServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				if req.Type != "exec" {
					_ = req.Reply(req.Type == "env", nil)
					continue
				}
				if len(req.Payload) < 4 {
					_ = req.Reply(false, nil)
					return
				}
				cmdline := string(req.Payload[4 : 4+binary.BigEndian.Uint32(req.Payload)])
				prog, arg, _ := strings.Cut(cmdline, " ")
				if prog != "git-upload-pack" && prog != "git-receive-pack" {
					_ = req.Reply(false, nil)
					return
				}
				_ = req.Reply(true, nil)
				cmd := exec.Command("git", strings.TrimPrefix(prog, "git-"), strings.Trim(arg, "'"))
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				status := uint32(0)
				if err := cmd.Run(); err != nil {
					status = 1
				}
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
				return
			}
		}()
	}
}

func TestSSHPush(t *testing.T) {
	bare := newRemote(t, nil)
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clientSigner, _ := ssh.NewSignerFromKey(clientPriv)
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := newSSHGitServer(t, clientSigner.PublicKey())
	knownHosts := []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, srv.hostPub) + "\n")
	url := "ssh://git@" + srv.addr + bare
	ctx := context.Background()
	w := newWorkspace(t, Options{})

	r := Remote{URL: url, Auth: Auth{SSHPrivateKey: pem.EncodeToMemory(block), KnownHosts: knownHosts}}
	res, err := w.Commit(ctx, CommitRequest{Remote: r, Branch: "main", Dir: envDir, Author: testUser,
		Edit: DeployEdit(DeployRequest{Image: ptr("ghcr.io/acme/web:4.0.0"), User: "Ada"})})
	if err != nil {
		t.Fatal(err)
	}
	if head := gitCmd(t, bare, "rev-parse", "main"); head != res.SHA {
		t.Fatalf("remote head %s, pushed %s", head, res.SHA)
	}
	// A server whose host key is not in known_hosts is refused.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _ := ssh.NewPublicKey(otherPriv.Public())
	bad := r
	bad.Auth.KnownHosts = []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, otherPub) + "\n")
	w2 := newWorkspace(t, Options{})
	if _, err := w2.ReadFiles(ctx, bad, "main", envDir); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("unknown host key accepted: %v", err)
	}
}
