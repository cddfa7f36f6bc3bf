package localcluster

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	return !alive(pid)
}

func TestProcessRestartsAndStops(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newProcess(procSpec{name: "sleeper", path: sleep, args: []string{"300"},
		logPath: filepath.Join(t.TempDir(), "sleeper.log")}, nil)
	if err := p.start(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	first := p.status()
	if first.State != StateReady || first.PID == 0 {
		t.Fatalf("after start: %+v", first)
	}
	// The child dies: it is restarted with a new pid.
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart", func() bool {
		s := p.status()
		return s.Restarts == 1 && s.State == StateReady && s.PID != 0 && s.PID != first.PID
	})
	second := p.status().PID
	// stop ends it for good.
	p.stop(5 * time.Second)
	waitFor(t, "child gone", func() bool { return gone(second) })
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("supervise loop did not end after stop")
	}
	if s := p.status(); s.State != StateStopped || s.PID != 0 {
		t.Fatalf("after stop: %+v", s)
	}
}

func TestProcessGivesUpAfterRepeatedCrashes(t *testing.T) {
	f, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false binary")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newProcess(procSpec{name: "crasher", path: f, logPath: filepath.Join(t.TempDir(), "crasher.log")}, nil)
	if err := p.start(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("crashing child still being restarted")
	}
	s := p.status()
	if s.State != StateFailed || s.Restarts < 4 || s.Error == "" {
		t.Fatalf("after repeated crashes: %+v", s)
	}
}
