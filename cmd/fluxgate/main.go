// Command fluxgate serves the GraphQL API over Flux GitOps.
//
//	fluxgate serve            run the service (default)
//	fluxgate migrate up|status apply or show database migrations
//	fluxgate token ...        print a signed JWT for a user
//	fluxgate version          print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fluxgate/fluxgate/localcluster"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fluxgate:", err)
		os.Exit(1)
	}
}

const usage = `usage: fluxgate <command> [flags]

commands:
  serve              run the service (default)
  migrate up|status  apply or show database migrations
  cluster up|down|status|kubeconfig|build
                     run or inspect the embedded local cluster on its own
  token              print a signed JWT (--subject, --name, --email, --ttl)
  version            print the version

Run 'fluxgate <command> -h' for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		m := NewMain(stdout, stderr)
		if err := m.ParseFlags(args); err != nil {
			return err
		}
		return m.Serve(ctx)
	case "migrate":
		return runMigrate(ctx, args, stdout, stderr)
	case "cluster":
		return localcluster.RunCLI(ctx, args, stdout)
	case "token":
		return runToken(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "fluxgate", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
