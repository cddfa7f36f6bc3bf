package fluxgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// ResourceSpec is the kind-specific configuration of a GitOpsResource, stored
// as JSON in GitOpsResource.Spec. Validate returns an EINVALID error naming
// the offending field (JSON path relative to the spec, e.g. "sourceRef.name").
type ResourceSpec interface {
	Validate() error
}

// DecodeResourceSpec parses raw as the spec type of kind, rejecting unknown
// fields, and validates it. Returns EINVALID for an unknown kind, malformed
// JSON or an invalid field.
func DecodeResourceSpec(kind ResourceKind, raw json.RawMessage) (ResourceSpec, error) {
	var spec ResourceSpec
	switch kind {
	case KindGitRepository:
		spec = &GitRepositorySpec{}
	case KindKustomization:
		spec = &KustomizationSpec{}
	case KindHelmRelease:
		spec = &HelmReleaseSpec{}
	case KindHelmRepository:
		spec = &HelmRepositorySpec{}
	case KindImageRepository:
		spec = &ImageRepositorySpec{}
	case KindImagePolicy:
		spec = &ImagePolicySpec{}
	default:
		return nil, InvalidField("kind", "unknown resource kind %q", kind)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(spec); err != nil {
		return nil, InvalidField("spec", "invalid %s spec: %s", kind, jsonErrorText(err))
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return spec, nil
}

// jsonErrorText describes a decoding error without echoing input values.
func jsonErrorText(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q must be %s", typeErr.Field, typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at offset %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

// GitRef selects what to check out of a Git repository. Commit may be
// combined with Branch; otherwise set at most one.
type GitRef struct {
	Branch string `json:"branch,omitempty"`
	Tag    string `json:"tag,omitempty"`
	SemVer string `json:"semver,omitempty"`
	Commit string `json:"commit,omitempty"`
}

// GitRepositorySpec configures a Flux GitRepository.
type GitRepositorySpec struct {
	// URL is an http(s):// or ssh:// URL (scp-like "git@host:path" is not
	// accepted by Flux).
	URL string `json:"url"`
	Ref GitRef `json:"ref"`
	// Interval between fetches, a Go duration ("1m"); default 1m.
	Interval string `json:"interval,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
	// SecretRef names the Secret with Git credentials in the same namespace.
	SecretRef string `json:"secretRef,omitempty"`
	// Ignore holds .gitignore-style patterns excluded from the artifact.
	Ignore string `json:"ignore,omitempty"`
}

// Validate checks the spec.
func (s *GitRepositorySpec) Validate() error {
	if err := validateGitURL("url", s.URL); err != nil {
		return err
	}
	if strings.HasPrefix(s.URL, "ssh://") && s.SecretRef == "" {
		return InvalidField("secretRef", "an ssh:// URL needs a secret with an SSH identity")
	}
	n := 0
	for _, v := range []string{s.Ref.Branch, s.Ref.Tag, s.Ref.SemVer} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return InvalidField("ref", "set only one of branch, tag and semver")
	}
	if s.Ref.Commit != "" && !commitRE.MatchString(s.Ref.Commit) {
		return InvalidField("ref.commit", "commit must be a hexadecimal SHA")
	}
	for field, v := range map[string]string{"ref.branch": s.Ref.Branch, "ref.tag": s.Ref.Tag, "ref.semver": s.Ref.SemVer} {
		if strings.ContainsAny(v, " \t\n~^:?*[\\") {
			return InvalidField(field, "%s is not a valid Git reference", field)
		}
	}
	if err := validateDuration("interval", s.Interval, false); err != nil {
		return err
	}
	if err := validateDuration("timeout", s.Timeout, false); err != nil {
		return err
	}
	return validateOptionalName("secretRef", s.SecretRef)
}

// SourceRef points a Kustomization at its source.
type SourceRef struct {
	Kind      string `json:"kind"` // GitRepository, OCIRepository or Bucket
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// DependsOn names a Flux object of the same kind that must be ready first.
type DependsOn struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// KustomizationSpec configures a Flux Kustomization.
type KustomizationSpec struct {
	SourceRef SourceRef `json:"sourceRef"`
	// Path in the source, relative ("./k8s/overlays/prod"); default the root.
	Path string `json:"path,omitempty"`
	// Prune deletes objects removed from the source, and every applied object
	// when the Kustomization itself is deleted.
	Prune           bool          `json:"prune"`
	HealthChecks    []HealthCheck `json:"healthChecks,omitempty"`
	DependsOn       []DependsOn   `json:"dependsOn,omitempty"`
	Interval        string        `json:"interval,omitempty"`
	Timeout         string        `json:"timeout,omitempty"`
	RetryInterval   string        `json:"retryInterval,omitempty"`
	TargetNamespace string        `json:"targetNamespace,omitempty"`
	Wait            bool          `json:"wait,omitempty"`
	Suspend         bool          `json:"suspend,omitempty"`
}

// Validate checks the spec.
func (s *KustomizationSpec) Validate() error {
	switch s.SourceRef.Kind {
	case "GitRepository", "OCIRepository", "Bucket":
	case "":
		return InvalidField("sourceRef.kind", "source kind is required")
	default:
		return InvalidField("sourceRef.kind", "source kind must be GitRepository, OCIRepository or Bucket")
	}
	if err := validateName("sourceRef.name", s.SourceRef.Name); err != nil {
		return err
	}
	if err := validateOptionalNamespace("sourceRef.namespace", s.SourceRef.Namespace); err != nil {
		return err
	}
	if s.Path != "" {
		if path.IsAbs(s.Path) || strings.Contains(s.Path, "\\") {
			return InvalidField("path", "path must be relative to the source root")
		}
		for _, part := range strings.Split(s.Path, "/") {
			if part == ".." {
				return InvalidField("path", "path must not leave the source root")
			}
		}
	}
	for i, hc := range s.HealthChecks {
		f := fmt.Sprintf("healthChecks[%d]", i)
		if hc.Kind == "" {
			return InvalidField(f+".kind", "health check kind is required")
		}
		if err := validateName(f+".name", hc.Name); err != nil {
			return err
		}
		if err := validateOptionalNamespace(f+".namespace", hc.Namespace); err != nil {
			return err
		}
	}
	for i, d := range s.DependsOn {
		f := fmt.Sprintf("dependsOn[%d]", i)
		if err := validateName(f+".name", d.Name); err != nil {
			return err
		}
		if err := validateOptionalNamespace(f+".namespace", d.Namespace); err != nil {
			return err
		}
	}
	for f, d := range map[string]string{"interval": s.Interval, "timeout": s.Timeout, "retryInterval": s.RetryInterval} {
		if err := validateDuration(f, d, false); err != nil {
			return err
		}
	}
	return validateOptionalNamespace("targetNamespace", s.TargetNamespace)
}

// ValuesReference takes Helm values from a ConfigMap or Secret key.
type ValuesReference struct {
	Kind       string `json:"kind"` // ConfigMap or Secret
	Name       string `json:"name"`
	ValuesKey  string `json:"valuesKey,omitempty"`
	TargetPath string `json:"targetPath,omitempty"`
	Optional   bool   `json:"optional,omitempty"`
}

// HelmInstall configures the first install of a release.
type HelmInstall struct {
	// RemediationRetries is how many times a failed install is retried
	// (uninstalling in between); a negative value retries forever.
	RemediationRetries int  `json:"remediationRetries,omitempty"`
	CreateNamespace    bool `json:"createNamespace,omitempty"`
}

// HelmUpgrade configures upgrades of a release.
type HelmUpgrade struct {
	// RemediationRetries is how many times a failed upgrade is retried
	// (rolling back in between); a negative value retries forever.
	RemediationRetries   int   `json:"remediationRetries,omitempty"`
	RemediateLastFailure *bool `json:"remediateLastFailure,omitempty"`
	CleanupOnFail        bool  `json:"cleanupOnFail,omitempty"`
}

// HelmReleaseSpec configures a Flux HelmRelease (helm.toolkit.fluxcd.io/v2).
type HelmReleaseSpec struct {
	Chart   string `json:"chart"`
	Version string `json:"version,omitempty"` // semver range, default "*"
	// SourceKind is HelmRepository, GitRepository or Bucket.
	SourceKind      string `json:"sourceKind"`
	SourceName      string `json:"sourceName"`
	SourceNamespace string `json:"sourceNamespace,omitempty"`
	// Values is a JSON object of chart values.
	Values          json.RawMessage   `json:"values,omitempty"`
	ValuesFrom      []ValuesReference `json:"valuesFrom,omitempty"`
	Install         *HelmInstall      `json:"install,omitempty"`
	Upgrade         *HelmUpgrade      `json:"upgrade,omitempty"`
	Interval        string            `json:"interval,omitempty"`
	Timeout         string            `json:"timeout,omitempty"`
	TargetNamespace string            `json:"targetNamespace,omitempty"`
	ReleaseName     string            `json:"releaseName,omitempty"`
	DependsOn       []DependsOn       `json:"dependsOn,omitempty"`
	Suspend         bool              `json:"suspend,omitempty"`
}

// Validate checks the spec.
func (s *HelmReleaseSpec) Validate() error {
	if strings.TrimSpace(s.Chart) == "" {
		return InvalidField("chart", "chart is required")
	}
	if len(s.Chart) > 2048 {
		return InvalidField("chart", "chart is too long")
	}
	switch s.SourceKind {
	case "HelmRepository", "GitRepository", "Bucket":
	case "":
		return InvalidField("sourceKind", "source kind is required")
	default:
		return InvalidField("sourceKind", "source kind must be HelmRepository, GitRepository or Bucket")
	}
	if err := validateName("sourceName", s.SourceName); err != nil {
		return err
	}
	if err := validateOptionalNamespace("sourceNamespace", s.SourceNamespace); err != nil {
		return err
	}
	if v := bytes.TrimSpace(s.Values); len(v) > 0 && !bytes.Equal(v, []byte("null")) {
		var m map[string]any
		if err := json.Unmarshal(v, &m); err != nil {
			return InvalidField("values", "values must be a JSON object")
		}
	}
	for i, vf := range s.ValuesFrom {
		f := fmt.Sprintf("valuesFrom[%d]", i)
		if vf.Kind != "ConfigMap" && vf.Kind != "Secret" {
			return InvalidField(f+".kind", "values source must be a ConfigMap or a Secret")
		}
		if err := validateName(f+".name", vf.Name); err != nil {
			return err
		}
		if vf.ValuesKey != "" && !configKeyRE.MatchString(vf.ValuesKey) {
			return InvalidField(f+".valuesKey", "invalid key")
		}
	}
	if s.Install != nil && s.Install.RemediationRetries < -1 {
		return InvalidField("install.remediationRetries", "retries must be -1 (forever) or more")
	}
	if s.Upgrade != nil && s.Upgrade.RemediationRetries < -1 {
		return InvalidField("upgrade.remediationRetries", "retries must be -1 (forever) or more")
	}
	for i, d := range s.DependsOn {
		if err := validateName(fmt.Sprintf("dependsOn[%d].name", i), d.Name); err != nil {
			return err
		}
	}
	for f, d := range map[string]string{"interval": s.Interval, "timeout": s.Timeout} {
		if err := validateDuration(f, d, false); err != nil {
			return err
		}
	}
	if err := validateOptionalNamespace("targetNamespace", s.TargetNamespace); err != nil {
		return err
	}
	if len(s.ReleaseName) > 53 {
		return InvalidField("releaseName", "release name must be at most 53 characters")
	}
	return validateOptionalName("releaseName", s.ReleaseName)
}

// HelmRepositorySpec configures a Flux HelmRepository (a chart source).
type HelmRepositorySpec struct {
	URL string `json:"url"` // http(s):// index, or oci:// with Type "oci"
	// Type is "default" (an index.yaml) or "oci".
	Type      string `json:"type,omitempty"`
	Interval  string `json:"interval,omitempty"`
	Timeout   string `json:"timeout,omitempty"`
	SecretRef string `json:"secretRef,omitempty"`
}

// Validate checks the spec.
func (s *HelmRepositorySpec) Validate() error {
	u, err := url.Parse(s.URL)
	if s.URL == "" || err != nil || u.Host == "" {
		return InvalidField("url", "url must be an http(s):// or oci:// URL")
	}
	switch s.Type {
	case "", "default":
		if u.Scheme != "http" && u.Scheme != "https" {
			return InvalidField("url", "a default HelmRepository needs an http(s):// URL (use type oci for oci://)")
		}
	case "oci":
		if u.Scheme != "oci" {
			return InvalidField("url", "an oci HelmRepository needs an oci:// URL")
		}
	default:
		return InvalidField("type", "type must be default or oci")
	}
	if u.User != nil {
		return InvalidField("url", "put credentials in a secret, not in the URL")
	}
	for f, d := range map[string]string{"interval": s.Interval, "timeout": s.Timeout} {
		if err := validateDuration(f, d, false); err != nil {
			return err
		}
	}
	return validateOptionalName("secretRef", s.SecretRef)
}

// ImageRepositorySpec configures a Flux ImageRepository (tag scanning).
type ImageRepositorySpec struct {
	Image         string   `json:"image"` // e.g. ghcr.io/org/app, no tag
	Interval      string   `json:"interval,omitempty"`
	Timeout       string   `json:"timeout,omitempty"`
	SecretRef     string   `json:"secretRef,omitempty"`
	ExclusionList []string `json:"exclusionList,omitempty"`
}

// Validate checks the spec.
func (s *ImageRepositorySpec) Validate() error {
	if s.Image == "" {
		return InvalidField("image", "image is required")
	}
	if strings.Contains(s.Image, "://") {
		return InvalidField("image", "image must not have a URL scheme")
	}
	if !imageRE.MatchString(s.Image) {
		return InvalidField("image", "image must be a repository name without tag or digest")
	}
	for i, p := range s.ExclusionList {
		if _, err := regexp.Compile(p); err != nil {
			return InvalidField(fmt.Sprintf("exclusionList[%d]", i), "not a valid regular expression")
		}
	}
	for f, d := range map[string]string{"interval": s.Interval, "timeout": s.Timeout} {
		if err := validateDuration(f, d, false); err != nil {
			return err
		}
	}
	return validateOptionalName("secretRef", s.SecretRef)
}

// Image policy kinds.
const (
	ImagePolicySemVer       = "semver"
	ImagePolicyAlphabetical = "alphabetical"
	ImagePolicyNumerical    = "numerical"
)

// TagFilter keeps only the tags matching Pattern; Extract (e.g. "$ts")
// selects the capture group the policy orders by.
type TagFilter struct {
	Pattern string `json:"pattern"`
	Extract string `json:"extract,omitempty"`
}

// ImagePolicySpec configures a Flux ImagePolicy over an ImageRepository.
type ImagePolicySpec struct {
	ImageRepository string `json:"imageRepository"`
	// Policy is semver (needs Range), alphabetical or numerical (Order asc|desc).
	Policy     string     `json:"policy"`
	Range      string     `json:"range,omitempty"`
	Order      string     `json:"order,omitempty"`
	FilterTags *TagFilter `json:"filterTags,omitempty"`
	Interval   string     `json:"interval,omitempty"`
}

// Validate checks the spec.
func (s *ImagePolicySpec) Validate() error {
	if err := validateName("imageRepository", s.ImageRepository); err != nil {
		return err
	}
	switch s.Policy {
	case ImagePolicySemVer:
		if strings.TrimSpace(s.Range) == "" {
			return InvalidField("range", "a semver policy needs a range, e.g. \">=1.0.0\"")
		}
		if !semverRangeRE.MatchString(s.Range) {
			return InvalidField("range", "not a semver range")
		}
		if s.Order != "" {
			return InvalidField("order", "order applies to alphabetical and numerical policies only")
		}
	case ImagePolicyAlphabetical, ImagePolicyNumerical:
		if s.Order != "" && s.Order != "asc" && s.Order != "desc" {
			return InvalidField("order", "order must be asc or desc")
		}
		if s.Range != "" {
			return InvalidField("range", "range applies to semver policies only")
		}
	case "":
		return InvalidField("policy", "policy is required")
	default:
		return InvalidField("policy", "policy must be semver, alphabetical or numerical")
	}
	if f := s.FilterTags; f != nil {
		if f.Pattern == "" {
			return InvalidField("filterTags.pattern", "pattern is required")
		}
		if _, err := regexp.Compile(f.Pattern); err != nil {
			return InvalidField("filterTags.pattern", "not a valid regular expression")
		}
		if f.Extract != "" && !strings.Contains(f.Extract, "$") {
			return InvalidField("filterTags.extract", "extract must reference a capture group, e.g. \"$ts\"")
		}
	}
	return validateDuration("interval", s.Interval, false)
}

var (
	dns1123LabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123SubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// Flux's CRD pattern for metav1.Duration fields.
	durationRE    = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`)
	commitRE      = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	configKeyRE   = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	imageRE       = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)
	semverRangeRE = regexp.MustCompile(`^[0-9xX*<>=~^|&!,.+\-\sA-Za-z]+$`)
)

func validateName(field, name string) error {
	if name == "" {
		return InvalidField(field, "%s is required", field)
	}
	return validateOptionalName(field, name)
}

func validateOptionalName(field, name string) error {
	if name == "" {
		return nil
	}
	if len(name) > 253 || !dns1123SubdomainRE.MatchString(name) {
		return InvalidField(field, "%s must be a lowercase DNS name (a-z, 0-9, '-', '.')", field)
	}
	return nil
}

func validateOptionalNamespace(field, ns string) error {
	if ns == "" {
		return nil
	}
	if len(ns) > 63 || !dns1123LabelRE.MatchString(ns) {
		return InvalidField(field, "%s must be a namespace name (a-z, 0-9, '-', at most 63 characters)", field)
	}
	return nil
}

func validateDuration(field, d string, required bool) error {
	if d == "" {
		if required {
			return InvalidField(field, "%s is required", field)
		}
		return nil
	}
	v, err := time.ParseDuration(d)
	if err != nil || !durationRE.MatchString(d) {
		return InvalidField(field, "%s must be a duration such as 30s, 5m or 1h", field)
	}
	if v <= 0 {
		return InvalidField(field, "%s must be positive", field)
	}
	return nil
}

func validateGitURL(field, raw string) error {
	if raw == "" {
		return InvalidField(field, "url is required")
	}
	if scpLikeRE.MatchString(raw) {
		return InvalidField(field, "scp-like Git URLs are not supported by Flux; write ssh://%s", scpToSSH(raw))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return InvalidField(field, "url must be an http://, https:// or ssh:// URL")
	}
	switch u.Scheme {
	case "http", "https":
		if _, hasPassword := u.User.Password(); hasPassword {
			return InvalidField(field, "put credentials in a secret, not in the URL")
		}
	case "ssh":
	default:
		return InvalidField(field, "url must be an http://, https:// or ssh:// URL")
	}
	return nil
}

var scpLikeRE = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]`)

// scpToSSH rewrites "git@host:org/repo" to "git@host/org/repo".
func scpToSSH(raw string) string {
	at := strings.Index(raw, "@")
	colon := strings.Index(raw[at:], ":") + at
	return raw[:colon] + "/" + raw[colon+1:]
}
