package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/store/storetest"
)

// BenchmarkGitopsResourcesList measures the gitopsResources query over a
// project of 1,000 resources from an in-process HTTP client: one request
// reads a page of 200 (the maximum); a full list is 5 pages. It reports
// requests/s and p50/p99 latency with 4 concurrent clients.
func BenchmarkGitopsResourcesList(b *testing.B) {
	db := storetest.MustOpenEnv(b) // PostgreSQL when DATABASE_URL is set
	s := startStack(b, db)
	ctx := context.Background()
	alice := s.token("alice", "Alice")
	pid := s.createProject(alice, "bench")
	err := db.InTx(ctx, func(ctx context.Context) error {
		for i := 0; i < 1000; i++ {
			r := &fluxgate.GitOpsResource{ProjectID: pid, Kind: fluxgate.KindKustomization, Name: fmt.Sprintf("app-%04d", i),
				Namespace: "fg-bench", Spec: json.RawMessage(`{"path":"./k8s","prune":true}`), Status: fluxgate.ResourceReady,
				Conditions: []fluxgate.Condition{{Type: "Ready", Status: "True", Reason: "ReconciliationSucceeded", Message: "Applied revision: main@sha1:abc"}}}
			if err := db.CreateResource(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	const query = `query($p: ID!, $after: String) { gitopsResources(projectId: $p, first: 200, after: $after) { edges { node { id kind name status lastAppliedRevision conditions { type status reason } } } pageInfo { hasNextPage endCursor } } }`
	body, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"p": pid}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	do := func() error {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var out struct {
			Data struct {
				GitopsResources struct{ Edges []json.RawMessage }
			}
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			return err
		}
		if len(out.Data.GitopsResources.Edges) != 200 {
			return fmt.Errorf("page of %d", len(out.Data.GitopsResources.Edges))
		}
		return nil
	}
	if err := do(); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				t0 := time.Now()
				if err := do(); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())*5/1000, "full-list-1000-p50-ms")
}
