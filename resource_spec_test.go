package fluxgate_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fluxgate/fluxgate"
)

func TestDecodeResourceSpec(t *testing.T) {
	valid := map[fluxgate.ResourceKind]string{
		fluxgate.KindGitRepository:   `{"url":"https://github.com/org/app.git","ref":{"branch":"main"},"interval":"1m","secretRef":"creds"}`,
		fluxgate.KindKustomization:   `{"sourceRef":{"kind":"GitRepository","name":"app"},"path":"./k8s/overlays/prod","prune":true,"healthChecks":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","namespace":"prod"}],"dependsOn":[{"name":"infra"}],"interval":"10m","timeout":"2m","retryInterval":"30s","targetNamespace":"prod","wait":true}`,
		fluxgate.KindHelmRelease:     `{"chart":"podinfo","version":"6.x","sourceKind":"HelmRepository","sourceName":"podinfo","values":{"replicaCount":2},"valuesFrom":[{"kind":"ConfigMap","name":"vals"}],"install":{"remediationRetries":3,"createNamespace":true},"upgrade":{"remediationRetries":-1,"remediateLastFailure":true,"cleanupOnFail":true}}`,
		fluxgate.KindHelmRepository:  `{"url":"https://stefanprodan.github.io/podinfo"}`,
		fluxgate.KindImageRepository: `{"image":"ghcr.io/org/app","interval":"5m"}`,
		fluxgate.KindImagePolicy:     `{"imageRepository":"app","policy":"semver","range":">=1.0.0 <2.0.0"}`,
	}
	for kind, raw := range valid {
		spec, err := fluxgate.DecodeResourceSpec(kind, json.RawMessage(raw))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		// Round trip: what is stored decodes to the same spec.
		b, _ := json.Marshal(spec)
		again, err := fluxgate.DecodeResourceSpec(kind, b)
		if err != nil {
			t.Fatalf("%s round trip: %v", kind, err)
		}
		b2, _ := json.Marshal(again)
		if string(b) != string(b2) {
			t.Fatalf("%s round trip changed: %s → %s", kind, b, b2)
		}
	}

	invalid := []struct {
		kind  fluxgate.ResourceKind
		raw   string
		field string
	}{
		{"Bucket", `{}`, "kind"},
		{fluxgate.KindGitRepository, `{"url":"https://x.io/a","token":"s3cret"}`, "spec"},
		{fluxgate.KindGitRepository, `{"url":42}`, "spec"},
		{fluxgate.KindGitRepository, `not json`, "spec"},
		{fluxgate.KindGitRepository, `{}`, "url"},
		{fluxgate.KindGitRepository, `{"url":"https://bot:s3cret@x.io/a"}`, "url"},
		{fluxgate.KindGitRepository, `{"url":"https://x.io/a","ref":{"commit":"not-a-sha"}}`, "ref.commit"},
		{fluxgate.KindGitRepository, `{"url":"https://x.io/a","timeout":"-1s"}`, "timeout"},
		{fluxgate.KindKustomization, `{"sourceRef":{"kind":"GitRepository","name":"a"},"targetNamespace":"` + strings.Repeat("n", 64) + `"}`, "targetNamespace"},
		{fluxgate.KindKustomization, `{"sourceRef":{"kind":"GitRepository","name":"a"},"path":"/abs"}`, "path"},
		{fluxgate.KindKustomization, `{"sourceRef":{"kind":"GitRepository","name":"a"},"dependsOn":[{"name":""}]}`, "dependsOn[0].name"},
		{fluxgate.KindHelmRelease, `{"sourceKind":"HelmRepository","sourceName":"r"}`, "chart"},
		{fluxgate.KindHelmRelease, `{"chart":"c","sourceKind":"HelmRepository","sourceName":"r","valuesFrom":[{"kind":"Pod","name":"x"}]}`, "valuesFrom[0].kind"},
		{fluxgate.KindHelmRelease, `{"chart":"c","sourceKind":"HelmRepository","sourceName":"r","releaseName":"` + strings.Repeat("r", 54) + `"}`, "releaseName"},
		{fluxgate.KindHelmRepository, `{"url":"oci://ghcr.io/charts"}`, "url"},
		{fluxgate.KindHelmRepository, `{"url":"https://x.io","type":"git"}`, "type"},
		{fluxgate.KindImageRepository, `{"image":"https://ghcr.io/org/app"}`, "image"},
		{fluxgate.KindImagePolicy, `{"imageRepository":"app","policy":"latest"}`, "policy"},
		{fluxgate.KindImagePolicy, `{"imageRepository":"app","policy":"semver","range":">=1","order":"asc"}`, "order"},
		{fluxgate.KindImagePolicy, `{"imageRepository":"app","policy":"numerical","filterTags":{"pattern":"^(?P<ts>[0-9]+)$","extract":"ts"}}`, "filterTags.extract"},
	}
	for _, tt := range invalid {
		_, err := fluxgate.DecodeResourceSpec(tt.kind, json.RawMessage(tt.raw))
		if fluxgate.ErrorCode(err) != fluxgate.EINVALID || fluxgate.ErrorField(err) != tt.field {
			t.Errorf("%s %s: err %v (field %q), want EINVALID on %q", tt.kind, tt.raw, err, fluxgate.ErrorField(err), tt.field)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error echoes a secret: %v", tt.kind, err)
		}
	}
}
