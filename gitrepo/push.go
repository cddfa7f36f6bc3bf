package gitrepo

import (
	"context"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// branchMovedError means the remote branch is no longer at the commit we
// built on: fetch, re-apply the edit and retry.
type branchMovedError struct {
	msg string
}

func (e *branchMovedError) Error() string { return e.msg }

// push sends exactly the objects written for one commit (objs, all in st)
// and asks the server to move refs/heads/branch from expect to sha (expect
// zero: create it). The update is a compare-and-swap on the server: if
// another push moved the branch first, it is refused and a
// *branchMovedError is returned.
//
// go-git's Repository.Push would find the objects to send by walking every
// object reachable from the remote's refs, which costs seconds on a large
// repository; here the set is known.
func push(ctx context.Context, url string, auth transport.AuthMethod, st storer.EncodedObjectStorer, branch string, expect, sha plumbing.Hash, objs []plumbing.Hash) (err error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return fmt.Errorf("endpoint: %w", err)
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return fmt.Errorf("transport: %w", err)
	}
	sess, err := cl.NewReceivePackSession(ep, auth)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sess.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return err
	}
	name := plumbing.NewBranchReferenceName(branch)
	refs, err := ar.AllReferences()
	if err != nil {
		return err
	}
	cur, err := refs.Reference(name)
	if (expect.IsZero() && err == nil) || (!expect.IsZero() && (err != nil || cur.Hash() != expect)) {
		return &branchMovedError{msg: fmt.Sprintf("%s moved on the remote", name)}
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: name, Old: expect, New: sha}}
	rd, wr := io.Pipe()
	req.Packfile = rd
	done := make(chan error, 1)
	go func() {
		_, err := packfile.NewEncoder(wr, st, false).Encode(objs, 0)
		done <- wr.CloseWithError(err)
	}()
	rs, err := sess.ReceivePack(ctx, req)
	_ = rd.Close() // unblocks the encoder if the server stopped reading
	encErr := <-done
	if rs != nil {
		if rerr := rs.Error(); rerr != nil {
			// The server refused the ref update: with Old = expect this
			// means another push won the race.
			return &branchMovedError{msg: rerr.Error()}
		}
	}
	if err != nil {
		return err
	}
	if encErr != nil {
		return fmt.Errorf("encode pack: %w", encErr)
	}
	return nil
}
