package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// DefaultDataDir is the cluster's data directory when none is given:
// $FLUXGATE_DATA_DIR/cluster, else $XDG_DATA_HOME/fluxgate/cluster, else
// ~/.local/share/fluxgate/cluster.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("FLUXGATE_DATA_DIR"); d != "" {
		return filepath.Join(d, "cluster"), nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "fluxgate", "cluster"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("home dir: %w", err)
	}
	return filepath.Join(home, ".local", "share", "fluxgate", "cluster"), nil
}

const cliUsage = `usage: fluxgate cluster <command> [flags]

commands:
  up          build what is missing, start the local cluster and supervise it
              until interrupted (SIGINT/SIGTERM stop every child)
  down        stop the cluster started by "up" with the same data dir
  status      print the phase and each component (--json for JSON)
  kubeconfig  print the path of the admin kubeconfig
  build       build and cache every binary (CI runs this once per machine)

flags:
  --data-dir   cluster data directory (default $FLUXGATE_DATA_DIR/cluster or
               ~/.local/share/fluxgate/cluster)
  --cache-dir  binary cache (default $FLUXGATE_CACHE_DIR or
               <user cache dir>/fluxgate/bin)
  --nodes      number of KWOK nodes (up; default 1)
  --json       JSON output (status)
`

// RunCLI implements `fluxgate cluster up | down | status | kubeconfig |
// build`. args are the words after "cluster". up blocks until ctx ends
// (wire ctx to SIGINT/SIGTERM) and then stops the cluster.
func RunCLI(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, cliUsage)
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet("cluster "+cmd, flag.ContinueOnError)
	fs.SetOutput(stdout)
	defData, err := DefaultDataDir()
	if err != nil {
		return err
	}
	defCache, err := DefaultCacheDir()
	if err != nil {
		return err
	}
	dataDir := fs.String("data-dir", defData, "cluster data directory")
	cacheDir := fs.String("cache-dir", defCache, "binary cache directory")
	nodes := fs.Int("nodes", 1, "number of KWOK nodes")
	asJSON := fs.Bool("json", false, "JSON output")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("cluster %s: %w", cmd, err)
	}
	switch cmd {
	case "up":
		return cliUp(ctx, Config{DataDir: *dataDir, CacheDir: *cacheDir, Nodes: *nodes, Progress: stdout}, stdout)
	case "down":
		return cliDown(ctx, *dataDir, stdout)
	case "status":
		return cliStatus(*dataDir, *asJSON, stdout)
	case "kubeconfig":
		path := filepath.Join(*dataDir, "kubeconfig")
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no kubeconfig in %s: run \"fluxgate cluster up\" first", *dataDir)
		}
		fmt.Fprintln(stdout, path)
		return nil
	case "build":
		return cliBuild(ctx, *cacheDir, stdout)
	default:
		fmt.Fprint(stdout, cliUsage)
		return fmt.Errorf("unknown cluster command %q", cmd)
	}
}

func cliUp(ctx context.Context, cfg Config, stdout io.Writer) error {
	c, err := New(cfg)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := c.Wait(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(stopCtx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	fmt.Fprintf(stdout, "local cluster ready in %s\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "  kubeconfig: %s\n", c.KubeconfigPath())
	fmt.Fprintf(stdout, "  git:        %s (demo: %s)\n", c.GitBaseURL(), c.GitURL("demo"))
	fmt.Fprintf(stdout, "  logs:       %s\n", filepath.Join(c.DataDir(), "logs"))
	select {
	case <-ctx.Done():
	case <-c.Done():
	}
	fmt.Fprintln(stdout, "stopping local cluster…")
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Stop(stopCtx); err != nil {
		return err
	}
	if st := c.Status(); st.Phase == PhaseFailed {
		return fmt.Errorf("local cluster failed: %s", st.Message)
	}
	return nil
}

// supervisorPID returns the pid of the running "up" for dataDir, or 0.
func supervisorPID(dataDir string) int {
	data, err := os.ReadFile(filepath.Join(dataDir, "cluster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !alive(pid) {
		return 0
	}
	return pid
}

// alive reports whether pid runs (a zombie waiting to be reaped does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	if i := strings.LastIndexByte(string(data), ')'); i >= 0 {
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) > 0 && fields[0] == "Z" {
			return false
		}
	}
	return true
}

func cliDown(ctx context.Context, dataDir string, stdout io.Writer) error {
	pid := supervisorPID(dataDir)
	if pid == 0 {
		fmt.Fprintln(stdout, "local cluster is not running")
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal local cluster (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			fmt.Fprintln(stdout, "local cluster stopped")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for local cluster to stop: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("local cluster (pid %d) did not stop within 90s", pid)
}

func cliStatus(dataDir string, asJSON bool, stdout io.Writer) error {
	var st Status
	data, err := os.ReadFile(filepath.Join(dataDir, "status.json"))
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || supervisorPID(dataDir) == 0 {
		// Nothing supervises the cluster: whatever the file says, it is down.
		st.Phase, st.Message = PhaseStopped, "not running"
		for i := range st.Components {
			st.Components[i].State, st.Components[i].PID = StateStopped, 0
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(stdout, "phase: %s", st.Phase)
	if st.Message != "" {
		fmt.Fprintf(stdout, " (%s)", st.Message)
	}
	fmt.Fprintln(stdout)
	if st.Kubeconfig != "" {
		fmt.Fprintf(stdout, "kubeconfig: %s\n", st.Kubeconfig)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tVERSION\tSTATE\tPID\tRESTARTS\tADDRESS\tERROR")
	for _, c := range st.Components {
		pid := ""
		if c.PID != 0 {
			pid = strconv.Itoa(c.PID)
		}
		errMsg := c.Error
		if len(errMsg) > 80 {
			errMsg = errMsg[:80] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.Name, c.Version, c.State, pid, c.Restarts, c.Addr,
			strings.ReplaceAll(errMsg, "\n", " "))
	}
	return tw.Flush()
}

func cliBuild(ctx context.Context, cacheDir string, stdout io.Writer) error {
	b := &Builder{CacheDir: cacheDir, Progress: stdout}
	start := time.Now()
	paths, err := b.Ensure(ctx, Binaries())
	if err != nil {
		return err
	}
	for _, bin := range Binaries() {
		fmt.Fprintf(stdout, "%-24s %-8s %s\n", bin.Name, bin.Version, paths[bin.Name])
	}
	fmt.Fprintf(stdout, "all binaries cached in %s (%s)\n", cacheDir, time.Since(start).Round(time.Second))
	return nil
}
