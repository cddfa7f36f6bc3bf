package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderOptions configure leader election on a coordination.k8s.io Lease.
type LeaderOptions struct {
	// Namespace and Name of the Lease (Namespace is required; Name defaults
	// to "fluxgate-watcher").
	Namespace string
	Name      string
	// Identity of this replica (default hostname + random suffix).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go
	// (defaults 15s, 10s, 2s).
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	Logger        *slog.Logger
}

func (o *LeaderOptions) defaults() error {
	if o.Namespace == "" {
		return errors.New("leader election: lease namespace is required")
	}
	if o.Name == "" {
		o.Name = "fluxgate-watcher"
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = host + "-" + rand.String(6)
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Elector runs a function only while this replica holds the Lease.
type Elector struct {
	opts LeaderOptions
	lock resourcelock.Interface

	mu      sync.Mutex
	elector *leaderelection.LeaderElector
}

// NewElector returns an Elector for the Lease opts names.
func NewElector(cfg *rest.Config, opts LeaderOptions) (*Elector, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	// A hung request must not outlive the renew deadline.
	c.Timeout = max(time.Second, opts.RenewDeadline/2)
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(c, "fluxgate-leader-election"))
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, opts.Namespace, opts.Name,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: opts.Identity})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	return &Elector{opts: opts, lock: lock}, nil
}

// Identity is this replica's identity in the Lease.
func (e *Elector) Identity() string { return e.opts.Identity }

// IsLeader reports whether this replica holds the Lease now.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.elector != nil && e.elector.IsLeader()
}

// Leader is the identity of the last observed holder ("" if none yet).
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.elector == nil {
		return ""
	}
	return e.elector.GetLeader()
}

// Run campaigns for the Lease until ctx is done. While this replica holds
// it, run is called with a context cancelled when leadership is lost (run
// is called again, after a pause, if it returns early with an error). On
// ctx done, Run waits for run to return, then releases the Lease so that
// another replica takes over at once.
func (e *Elector) Run(ctx context.Context, run func(ctx context.Context) error) error {
	for ctx.Err() == nil {
		if err := e.term(ctx, run); err != nil {
			return err
		}
	}
	return nil
}

// term is one campaign: acquire, lead until lost or ctx done.
func (e *Elector) term(ctx context.Context, run func(ctx context.Context) error) error {
	// The elector's context is cancelled only after run returned, so that
	// the Lease is never released while run still writes.
	leCtx, leCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer leCancel()
	started := make(chan struct{})
	runDone := make(chan struct{})
	log := e.opts.Logger.With("lease", e.opts.Namespace+"/"+e.opts.Name, "identity", e.opts.Identity)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            e.lock,
		LeaseDuration:   e.opts.LeaseDuration,
		RenewDeadline:   e.opts.RenewDeadline,
		RetryPeriod:     e.opts.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            e.opts.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				close(started)
				defer close(runDone)
				runCtx, cancel := context.WithCancel(lctx)
				defer cancel()
				stop := context.AfterFunc(ctx, cancel)
				defer stop()
				log.InfoContext(ctx, "leading: starting watcher")
				for runCtx.Err() == nil {
					if err := run(runCtx); err != nil && runCtx.Err() == nil {
						log.ErrorContext(ctx, "watcher failed; restarting", "err", err)
						select {
						case <-runCtx.Done():
						case <-time.After(e.opts.RetryPeriod):
						}
					}
				}
				log.InfoContext(ctx, "stopped leading")
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				log.InfoContext(ctx, "lease holder", "leader", id)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	e.mu.Lock()
	e.elector = le
	e.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-leCtx.Done():
			return
		}
		select {
		case <-started:
			<-runDone
		default:
		}
		leCancel()
	}()
	le.Run(leCtx)
	// Leadership lost (or ctx done): let run finish before campaigning again.
	select {
	case <-started:
		<-runDone
	default:
	}
	return nil
}
