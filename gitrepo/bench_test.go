package gitrepo

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkDeployToPush measures a UI deploy from the click to the pushed
// commit (fetch, read the environment's manifests, edit keeping comments,
// write trees, commit, push over the file transport) on a small repository
// and on one with 5,000 files. It reports p50 and p95 latencies.
//
//	go test -run XXX -bench DeployToPush -benchtime 50x ./gitrepo/
func BenchmarkDeployToPush(b *testing.B) {
	for _, size := range []int{0, 5000} {
		b.Run(fmt.Sprintf("files=%d", size+4), func(b *testing.B) {
			extra := map[string]string{}
			for i := 0; i < size; i++ {
				extra[fmt.Sprintf("apps/team-%02d/svc-%04d/config.yaml", i%50, i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: svc-%04d\ndata:\n  n: \"%d\"\n", i, i)
			}
			bare := newRemote(b, extra)
			w := newWorkspace(b, Options{})
			ctx := context.Background()
			r := Remote{URL: bare}
			if _, err := w.ReadFiles(ctx, r, "main", envDir); err != nil { // clone once
				b.Fatal(err)
			}
			durations := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				_, err := w.Commit(ctx, CommitRequest{Remote: r, Branch: "main", Dir: envDir, Author: testUser,
					Edit: DeployEdit(DeployRequest{Image: ptr(fmt.Sprintf("ghcr.io/acme/web:1.%d.0", i)), User: "bench"})})
				if err != nil {
					b.Fatal(err)
				}
				durations = append(durations, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
			pct := func(p float64) float64 {
				return float64(durations[int(p*float64(len(durations)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.95), "p95-ms")
		})
	}
}
