package k8s

import (
	"bytes"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// Labels fluxgate puts on every object it creates.
const (
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	ManagedByValue   = "fluxgate"
	LabelProject     = "fluxgate.dev/project"
	LabelEnvironment = "fluxgate.dev/environment"
	LabelResourceID  = "fluxgate.dev/resource-id"
	// LabelCredentialType is set on Git credential Secrets: basic-auth, token or ssh.
	LabelCredentialType = "fluxgate.dev/credential-type"

	// ManagedSelector selects every object fluxgate manages.
	ManagedSelector = LabelManagedBy + "=" + ManagedByValue
)

// defaultInterval is the reconcile interval used when a spec leaves it empty.
func defaultInterval(kind fluxgate.ResourceKind) time.Duration {
	switch kind {
	case fluxgate.KindGitRepository:
		return time.Minute
	case fluxgate.KindHelmRepository:
		return 10 * time.Minute
	case fluxgate.KindImagePolicy:
		return 0 // optional in the CRD
	}
	return 5 * time.Minute
}

// ObjectKey identifies a Flux object in the cluster.
type ObjectKey struct {
	Kind      fluxgate.ResourceKind `json:"kind"`
	Namespace string                `json:"namespace"`
	Name      string                `json:"name"`
}

func (k ObjectKey) String() string { return string(k.Kind) + "/" + k.Namespace + "/" + k.Name }

// KeyOf returns the cluster key of a GitOps resource.
func KeyOf(r *fluxgate.GitOpsResource) ObjectKey {
	return ObjectKey{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// ResourceLabels returns the labels that tie an object to r's project,
// environment and resource id.
func ResourceLabels(r *fluxgate.GitOpsResource) map[string]string {
	l := map[string]string{
		LabelManagedBy:  ManagedByValue,
		LabelProject:    r.ProjectID,
		LabelResourceID: r.ID,
	}
	if r.EnvironmentID != nil && *r.EnvironmentID != "" {
		l[LabelEnvironment] = *r.EnvironmentID
	}
	return l
}

// BuildObject returns the typed Flux object for r (kind, name, namespace,
// labels and spec from r.Spec, which must decode and validate as the kind's
// fluxgate.*Spec type). The object's spec.suspend is r.Suspended (or the
// spec's own Suspend flag).
//
// Returns EINVALID if r or its spec is invalid.
func BuildObject(r *fluxgate.GitOpsResource) (client.Object, error) {
	if err := validateMeta(r); err != nil {
		return nil, err
	}
	spec, err := fluxgate.DecodeResourceSpec(r.Kind, r.Spec)
	if err != nil {
		return nil, err
	}
	om := metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace, Labels: ResourceLabels(r)}
	interval := func(s string) (metav1.Duration, error) {
		if s == "" {
			return metav1.Duration{Duration: defaultInterval(r.Kind)}, nil
		}
		return parseDuration("interval", s)
	}
	var obj client.Object
	switch s := spec.(type) {
	case *fluxgate.GitRepositorySpec:
		iv, err := interval(s.Interval)
		if err != nil {
			return nil, err
		}
		o := &sourcev1.GitRepository{ObjectMeta: om, Spec: sourcev1.GitRepositorySpec{
			URL:      s.URL,
			Interval: iv,
			Suspend:  r.Suspended,
		}}
		if s.Ref != (fluxgate.GitRef{}) {
			o.Spec.Reference = &sourcev1.GitRepositoryRef{Branch: s.Ref.Branch, Tag: s.Ref.Tag, SemVer: s.Ref.SemVer, Commit: s.Ref.Commit}
		}
		if o.Spec.Timeout, err = optDuration("timeout", s.Timeout); err != nil {
			return nil, err
		}
		if s.SecretRef != "" {
			o.Spec.SecretRef = &meta.LocalObjectReference{Name: s.SecretRef}
		}
		if s.Ignore != "" {
			o.Spec.Ignore = &s.Ignore
		}
		obj = o
	case *fluxgate.KustomizationSpec:
		iv, err := interval(s.Interval)
		if err != nil {
			return nil, err
		}
		o := &kustomizev1.Kustomization{ObjectMeta: om, Spec: kustomizev1.KustomizationSpec{
			SourceRef: kustomizev1.CrossNamespaceSourceReference{
				Kind: s.SourceRef.Kind, Name: s.SourceRef.Name, Namespace: s.SourceRef.Namespace,
			},
			Path:            s.Path,
			Prune:           s.Prune,
			Interval:        iv,
			TargetNamespace: s.TargetNamespace,
			Wait:            s.Wait,
			Suspend:         r.Suspended || s.Suspend,
		}}
		for _, hc := range s.HealthChecks {
			o.Spec.HealthChecks = append(o.Spec.HealthChecks, meta.NamespacedObjectKindReference{
				APIVersion: hc.APIVersion, Kind: hc.Kind, Name: hc.Name, Namespace: hc.Namespace,
			})
		}
		for _, d := range s.DependsOn {
			o.Spec.DependsOn = append(o.Spec.DependsOn, meta.DependencyReference{Name: d.Name, Namespace: d.Namespace})
		}
		if o.Spec.Timeout, err = optDuration("timeout", s.Timeout); err != nil {
			return nil, err
		}
		if o.Spec.RetryInterval, err = optDuration("retryInterval", s.RetryInterval); err != nil {
			return nil, err
		}
		obj = o
	case *fluxgate.HelmReleaseSpec:
		iv, err := interval(s.Interval)
		if err != nil {
			return nil, err
		}
		o := &helmv2.HelmRelease{ObjectMeta: om, Spec: helmv2.HelmReleaseSpec{
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart:   s.Chart,
				Version: s.Version,
				SourceRef: helmv2.CrossNamespaceObjectReference{
					Kind: s.SourceKind, Name: s.SourceName, Namespace: s.SourceNamespace,
				},
			}},
			Interval:        iv,
			TargetNamespace: s.TargetNamespace,
			ReleaseName:     s.ReleaseName,
			Suspend:         r.Suspended || s.Suspend,
		}}
		if v := bytes.TrimSpace(s.Values); len(v) > 0 && string(v) != "null" {
			o.Spec.Values = &apiextensionsv1.JSON{Raw: append([]byte(nil), v...)}
		}
		for _, vf := range s.ValuesFrom {
			o.Spec.ValuesFrom = append(o.Spec.ValuesFrom, meta.ValuesReference{
				Kind: vf.Kind, Name: vf.Name, ValuesKey: vf.ValuesKey, TargetPath: vf.TargetPath, Optional: vf.Optional,
			})
		}
		if in := s.Install; in != nil {
			o.Spec.Install = &helmv2.Install{CreateNamespace: in.CreateNamespace}
			if in.RemediationRetries != 0 {
				o.Spec.Install.Remediation = &helmv2.InstallRemediation{Retries: in.RemediationRetries}
			}
		}
		if up := s.Upgrade; up != nil {
			o.Spec.Upgrade = &helmv2.Upgrade{CleanupOnFail: up.CleanupOnFail}
			if up.RemediationRetries != 0 || up.RemediateLastFailure != nil {
				o.Spec.Upgrade.Remediation = &helmv2.UpgradeRemediation{
					Retries: up.RemediationRetries, RemediateLastFailure: up.RemediateLastFailure,
				}
			}
		}
		for _, d := range s.DependsOn {
			o.Spec.DependsOn = append(o.Spec.DependsOn, helmv2.DependencyReference{Name: d.Name, Namespace: d.Namespace})
		}
		if o.Spec.Timeout, err = optDuration("timeout", s.Timeout); err != nil {
			return nil, err
		}
		obj = o
	case *fluxgate.HelmRepositorySpec:
		iv, err := interval(s.Interval)
		if err != nil {
			return nil, err
		}
		o := &sourcev1.HelmRepository{ObjectMeta: om, Spec: sourcev1.HelmRepositorySpec{
			URL: s.URL, Interval: iv, Suspend: r.Suspended,
		}}
		if s.Type == "oci" {
			o.Spec.Type = sourcev1.HelmRepositoryTypeOCI
		}
		if o.Spec.Timeout, err = optDuration("timeout", s.Timeout); err != nil {
			return nil, err
		}
		if s.SecretRef != "" {
			o.Spec.SecretRef = &meta.LocalObjectReference{Name: s.SecretRef}
		}
		obj = o
	case *fluxgate.ImageRepositorySpec:
		iv, err := interval(s.Interval)
		if err != nil {
			return nil, err
		}
		o := &imagev1.ImageRepository{ObjectMeta: om, Spec: imagev1.ImageRepositorySpec{
			Image: s.Image, Interval: iv, Suspend: r.Suspended, ExclusionList: s.ExclusionList,
		}}
		if o.Spec.Timeout, err = optDuration("timeout", s.Timeout); err != nil {
			return nil, err
		}
		if s.SecretRef != "" {
			o.Spec.SecretRef = &meta.LocalObjectReference{Name: s.SecretRef}
		}
		obj = o
	case *fluxgate.ImagePolicySpec:
		o := &imagev1.ImagePolicy{ObjectMeta: om, Spec: imagev1.ImagePolicySpec{
			ImageRepositoryRef: meta.NamespacedObjectReference{Name: s.ImageRepository},
			Suspend:            r.Suspended,
		}}
		switch s.Policy {
		case fluxgate.ImagePolicySemVer:
			o.Spec.Policy.SemVer = &imagev1.SemVerPolicy{Range: s.Range}
		case fluxgate.ImagePolicyAlphabetical:
			o.Spec.Policy.Alphabetical = &imagev1.AlphabeticalPolicy{Order: s.Order}
		case fluxgate.ImagePolicyNumerical:
			o.Spec.Policy.Numerical = &imagev1.NumericalPolicy{Order: s.Order}
		}
		if f := s.FilterTags; f != nil {
			o.Spec.FilterTags = &imagev1.TagFilter{Pattern: f.Pattern, Extract: f.Extract}
		}
		if o.Spec.Interval, err = optDuration("interval", s.Interval); err != nil {
			return nil, err
		}
		obj = o
	default:
		return nil, fluxgate.InvalidField("kind", "unknown resource kind %q", r.Kind)
	}
	gvk, err := GroupVersionKind(r.Kind)
	if err != nil {
		return nil, err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

func validateMeta(r *fluxgate.GitOpsResource) error {
	if r == nil {
		return fluxgate.InvalidField("resource", "resource is required")
	}
	if !r.Kind.Valid() {
		return fluxgate.InvalidField("kind", "unknown resource kind %q", r.Kind)
	}
	if msgs := validation.IsDNS1123Subdomain(r.Name); r.Name == "" || len(msgs) > 0 {
		return fluxgate.InvalidField("name", "name must be a lowercase DNS name (a-z, 0-9, '-', '.')")
	}
	if msgs := validation.IsDNS1123Label(r.Namespace); r.Namespace == "" || len(msgs) > 0 {
		return fluxgate.InvalidField("namespace", "namespace must be a lowercase DNS label")
	}
	for k, v := range ResourceLabels(r) {
		if v == "" && k != LabelEnvironment {
			return fluxgate.InvalidField(labelField(k), "%s is required", labelField(k))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			return fluxgate.InvalidField(labelField(k), "%s cannot be used as a Kubernetes label value", labelField(k))
		}
	}
	return nil
}

func labelField(label string) string {
	switch label {
	case LabelProject:
		return "projectId"
	case LabelEnvironment:
		return "environmentId"
	case LabelResourceID:
		return "id"
	}
	return label
}

func parseDuration(field, s string) (metav1.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return metav1.Duration{}, fluxgate.InvalidField(field, "%s must be a duration such as 30s, 5m or 1h", field)
	}
	return metav1.Duration{Duration: d}, nil
}

func optDuration(field, s string) (*metav1.Duration, error) {
	if s == "" {
		return nil, nil
	}
	d, err := parseDuration(field, s)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// specSuspend reports spec.suspend of a typed Flux object.
func specSuspend(obj client.Object) bool {
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		return o.Spec.Suspend
	case *sourcev1.HelmRepository:
		return o.Spec.Suspend
	case *kustomizev1.Kustomization:
		return o.Spec.Suspend
	case *helmv2.HelmRelease:
		return o.Spec.Suspend
	case *imagev1.ImageRepository:
		return o.Spec.Suspend
	case *imagev1.ImagePolicy:
		return o.Spec.Suspend
	}
	return false
}
