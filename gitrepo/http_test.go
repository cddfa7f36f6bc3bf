package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitHTTPServer serves bare repositories under root with git's smart HTTP
// backend, requiring basic auth user "oauth2" with password token.
func gitHTTPServer(t *testing.T, root, token string) *httptest.Server {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skip("git not installed")
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=fluxgate", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "oauth2" || p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
}

func TestHTTPTokenPush(t *testing.T) {
	bare := newRemote(t, nil)
	srv := gitHTTPServer(t, filepath.Dir(bare), secretToken)
	defer srv.Close()
	url := srv.URL + "/" + filepath.Base(bare)
	ctx := context.Background()
	w := newWorkspace(t, Options{})
	for i, r := range []Remote{
		{URL: url, Auth: Auth{Username: "oauth2", Token: secretToken}},
		{URL: strings.Replace(url, "http://", "http://oauth2:"+secretToken+"@", 1)},
	} {
		res, err := w.Commit(ctx, CommitRequest{Remote: r, Branch: "main", Dir: envDir, Author: testUser,
			Edit: DeployEdit(DeployRequest{Image: ptr(fmt.Sprintf("ghcr.io/acme/web:3.0.%d", i)), User: "Ada"})})
		if err != nil {
			t.Fatal(err)
		}
		if head := gitCmd(t, bare, "rev-parse", "main"); head != res.SHA {
			t.Fatalf("remote head %s, pushed %s", head, res.SHA)
		}
	}
	// A wrong token is refused, and the error says so without the token.
	_, err := w.ReadFiles(ctx, Remote{URL: url, Auth: Auth{Username: "oauth2", Token: "wrong-" + secretToken}}, "main", envDir)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong token: %v", err)
	}
	assertNoSecret(t, "wrong-token error", err.Error())
}
