package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// ComponentState is where one component of the local cluster stands.
type ComponentState string

// Component states.
const (
	StatePending    ComponentState = "pending"
	StateBuilding   ComponentState = "building"
	StateStarting   ComponentState = "starting"
	StateReady      ComponentState = "ready"
	StateRestarting ComponentState = "restarting"
	StateFailed     ComponentState = "failed"
	StateStopped    ComponentState = "stopped"
)

// procSpec says how to run one child process.
type procSpec struct {
	name    string
	version string
	path    string
	args    []string
	env     []string
	logPath string
	addr    string
	// ready polls until the process serves; it is called after each start.
	ready func(ctx context.Context) error
}

// process supervises one child: it runs it in its own process group with
// Pdeathsig so it dies with fluxgate, restarts it when it exits unexpectedly
// and gives up (state failed) after repeated quick crashes.
type process struct {
	spec     procSpec
	onChange func()

	mu       sync.Mutex
	state    ComponentState
	pid      int
	restarts int
	lastErr  string
	stopping bool
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current child has been reaped

	done chan struct{} // closed when the supervise loop ends
}

func newProcess(spec procSpec, onChange func()) *process {
	return &process{spec: spec, onChange: onChange, state: StatePending, done: make(chan struct{})}
}

func (p *process) set(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
	if p.onChange != nil {
		p.onChange()
	}
}

// status reports the component.
func (p *process) status() ComponentStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ComponentStatus{
		Name: p.spec.name, Version: p.spec.version, State: p.state, PID: p.pid,
		Restarts: p.restarts, Error: p.lastErr, Addr: p.spec.addr, Log: p.spec.logPath,
	}
}

// start launches the child and returns once it is ready (or failed to be,
// or readyCtx ended), leaving a goroutine that restarts it if it dies until
// life ends or stop is called.
func (p *process) start(life, readyCtx context.Context) error {
	ctx := readyCtx
	exited, err := p.launch()
	if err != nil {
		p.set(func() { p.state = StateFailed; p.lastErr = err.Error() })
		close(p.done)
		return err
	}
	if err := p.waitReady(ctx, exited); err != nil {
		p.set(func() { p.state = StateFailed; p.lastErr = err.Error() })
		p.stop(5 * time.Second)
		p.set(func() { p.state = StateFailed })
		close(p.done)
		return err
	}
	go p.supervise(life, exited)
	return nil
}

func (p *process) waitReady(ctx context.Context, exited chan struct{}) error {
	if p.spec.ready == nil {
		p.set(func() { p.state = StateReady })
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-rctx.Done():
		}
	}()
	if err := p.spec.ready(rctx); err != nil {
		select {
		case <-exited:
			return fmt.Errorf("%s exited during start-up: %s", p.spec.name, logTail(p.spec.logPath, 1500))
		default:
		}
		return fmt.Errorf("wait for %s: %w", p.spec.name, err)
	}
	p.set(func() { p.state = StateReady })
	return nil
}

// launch starts the child from a goroutine locked to its OS thread: Pdeathsig
// fires when the thread that forked the child ends, so the thread must live
// as long as the child does.
func (p *process) launch() (chan struct{}, error) {
	logf, err := os.OpenFile(p.spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", p.spec.name, err)
	}
	fmt.Fprintf(logf, "\n==== %s starting %s\n", time.Now().Format(time.RFC3339), p.spec.name)
	cmd := exec.Command(p.spec.path, p.spec.args...)
	cmd.Env = append(os.Environ(), p.spec.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it ends with this goroutine, after
		// the child has been reaped.
		if err := cmd.Start(); err != nil {
			started <- err
			_ = logf.Close()
			return
		}
		p.set(func() {
			p.cmd = cmd
			p.pid = cmd.Process.Pid
			p.exited = exited
			if p.state != StateRestarting {
				p.state = StateStarting
			}
		})
		started <- nil
		werr := cmd.Wait()
		_ = logf.Close()
		p.set(func() {
			p.pid = 0
			if werr != nil && !p.stopping {
				p.lastErr = fmt.Sprintf("exited: %v", werr)
			}
		})
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", p.spec.name, err)
	}
	return exited, nil
}

// supervise restarts the child each time it exits until stop is called.
// Five crashes within a minute of starting mark the component failed.
func (p *process) supervise(ctx context.Context, exited chan struct{}) {
	defer close(p.done)
	quick := 0
	for {
		startedAt := time.Now()
		<-exited
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		if stopping || ctx.Err() != nil {
			p.set(func() { p.state = StateStopped })
			return
		}
		if time.Since(startedAt) < time.Minute {
			quick++
		} else {
			quick = 0
		}
		if quick >= 5 {
			p.set(func() {
				p.state = StateFailed
				p.lastErr = fmt.Sprintf("crashed %d times in a row: %s", quick, logTail(p.spec.logPath, 1500))
			})
			return
		}
		p.set(func() { p.state = StateRestarting; p.restarts++ })
		select {
		case <-ctx.Done():
			p.set(func() { p.state = StateStopped })
			return
		case <-time.After(time.Duration(quick) * time.Second):
		}
		var err error
		exited, err = p.launch()
		if err != nil {
			p.set(func() { p.state = StateFailed; p.lastErr = err.Error() })
			return
		}
		if err := p.waitReady(ctx, exited); err != nil {
			p.set(func() { p.lastErr = err.Error() })
		}
	}
}

// stop sends SIGTERM to the child's process group, then SIGKILL after
// grace, and waits for it to be reaped.
func (p *process) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil || exited == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	p.set(func() { p.state = StateStopped })
}

// logTail returns the last n bytes of a log file, for error reports.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return string(buf)
}
