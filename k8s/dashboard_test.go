package k8s

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestGrafanaDashboard checks docs/grafana-dashboard.json: the four panels of
// SPEC §15, and every PromQL expression names only metrics this package
// registers.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	var titles []string
	for _, p := range dash.Panels {
		titles = append(titles, p.Title)
	}
	if want := []string{"Sync success rate", "p95 apply latency", "Error rate", "Ready resources"}; !slices.Equal(titles, want) {
		t.Fatalf("panels = %q, want %q", titles, want)
	}

	registered := registeredNames(t)
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// Label matchers, grouping labels and legend templates are not metrics.
	strip := regexp.MustCompile(`\{[^}]*\}|by \([^)]*\)|"[^"]*"|\[[^\]]*\]`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Fatalf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			found := 0
			for _, id := range ident.FindAllString(strip.ReplaceAllString(tg.Expr, " "), -1) {
				if !strings.HasPrefix(id, "flux") {
					continue // PromQL functions and keywords
				}
				base := id
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if strings.HasSuffix(id, suffix) && registered[strings.TrimSuffix(id, suffix)] {
						base = strings.TrimSuffix(id, suffix)
					}
				}
				if !registered[base] {
					t.Errorf("panel %q queries %s, which the k8s package does not register", p.Title, id)
				}
				used[base] = true
				found++
			}
			if found == 0 {
				t.Errorf("panel %q expression %q names no fluxgate metric", p.Title, tg.Expr)
			}
		}
	}
	for _, name := range []string{MetricGitRepositorySyncTotal, MetricKustomizationApplyDuration, MetricErrorsTotal, MetricResourcesReady} {
		if !used[name] {
			t.Errorf("dashboard does not use %s", name)
		}
	}
}

// registeredNames returns the metric names NewMetrics really registers:
// registering another collector under a registered name fails.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, name := range MetricNames() {
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
		if err := reg.Register(probe); err == nil {
			t.Fatalf("MetricNames lists %s but NewMetrics did not register it", name)
		}
		names[name] = true
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering the metrics twice on one registry must fail")
	}
	return names
}
