package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
)

// testFluxEventsCommitOrder checks that sequence order is commit order: an
// event inserted while another transaction holds an uncommitted event waits
// for it, and gets the higher sequence number. Otherwise a subscriber that
// replays "after seq N" could miss an event that commits late with a lower
// number.
func testFluxEventsCommitOrder(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	ev := func(reason string) *fluxgate.FluxEvent {
		return &fluxgate.FluxEvent{ProjectID: p.ID, Kind: "Kustomization", Name: "web", Reason: reason, Timestamp: utc(1)}
	}
	held := make(chan int64, 1)
	release := make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- s.InTx(ctx, func(ctx context.Context) error {
			e := ev("first")
			if _, err := s.CreateFluxEvent(ctx, e); err != nil {
				held <- -1
				return err
			}
			held <- e.Seq
			<-release
			return nil
		})
	}()
	firstSeq := <-held
	if firstSeq < 0 {
		t.Fatal(<-txDone)
	}

	second := ev("second")
	secondDone := make(chan error, 1)
	go func() {
		_, err := s.CreateFluxEvent(ctx, second)
		secondDone <- err
	}()
	select {
	case err := <-secondDone:
		close(release)
		<-txDone
		t.Fatalf("insert completed (err %v, seq %d) while an earlier event was uncommitted", err, second.Seq)
	case <-time.After(300 * time.Millisecond):
	}
	// The uncommitted event is invisible to readers meanwhile.
	got, _, err := s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID})
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	if len(got) != 0 {
		close(release)
		t.Fatalf("uncommitted events visible: %d", len(got))
	}
	close(release)
	must(t, <-txDone)
	must(t, <-secondDone)
	if second.Seq <= firstSeq {
		t.Fatalf("second event seq %d not after first %d", second.Seq, firstSeq)
	}
	got, _, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID})
	must(t, err)
	if len(got) != 2 || got[0].Reason != "second" || got[1].Reason != "first" {
		t.Fatalf("events after both committed: %d, want second then first", len(got))
	}
}

var errBoom = errors.New("boom")

func testInTx(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()

	// Commit: both writes visible; inside, the transaction reads its writes.
	var committed *fluxgate.Project
	must(t, s.InTx(ctx, func(ctx context.Context) error {
		committed = &fluxgate.Project{Slug: "committed"}
		if err := s.CreateProject(ctx, committed); err != nil {
			return err
		}
		if _, err := s.GetProject(ctx, committed.ID); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		return s.CreateAuditEntry(ctx, &fluxgate.AuditEntry{ProjectID: &committed.ID, Action: "project.created"})
	}))
	_, err := s.GetProject(ctx, committed.ID)
	must(t, err)
	entries, _, err := s.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: committed.ID})
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("audit entries after commit = %d", len(entries))
	}

	// An error rolls back every write of the callback.
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.CreateProject(ctx, &fluxgate.Project{Slug: "rolled-back"}); err != nil {
			return err
		}
		if err := s.CreateAuditEntry(ctx, &fluxgate.AuditEntry{ProjectID: &committed.ID, Action: "x"}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx error = %v, want the callback's", err)
	}
	_, err = s.GetProjectBySlug(ctx, "rolled-back")
	wantCode(t, err, fluxgate.ENOTFOUND)
	entries, _, err = s.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: committed.ID})
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("audit entries after rollback = %d, want 1", len(entries))
	}

	// A nested InTx joins the outer transaction: the outer error undoes both.
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.CreateProject(ctx, &fluxgate.Project{Slug: "outer"}); err != nil {
			return err
		}
		if err := s.InTx(ctx, func(ctx context.Context) error {
			return s.CreateProject(ctx, &fluxgate.Project{Slug: "inner"})
		}); err != nil {
			return err
		}
		if _, err := s.GetProjectBySlug(ctx, "inner"); err != nil {
			return fmt.Errorf("inner write not visible to outer: %w", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("nested InTx error = %v", err)
	}
	for _, slug := range []string{"outer", "inner"} {
		_, err = s.GetProjectBySlug(ctx, slug)
		wantCode(t, err, fluxgate.ENOTFOUND)
	}

	// A store error inside the transaction surfaces with its code and undoes
	// the earlier writes.
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.CreateProject(ctx, &fluxgate.Project{Slug: "before-conflict"}); err != nil {
			return err
		}
		return s.CreateProject(ctx, &fluxgate.Project{Slug: "committed"})
	})
	wantCode(t, err, fluxgate.ECONFLICT)
	_, err = s.GetProjectBySlug(ctx, "before-conflict")
	wantCode(t, err, fluxgate.ENOTFOUND)

	// A panic rolls back and propagates; the store stays usable.
	func() {
		defer func() {
			if r := recover(); r != errBoom {
				t.Fatalf("recovered %v, want the callback's panic", r)
			}
		}()
		_ = s.InTx(ctx, func(ctx context.Context) error {
			if err := s.CreateProject(ctx, &fluxgate.Project{Slug: "panicked"}); err != nil {
				return err
			}
			panic(errBoom)
		})
	}()
	_, err = s.GetProjectBySlug(ctx, "panicked")
	wantCode(t, err, fluxgate.ENOTFOUND)
	mustProject(t, s, "after-panic")
}

// pager lists one page of items, returning their keys.
type pager func(page fluxgate.Page) ([]string, fluxgate.PageInfo, error)

// paginate walks pages of size first; between pages it calls between(n)
// with the number of pages read so far.
func paginate(t *testing.T, list pager, first int, between func(n int)) []string {
	t.Helper()
	var all []string
	page := fluxgate.Page{First: first}
	for n := 1; ; n++ {
		keys, info, err := list(page)
		must(t, err)
		if len(keys) > first {
			t.Fatalf("page %d has %d items, asked for %d", n, len(keys), first)
		}
		all = append(all, keys...)
		if !info.HasNextPage {
			return all
		}
		if len(keys) == 0 || info.EndCursor == "" {
			t.Fatalf("page %d: HasNextPage without items or cursor", n)
		}
		page.After = info.EndCursor
		if between != nil {
			between(n)
		}
		if n > 1000 {
			t.Fatal("pagination does not end")
		}
	}
}

func testPaginationAscending(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	var want []string
	newProject := func() {
		want = append(want, mustProject(t, s, unique("proj")).ID)
	}
	for range 5 {
		newProject()
	}
	// Rows inserted between pages sort after the cursor: they show up on a
	// later page, nothing is skipped or repeated.
	got := paginate(t, func(page fluxgate.Page) ([]string, fluxgate.PageInfo, error) {
		ps, info, err := s.ListProjects(ctx, fluxgate.ProjectFilter{Page: page})
		return ids(ps, func(p *fluxgate.Project) string { return p.ID }), info, err
	}, 2, func(n int) {
		if n <= 2 {
			newProject()
			newProject()
		}
	})
	wantEqual(t, "projects across pages", got, want)

	p := mustProject(t, s, "res")
	var wantRes []string
	newResource := func() {
		wantRes = append(wantRes, mustResource(t, s, p.ID, nil, fluxgate.KindHelmRelease, unique("hr")).ID)
	}
	for range 4 {
		newResource()
	}
	got = paginate(t, func(page fluxgate.Page) ([]string, fluxgate.PageInfo, error) {
		rs, info, err := s.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: p.ID, Page: page})
		return ids(rs, func(r *fluxgate.GitOpsResource) string { return r.ID }), info, err
	}, 3, func(n int) {
		if n == 1 {
			newResource()
		}
	})
	wantEqual(t, "resources across pages", got, wantRes)

	var wantTeams []string
	newTeam := func() {
		tm := &fluxgate.Team{Slug: unique("team")}
		must(t, s.CreateTeam(ctx, tm))
		wantTeams = append(wantTeams, tm.ID)
	}
	for range 3 {
		newTeam()
	}
	got = paginate(t, func(page fluxgate.Page) ([]string, fluxgate.PageInfo, error) {
		ts, info, err := s.ListTeams(ctx, page)
		return ids(ts, func(t *fluxgate.Team) string { return t.ID }), info, err
	}, 1, func(n int) {
		if n == 1 {
			newTeam()
		}
	})
	wantEqual(t, "teams across pages", got, wantTeams)
}

func testPaginationNewestFirst(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	newEntry := func() string {
		e := &fluxgate.AuditEntry{ProjectID: &p.ID, Action: unique("action")}
		must(t, s.CreateAuditEntry(ctx, e))
		return e.ID
	}
	var before []string
	for range 5 {
		before = append([]string{newEntry()}, before...)
	}
	// Rows inserted between pages are newer than the cursor: not on later
	// pages, and nothing already seen comes back.
	got := paginate(t, func(page fluxgate.Page) ([]string, fluxgate.PageInfo, error) {
		es, info, err := s.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: p.ID, Page: page})
		return ids(es, func(e *fluxgate.AuditEntry) string { return e.ID }), info, err
	}, 2, func(int) { newEntry(); newEntry() })
	wantEqual(t, "audit entries across pages", got, before)

	env := mustEnvironment(t, s, p.ID, "dev")
	var deps []string
	for i := range 5 {
		deps = append([]string{mustDeployment(t, s, env, fmt.Sprint("sha", i), fluxgate.DeploymentPending).ID}, deps...)
	}
	got = paginate(t, func(page fluxgate.Page) ([]string, fluxgate.PageInfo, error) {
		ds, info, err := s.ListDeployments(ctx, fluxgate.DeploymentFilter{EnvironmentID: env.ID, Page: page})
		return ids(ds, func(d *fluxgate.Deployment) string { return d.ID }), info, err
	}, 2, func(int) { mustDeployment(t, s, env, "new", fluxgate.DeploymentPending) })
	wantEqual(t, "deployments across pages", got, deps)

	var seqs []string
	newEvent := func() string {
		e := &fluxgate.FluxEvent{ProjectID: p.ID, Kind: "Kustomization", Name: "web", Timestamp: utc(1)}
		_, err := s.CreateFluxEvent(ctx, e)
		must(t, err)
		return fmt.Sprint(e.Seq)
	}
	for range 5 {
		seqs = append([]string{newEvent()}, seqs...)
	}
	got = paginate(t, func(page fluxgate.Page) ([]string, fluxgate.PageInfo, error) {
		es, info, err := s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID, Page: page})
		return ids(es, func(e *fluxgate.FluxEvent) string { return fmt.Sprint(e.Seq) }), info, err
	}, 2, func(int) { newEvent() })
	wantEqual(t, "flux events across pages", got, seqs)
}

// testPaginationConcurrent paginates while another goroutine keeps
// inserting: every row that existed before is seen exactly once, in order.
func testPaginationConcurrent(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	var existing []string
	for range 20 {
		existing = append(existing, mustProject(t, s, unique("c")).ID)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var inserted atomic.Int64
	var insertErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.CreateProject(ctx, &fluxgate.Project{Slug: unique("new")}); err != nil {
				insertErr.Store(err)
				return
			}
			inserted.Add(1)
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriter()
	// Start walking once the writer is going.
	for inserted.Load() == 0 && insertErr.Load() == nil {
		time.Sleep(time.Millisecond)
	}
	var got []string
	page := fluxgate.Page{First: 3}
	for {
		ps, info, err := s.ListProjects(ctx, fluxgate.ProjectFilter{Page: page})
		must(t, err)
		got = append(got, ids(ps, func(p *fluxgate.Project) string { return p.ID })...)
		if len(got) >= len(existing)+3 {
			stopWriter() // so that the walk reaches the end
		}
		if !info.HasNextPage {
			break
		}
		page.After = info.EndCursor
	}
	stopWriter()
	if err, _ := insertErr.Load().(error); err != nil {
		t.Fatalf("concurrent insert: %v", err)
	}
	if !slices.IsSorted(got) {
		t.Fatal("pages are not in id order")
	}
	if len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatal("a row was returned twice")
	}
	for i, id := range existing {
		if i >= len(got) || got[i] != id {
			t.Fatalf("pre-existing row %d (%s) skipped or out of place", i, id)
		}
	}
}

func testPageValidation(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	for _, page := range []fluxgate.Page{{First: -1}, {First: fluxgate.MaxPageSize + 1}, {After: "not a cursor"}} {
		_, _, err := s.ListProjects(ctx, fluxgate.ProjectFilter{Page: page})
		wantCode(t, err, fluxgate.EINVALID)
		_, _, err = s.ListTeams(ctx, page)
		wantCode(t, err, fluxgate.EINVALID)
		_, _, err = s.ListResources(ctx, fluxgate.ResourceFilter{Page: page})
		wantCode(t, err, fluxgate.EINVALID)
		_, _, err = s.ListDeployments(ctx, fluxgate.DeploymentFilter{Page: page})
		wantCode(t, err, fluxgate.EINVALID)
		_, _, err = s.ListAuditEntries(ctx, fluxgate.AuditFilter{Page: page})
		wantCode(t, err, fluxgate.EINVALID)
		_, _, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{Page: page})
		wantCode(t, err, fluxgate.EINVALID)
	}
	_, _, err := s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{Page: fluxgate.Page{After: fluxgate.EncodeCursor("seven")}})
	wantCode(t, err, fluxgate.EINVALID)

	// First 0 means the default page size.
	for range fluxgate.DefaultPageSize + 1 {
		must(t, s.CreateAuditEntry(ctx, &fluxgate.AuditEntry{ProjectID: &p.ID, Action: "a"}))
	}
	entries, info, err := s.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: p.ID})
	must(t, err)
	if len(entries) != fluxgate.DefaultPageSize || !info.HasNextPage {
		t.Fatalf("default page: %d entries, HasNextPage %v", len(entries), info.HasNextPage)
	}
	entries, info, err = s.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: p.ID, Page: fluxgate.Page{After: info.EndCursor}})
	must(t, err)
	if len(entries) != 1 || info.HasNextPage {
		t.Fatalf("last page: %d entries, HasNextPage %v", len(entries), info.HasNextPage)
	}
}

func testLock(t *testing.T, s fluxgate.Store) {
	l, ok := s.(Locker)
	if !ok {
		t.Skipf("%T has no Lock method", s)
	}
	ctx := context.Background()
	key := unique("lock")

	// Mutual exclusion among goroutines.
	var active, maxActive atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				unlock, err := l.Lock(ctx, key)
				if err != nil {
					errs <- err
					return
				}
				n := active.Add(1)
				for {
					m := maxActive.Load()
					if n <= m || maxActive.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond)
				active.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if maxActive.Load() != 1 {
		t.Fatalf("%d holders at once, want 1", maxActive.Load())
	}

	// A waiter gives up when its context ends; other keys are independent.
	unlock, err := l.Lock(ctx, key)
	must(t, err)
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	_, err = l.Lock(tctx, key)
	cancel()
	if err == nil {
		t.Fatal("second Lock of a held key succeeded")
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatalf("Lock gave up after %v, before its context ended", time.Since(start))
	}
	other, err := l.Lock(ctx, key+"-other")
	must(t, err)
	other()

	// Unlocking twice does not release someone else's hold.
	unlock()
	unlock2, err := l.Lock(ctx, key)
	must(t, err)
	unlock()
	tctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = l.Lock(tctx, key)
	cancel()
	if err == nil {
		t.Fatal("a second unlock released the next holder's lock")
	}
	unlock2()
	tctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	unlock3, err := l.Lock(tctx, key)
	must(t, err)
	unlock3()
}

// testDeploymentStatusSwap: UpdateDeploymentFrom writes only while the
// stored status is the expected one; of concurrent swaps from the same
// status exactly one wins.
func testDeploymentStatusSwap(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	prod := mustEnvironment(t, s, p.ID, "prod")
	d := mustDeployment(t, s, prod, "", fluxgate.DeploymentAwaitingApproval)

	d.Status, d.CommitSHA, d.Message = fluxgate.DeploymentPending, "sha-1", "approved"
	d.CommitAuthor = fluxgate.CommitAuthor{Name: "Ada Lovelace", Email: "ada@example.com"}
	must(t, s.UpdateDeploymentFrom(ctx, d, fluxgate.DeploymentAwaitingApproval))
	got, err := s.GetDeployment(ctx, d.ID)
	must(t, err)
	if got.Status != fluxgate.DeploymentPending || got.CommitSHA != "sha-1" || got.Message != "approved" || got.CommitAuthor != d.CommitAuthor {
		t.Fatalf("after swap: %+v", got)
	}
	// The status moved on: a second swap from awaiting approval fails and
	// writes nothing.
	d.Status, d.Message = fluxgate.DeploymentRejected, "late"
	wantCode(t, s.UpdateDeploymentFrom(ctx, d, fluxgate.DeploymentAwaitingApproval), fluxgate.ECONFLICT)
	got, err = s.GetDeployment(ctx, d.ID)
	must(t, err)
	if got.Status != fluxgate.DeploymentPending || got.Message != "approved" {
		t.Fatalf("a failed swap wrote: %+v", got)
	}
	wantCode(t, s.UpdateDeploymentFrom(ctx, &fluxgate.Deployment{ID: "ghost", Status: fluxgate.DeploymentFailed}, fluxgate.DeploymentPending), fluxgate.ENOTFOUND)

	// Concurrent swaps from the same status: exactly one wins.
	e := mustDeployment(t, s, prod, "", fluxgate.DeploymentAwaitingApproval)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *e
			c.Status, c.Message = fluxgate.DeploymentPending, fmt.Sprintf("winner %d", i)
			errs[i] = s.InTx(ctx, func(ctx context.Context) error {
				return s.UpdateDeploymentFrom(ctx, &c, fluxgate.DeploymentAwaitingApproval)
			})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch fluxgate.ErrorCode(err) {
		case "":
			won++
		case fluxgate.ECONFLICT:
		default:
			t.Fatalf("concurrent swap: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent swaps won, want exactly 1", won)
	}
}

// testDeploymentStatusSwapSerializes: a swap that keeps the status locks
// the row until the transaction ends, so transactions that each swap, add
// an approval and count the approvals see every count from 1 to n once —
// none misses another's committed approval (what approveDeployment relies
// on to commit exactly once).
func testDeploymentStatusSwapSerializes(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	prod := mustEnvironment(t, s, p.ID, "prod")
	d := mustDeployment(t, s, prod, "", fluxgate.DeploymentAwaitingApproval)
	const n = 6
	users := make([]*fluxgate.User, n)
	for i := range users {
		users[i] = mustUser(t, s, fmt.Sprintf("approver%d", i))
	}
	var wg sync.WaitGroup
	counts := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.InTx(ctx, func(ctx context.Context) error {
				c := *d
				if err := s.UpdateDeploymentFrom(ctx, &c, fluxgate.DeploymentAwaitingApproval); err != nil {
					return err
				}
				if err := s.CreateApproval(ctx, &fluxgate.Approval{DeploymentID: d.ID, UserID: users[i].ID, Decision: fluxgate.ApprovalApproved}); err != nil {
					return err
				}
				list, err := s.ListApprovals(ctx, d.ID)
				counts[i] = len(list)
				return err
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("approval counts seen = %v, want 1..%d once each", counts, n)
		}
	}
}
