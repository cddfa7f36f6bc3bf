package localcluster

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunCLIWithoutCluster(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var out bytes.Buffer
	if err := RunCLI(ctx, nil, &out); err != nil || !strings.Contains(out.String(), "kubeconfig") {
		t.Fatalf("usage: err=%v out=%q", err, out.String())
	}
	out.Reset()
	if err := RunCLI(ctx, []string{"status", "--data-dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "phase: stopped") {
		t.Errorf("status of an absent cluster:\n%s", out.String())
	}
	out.Reset()
	if err := RunCLI(ctx, []string{"kubeconfig", "--data-dir", dir}, &out); err == nil {
		t.Error("kubeconfig of an absent cluster: want an error")
	}
	out.Reset()
	if err := RunCLI(ctx, []string{"down", "--data-dir", dir}, &out); err != nil || !strings.Contains(out.String(), "not running") {
		t.Errorf("down of an absent cluster: err=%v out=%q", err, out.String())
	}
	if err := RunCLI(ctx, []string{"frobnicate"}, &out); err == nil {
		t.Error("unknown command: want an error")
	}
}
