package k8s

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"golang.org/x/crypto/ssh"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// playFlux acts as a Flux controller on the fake client until ctx is done:
// it marks every new reconcile request handled, with a Ready condition.
func playFlux(ctx context.Context, t *testing.T, kc client.Client, key types.NamespacedName) {
	for ctx.Err() == nil {
		var ks kustomizev1.Kustomization
		if err := kc.Get(ctx, key, &ks); err == nil {
			if tok := ks.Annotations[meta.ReconcileRequestAnnotation]; tok != "" && ks.Status.LastHandledReconcileAt != tok {
				ks.Status.LastHandledReconcileAt = tok
				ks.Status.Conditions = []metav1.Condition{cond("Ready", "True", "ReconciliationSucceeded", "Applied revision: main@sha1:abc")}
				ks.Status.LastAppliedRevision = "main@sha1:abc"
				if err := kc.Status().Update(ctx, &ks); err != nil {
					t.Logf("play flux: %v", err) // conflict: retried on the next loop
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReconcileSuspendResumeDelete(t *testing.T) {
	ctx := context.Background()
	kc := mustFakeClient(t)
	c := NewFromClient(kc, Options{PollInterval: 10 * time.Millisecond, Now: fixedClock(time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC), time.Second)})
	r := resource(t, fluxgate.KindKustomization, "web", fluxgate.KustomizationSpec{SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "web"}, Prune: true})
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatal(err)
	}
	key := KeyOf(r)
	nn := types.NamespacedName{Namespace: key.Namespace, Name: key.Name}

	// Nobody handles the request: bounded wait, Handled=false.
	res, err := c.Reconcile(ctx, key, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Handled || res.Token != "2026-11-27T05:00:00Z" {
		t.Fatalf("unhandled reconcile = %+v", res)
	}

	// Flux handles it.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go playFlux(fctx, t, kc, nn)
	res, err = c.Reconcile(ctx, key, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Handled || res.Status.Status != fluxgate.ResourceReady || res.Status.LastAppliedRevision != "main@sha1:abc" {
		t.Fatalf("handled reconcile = %+v", res)
	}
	var ks kustomizev1.Kustomization
	if err := kc.Get(ctx, nn, &ks); err != nil {
		t.Fatal(err)
	}
	if ks.Annotations[meta.ReconcileRequestAnnotation] != res.Token {
		t.Fatalf("annotation = %q, token %q", ks.Annotations[meta.ReconcileRequestAnnotation], res.Token)
	}

	// Suspend: spec.suspend, reconcile refused; resume: unsuspended plus a
	// reconcile request.
	if err := c.Suspend(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, u, err := c.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if u.Status != fluxgate.ResourceSuspended || !u.Suspended {
		t.Fatalf("after suspend: %+v", u)
	}
	_, err = c.Reconcile(ctx, key, 0)
	wantCode(t, err, fluxgate.ECONFLICT, "")
	if err := c.Resume(ctx, key); err != nil {
		t.Fatal(err)
	}
	obj, u, err := c.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if u.Suspended || obj.GetAnnotations()[meta.ReconcileRequestAnnotation] == res.Token {
		t.Fatalf("after resume: suspended=%t annotation=%q", u.Suspended, obj.GetAnnotations()[meta.ReconcileRequestAnnotation])
	}

	// Delete with prune=false: Flux is told to orphan before the delete.
	no := false
	var prunes []bool
	dc := NewFromClient(interceptPrune(kc, &prunes), Options{PollInterval: 10 * time.Millisecond})
	dr, err := dc.Delete(ctx, key, DeleteOptions{Prune: &no, Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !dr.Gone || len(prunes) != 1 || prunes[0] {
		t.Fatalf("delete = %+v, prune patches %v", dr, prunes)
	}
	if _, _, err := c.Get(ctx, key); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
		t.Fatalf("get after delete: %v", err)
	}
	// Deleting again is fine.
	if dr, err := c.Delete(ctx, key, DeleteOptions{}); err != nil || !dr.Gone {
		t.Fatalf("second delete = %+v, %v", dr, err)
	}
	_, err = c.Reconcile(ctx, key, 0)
	wantCode(t, err, fluxgate.ENOTFOUND, "")
}

// interceptPrune records the spec.prune merge patches sent through kc.
func interceptPrune(kc client.WithWatch, prunes *[]bool) client.Client {
	return &pruneRecorder{WithWatch: kc, prunes: prunes}
}

type pruneRecorder struct {
	client.WithWatch
	prunes *[]bool
}

func (p *pruneRecorder) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if data, err := patch.Data(obj); err == nil && strings.Contains(string(data), `"prune"`) {
		*p.prunes = append(*p.prunes, strings.Contains(string(data), `"prune":true`))
	}
	return p.WithWatch.Patch(ctx, obj, patch, opts...)
}

func TestDeleteWaitsForFinalizer(t *testing.T) {
	ctx := context.Background()
	ks := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "proj-demo", Finalizers: []string{kustomizev1.KustomizationFinalizer}}}
	kc := mustFakeClient(t, ks)
	c := NewFromClient(kc, Options{PollInterval: 10 * time.Millisecond})
	key := ObjectKey{Kind: fluxgate.KindKustomization, Namespace: "proj-demo", Name: "web"}
	dr, err := c.Delete(ctx, key, DeleteOptions{Wait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if dr.Gone || len(dr.Finalizers) != 1 || dr.Finalizers[0] != kustomizev1.KustomizationFinalizer {
		t.Fatalf("delete while Flux prunes = %+v", dr)
	}
	// Flux finishes pruning and drops its finalizer.
	var live kustomizev1.Kustomization
	if err := kc.Get(ctx, client.ObjectKeyFromObject(ks), &live); err != nil {
		t.Fatal(err)
	}
	live.Finalizers = nil
	if err := kc.Update(ctx, &live); err != nil {
		t.Fatal(err)
	}
	if dr, err := c.Delete(ctx, key, DeleteOptions{Wait: time.Second}); err != nil || !dr.Gone {
		t.Fatalf("delete after finalizer = %+v %v", dr, err)
	}
}

func newSSHKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

const knownHosts = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"

func TestGitCredentialSecrets(t *testing.T) {
	ctx := context.Background()
	kc := mustFakeClient(t)
	c := NewFromClient(kc, Options{})
	key := newSSHKey(t)
	tests := []struct {
		name     string
		creds    GitCredentials
		wantType string
		wantData map[string]string
	}{
		{"basic", GitCredentials{Basic: &BasicAuth{Username: "bot", Password: "s3cret-basic"}}, CredentialBasicAuth,
			map[string]string{"username": "bot", "password": "s3cret-basic"}},
		{"bearer token", GitCredentials{Token: &TokenAuth{Token: "s3cret-token"}}, CredentialToken,
			map[string]string{"bearerToken": "s3cret-token"}},
		{"token as password", GitCredentials{Token: &TokenAuth{Token: "s3cret-pat", Username: "git"}}, CredentialToken,
			map[string]string{"username": "git", "password": "s3cret-pat"}},
		{"ssh", GitCredentials{SSH: &SSHAuth{PrivateKey: key, KnownHosts: []byte(knownHosts)}}, CredentialSSH,
			map[string]string{"identity": string(key), "known_hosts": knownHosts}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := c.ApplyGitCredentials(ctx, "proj-demo", "creds-"+strings.ReplaceAll(tt.name, " ", "-"), tt.creds, map[string]string{LabelProject: "proj-1"})
			if err != nil {
				t.Fatal(err)
			}
			if info.Type != tt.wantType || info.SecretType != "Opaque" {
				t.Fatalf("info = %+v", info)
			}
			var s corev1.Secret
			if err := kc.Get(ctx, types.NamespacedName{Namespace: "proj-demo", Name: info.Name}, &s); err != nil {
				t.Fatal(err)
			}
			if s.Type != corev1.SecretTypeOpaque || s.Labels[LabelCredentialType] != tt.wantType || s.Labels[LabelProject] != "proj-1" {
				t.Fatalf("secret meta = %v %v", s.Type, s.Labels)
			}
			for k, v := range tt.wantData {
				if string(s.Data[k]) != v {
					t.Fatalf("secret %s = %q, want %q", k, s.Data[k], v)
				}
			}
			if tt.wantType == CredentialSSH && !strings.HasPrefix(string(s.Data["identity.pub"]), "ssh-ed25519 ") {
				t.Fatalf("identity.pub = %q", s.Data["identity.pub"])
			}
			got, err := c.GitCredentials(ctx, "proj-demo", info.Name)
			if err != nil || got.Type != tt.wantType {
				t.Fatalf("GitCredentials = %+v, %v", got, err)
			}
		})
	}
	t.Run("invalid never echoes secrets", func(t *testing.T) {
		bad := []struct {
			creds GitCredentials
			field string
		}{
			{GitCredentials{}, "credentials"},
			{GitCredentials{Basic: &BasicAuth{Username: "bot"}, Token: &TokenAuth{Token: "s3cret-x"}}, "credentials"},
			{GitCredentials{Basic: &BasicAuth{Password: "s3cret-y"}}, "basic.username"},
			{GitCredentials{SSH: &SSHAuth{PrivateKey: []byte("s3cret-not-a-key"), KnownHosts: []byte(knownHosts)}}, "ssh.privateKey"},
			{GitCredentials{SSH: &SSHAuth{PrivateKey: key}}, "ssh.knownHosts"},
			{GitCredentials{SSH: &SSHAuth{PrivateKey: key, KnownHosts: []byte("s3cret garbage")}}, "ssh.knownHosts"},
		}
		for _, b := range bad {
			_, err := c.ApplyGitCredentials(ctx, "proj-demo", "bad", b.creds, nil)
			wantCode(t, err, fluxgate.EINVALID, b.field)
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error leaks secret data: %v", err)
			}
		}
	})
	if err := c.DeleteGitCredentials(ctx, "proj-demo", "creds-basic"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GitCredentials(ctx, "proj-demo", "creds-basic"); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
}

func crd(name string, versions ...string) *apiextensionsv1.CustomResourceDefinition {
	c := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for i, v := range versions {
		c.Spec.Versions = append(c.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{Name: v, Served: true, Storage: i == len(versions)-1})
	}
	c.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
	return c
}

func deployment(t *testing.T, name string, ready bool) *appsv1.Deployment {
	var d appsv1.Deployment
	readFixture(t, "objects/deployment-rolled-out.json", &d)
	d.Name, d.Namespace = name, "flux-system"
	d.ResourceVersion = ""
	if !ready {
		d.Status.ReadyReplicas, d.Status.AvailableReplicas = 0, 0
	}
	return &d
}

func TestFluxHealth(t *testing.T) {
	ctx := context.Background()
	var objs []client.Object
	for _, c := range fluxCRDs() {
		objs = append(objs, crd(c.name, "v1beta2", "v1"))
	}
	objs = append(objs,
		deployment(t, "source-controller", true), deployment(t, "kustomize-controller", true),
		deployment(t, "helm-controller", false), // not ready
		// notification-controller missing
	)
	c := NewFromClient(mustFakeClient(t, objs...), Options{})
	h, err := c.FluxHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Installed || h.Ready {
		t.Fatalf("installed=%t ready=%t", h.Installed, h.Ready)
	}
	if h.CRDs[0].Name != "gitrepositories.source.toolkit.fluxcd.io" || strings.Join(h.CRDs[0].Versions, ",") != "v1beta2,v1" || h.CRDs[0].Storage != "v1" {
		t.Fatalf("crd = %+v", h.CRDs[0])
	}
	byName := map[string]ComponentHealth{}
	for _, ch := range h.Components {
		byName[ch.Name] = ch
	}
	if ch := byName["source-controller"]; !ch.Ready || !ch.Present || ch.ReadyReplicas != 2 || ch.Replicas != 2 {
		t.Fatalf("source-controller = %+v", ch)
	}
	if ch := byName["helm-controller"]; ch.Ready || !ch.Present || ch.Message != "0 of 2 replicas ready" {
		t.Fatalf("helm-controller = %+v", ch)
	}
	if ch := byName["notification-controller"]; ch.Present || ch.Ready || ch.Message != "not installed" {
		t.Fatalf("notification-controller = %+v", ch)
	}

	empty, err := NewFromClient(mustFakeClient(t), Options{}).FluxHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if empty.Installed || empty.Ready || empty.CRDs[0].Present {
		t.Fatalf("no flux: %+v", empty)
	}
}

func TestDiagnoseGitRepository(t *testing.T) {
	repo := func(url, secret string, conds ...metav1.Condition) *sourcev1.GitRepository {
		r := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "proj-demo", Generation: 1}}
		r.Spec.URL = url
		if secret != "" {
			r.Spec.SecretRef = &meta.LocalObjectReference{Name: secret}
		}
		r.Status.Conditions = conds
		return r
	}
	secret := func(name string, keys ...string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "proj-demo"}, Data: map[string][]byte{}}
		for _, k := range keys {
			s.Data[k] = []byte("s3cret-" + k)
		}
		return s
	}
	ready := cond("Ready", "True", "Succeeded", "stored artifact")
	tests := []struct {
		name      string
		objs      []client.Object
		wantCodes []string
		healthy   bool
	}{
		{"healthy https", []client.Object{repo("https://git.example.com/org/app.git", "", ready)}, nil, true},
		{"scp form", []client.Object{repo("git@github.com:org/app.git", "k", ready), secret("k", "identity", "known_hosts")}, []string{"url_scp_form"}, false},
		{"ssh without secret", []client.Object{repo("ssh://git@github.com/org/app.git", "", ready)}, []string{"ssh_without_secret"}, false},
		{"secret missing", []client.Object{repo("https://git.example.com/org/app.git", "gone", ready)}, []string{"secret_missing"}, false},
		{"ssh secret without known_hosts", []client.Object{repo("ssh://git@github.com/org/app.git", "k", ready), secret("k", "identity")}, []string{"secret_no_known_hosts"}, false},
		{"https with ssh secret", []client.Object{repo("https://git.example.com/org/app.git", "k", ready), secret("k", "identity", "known_hosts")}, []string{"secret_no_http_auth"}, false},
		{"auth failure", []client.Object{repo("https://git.example.com/org/app.git", "k",
			cond("Ready", "False", "GitOperationFailed", "failed to checkout and determine revision: unable to clone: authentication required")),
			secret("k", "username", "password")}, []string{"not_ready"}, false},
		{"never reconciled", []client.Object{repo("http://127.0.0.1:8080/app.git", "")}, []string{"url_plain_http", "not_reconciled"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFromClient(mustFakeClient(t, tt.objs...), Options{})
			d, err := c.DiagnoseGitRepository(context.Background(), "proj-demo", "app")
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, i := range d.Issues {
				codes = append(codes, i.Code)
				if i.Suggestion == "" {
					t.Fatalf("issue %s has no suggestion", i.Code)
				}
				if strings.Contains(i.Message+i.Suggestion, "s3cret") {
					t.Fatalf("diagnosis leaks secret data: %+v", i)
				}
			}
			if strings.Join(codes, ",") != strings.Join(tt.wantCodes, ",") || d.Healthy != tt.healthy {
				t.Fatalf("issues = %v healthy=%t, want %v healthy=%t (%+v)", codes, d.Healthy, tt.wantCodes, tt.healthy, d.Issues)
			}
		})
	}
	t.Run("suggestions", func(t *testing.T) {
		c := NewFromClient(mustFakeClient(t, repo("git@github.com:org/app.git", "")), Options{})
		d, err := c.DiagnoseGitRepository(context.Background(), "proj-demo", "app")
		if err != nil {
			t.Fatal(err)
		}
		if d.Issues[0].Suggestion != "write it as ssh://git@github.com/org/app.git" {
			t.Fatalf("suggestion = %q", d.Issues[0].Suggestion)
		}
		if !strings.Contains(suggestionFor("GitOperationFailed", "authentication required"), "credentials") {
			t.Fatal("auth failure suggestion")
		}
	})
	_, err := NewFromClient(mustFakeClient(t), Options{}).DiagnoseGitRepository(context.Background(), "proj-demo", "nope")
	wantCode(t, err, fluxgate.ENOTFOUND, "")
}

const fluxBundle = `---
apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: source-controller
  namespace: flux-system
spec:
  selector:
    matchLabels: {app: source-controller}
  template:
    metadata:
      labels: {app: source-controller}
    spec:
      containers:
      - name: manager
        image: ghcr.io/fluxcd/source-controller:v1.9.1
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: source-controller
    namespace: flux-system
`

func TestInstallFluxOnFakeClient(t *testing.T) {
	ctx := context.Background()
	kc := mustFakeClient(t)
	c := NewFromClient(kc, Options{})
	res, err := c.InstallFlux(ctx, []byte(fluxBundle), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range res.Applied {
		kinds = append(kinds, a.Kind)
	}
	if strings.Join(kinds, ",") != "Namespace,Deployment,ServiceAccount" {
		t.Fatalf("applied = %v", kinds)
	}
	var d appsv1.Deployment
	if err := kc.Get(ctx, types.NamespacedName{Namespace: "flux-system", Name: "source-controller"}, &d); err != nil {
		t.Fatal(err)
	}
	if res.Health == nil || res.Health.Ready || res.Health.Installed {
		t.Fatalf("health = %+v", res.Health)
	}
	for _, bad := range []string{"", "---\n", "kind: [", "apiVersion: v1\nkind: ConfigMap\n"} {
		_, err := c.InstallFlux(ctx, []byte(bad), InstallOptions{})
		wantCode(t, err, fluxgate.EINVALID, "manifests")
	}
}

func TestWorkloadHealthFromInventory(t *testing.T) {
	ctx := context.Background()
	var ks kustomizev1.Kustomization
	readFixture(t, "objects/kustomization-ready.json", &ks)
	inv := StatusOf(&ks).Inventory // default_webapp__Service, default_webapp_apps_Deployment
	var d appsv1.Deployment
	readFixture(t, "objects/deployment-rolled-out.json", &d)
	d.ResourceVersion = ""
	c := NewFromClient(mustFakeClient(t, &d), Options{})
	wh, err := c.WorkloadHealth(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	if !wh.Ready || wh.Replicas != 2 || wh.ReadyReplicas != 2 || len(wh.Deployments) != 1 || wh.Deployments[0].Name != "webapp" {
		t.Fatalf("workload = %+v", wh)
	}
	// Mid-rollout: one replica of two ready.
	d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1
	c = NewFromClient(mustFakeClient(t, &d), Options{})
	if wh, err = c.WorkloadHealth(ctx, inv); err != nil || wh.Ready || wh.ReadyReplicas != 1 || wh.Deployments[0].Message != "1 of 2 replicas ready" {
		t.Fatalf("mid-rollout = %+v, %v", wh, err)
	}
	// Not applied yet.
	c = NewFromClient(mustFakeClient(t), Options{})
	if wh, err = c.WorkloadHealth(ctx, inv); err != nil || wh.Ready || wh.Deployments[0].Found {
		t.Fatalf("missing = %+v, %v", wh, err)
	}
}
