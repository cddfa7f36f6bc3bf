package yamledit

import (
	"strings"
	"testing"
)

func TestSplitImage(t *testing.T) {
	for _, tt := range []struct{ ref, name, tag, digest string }{
		{"nginx", "nginx", "", ""},
		{"nginx:1.27", "nginx", "1.27", ""},
		{"ghcr.io/acme/web:1.2.3", "ghcr.io/acme/web", "1.2.3", ""},
		{"localhost:5000/web", "localhost:5000/web", "", ""},
		{"localhost:5000/web:v2", "localhost:5000/web", "v2", ""},
		{"acme/web:1@sha256:abc", "acme/web", "1", "sha256:abc"},
		{"acme/web@sha256:abc", "acme/web", "", "sha256:abc"},
	} {
		n, tg, d := SplitImage(tt.ref)
		if n != tt.name || tg != tt.tag || d != tt.digest {
			t.Errorf("SplitImage(%q) = %q %q %q", tt.ref, n, tg, d)
		}
	}
}

func TestSetKustomizeImage(t *testing.T) {
	src := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base # shared\nimages:\n  # pinned by fluxgate\n  - name: ghcr.io/acme/web\n    newTag: \"1.4.2\"\n  - name: redis\n    newName: mirror.local/redis\n    newTag: \"7\"\n"
	tests := []struct {
		name, image, ref string
		want             string
		found            bool
	}{
		{"tag", "ghcr.io/acme/web", "ghcr.io/acme/web:1.5.0", "    newTag: \"1.5.0\"\n", true},
		{"digest", "ghcr.io/acme/web", "ghcr.io/acme/web@sha256:0123", "    digest: sha256:0123\n", true},
		{"new repository", "ghcr.io/acme/web", "mirror.local/web:2", "  - name: ghcr.io/acme/web\n    newTag: \"2\"\n    newName: mirror.local/web\n", true},
		{"back to the original name", "redis", "redis:7.2", "  - name: redis\n    newTag: \"7.2\"\n", true},
		{"no entry", "other", "other:1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, found, err := SetKustomizeImage([]byte(src), tt.image, tt.ref)
			if err != nil || found != tt.found {
				t.Fatalf("found = %v, err = %v", found, err)
			}
			if !found {
				if string(out) != src {
					t.Fatal("file changed without an entry")
				}
				return
			}
			if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "  - ../../base # shared\n") || !strings.Contains(string(out), "  # pinned by fluxgate\n") {
				t.Fatalf("output:\n%s\nwant it to contain %q", out, tt.want)
			}
			if issues := Validate(out); len(issues) > 0 {
				t.Fatal(issues)
			}
		})
	}
}
