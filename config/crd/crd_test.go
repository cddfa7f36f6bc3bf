package crd

import (
	"os"
	"path/filepath"
	"testing"
)

func TestObjects(t *testing.T) {
	crds, err := Objects()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"gitrepositories.source.toolkit.fluxcd.io":   "v1",
		"helmrepositories.source.toolkit.fluxcd.io":  "v1",
		"kustomizations.kustomize.toolkit.fluxcd.io": "v1",
		"helmreleases.helm.toolkit.fluxcd.io":        "v2",
		"providers.notification.toolkit.fluxcd.io":   "v1beta3",
		"alerts.notification.toolkit.fluxcd.io":      "v1beta3",
		"imagerepositories.image.toolkit.fluxcd.io":  "v1",
		"imagepolicies.image.toolkit.fluxcd.io":      "v1",
		"receivers.notification.toolkit.fluxcd.io":   "v1",
		"ocirepositories.source.toolkit.fluxcd.io":   "v1",
		"helmcharts.source.toolkit.fluxcd.io":        "v1",
		"buckets.source.toolkit.fluxcd.io":           "v1",
		"externalartifacts.source.toolkit.fluxcd.io": "v1",
	}
	got := map[string]string{}
	for _, c := range crds {
		for _, v := range c.Spec.Versions {
			if v.Storage {
				got[c.Name] = v.Name
			}
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				t.Errorf("%s %s has no schema", c.Name, v.Name)
			}
		}
	}
	for name, version := range want {
		if got[name] != version {
			t.Errorf("crd %s storage version = %q, want %q", name, got[name], version)
		}
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "crds")
	if err := WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "kustomize.toolkit.fluxcd.io_kustomizations.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		t.Fatal("empty kustomization crd")
	}
}
