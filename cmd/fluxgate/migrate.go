package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/fluxgate/fluxgate/store"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("fluxgate migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.bindStoreFlags(fs)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: fluxgate migrate [flags] up|status"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "up" && fs.Arg(0) != "status") {
		fs.Usage()
		return fmt.Errorf("migrate needs exactly one of: up, status")
	}
	db, err := store.Open(ctx, c.databaseURL())
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx, fs.Arg(0), stdout)
}
