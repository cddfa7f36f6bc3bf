// Package templates holds fluxgate's project templates (SPEC §12): what
// each takes, how its parameters are validated, and the manifests it
// scaffolds under k8s/ in a repository.
//
// Manifests are built from the Kubernetes API Go types (and kustomize's
// types for kustomization.yaml) and marshalled; no YAML is ever assembled
// from strings, so a parameter value can only ever become a scalar value.
package templates

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/fluxgate/fluxgate"
)

// Template ids.
const (
	WebAppBasic      = "web-app-basic"
	MicroserviceHelm = "microservice-helm"
	CronJob          = "cron-job"
)

// Param describes one parameter a template takes.
type Param struct {
	Name        string
	Description string
	Required    bool
	// Default is used when the parameter is not given ("" when none).
	Default string
}

// Template is a predefined project layout.
type Template struct {
	ID          string
	Name        string
	Description string
	Params      []Param
}

// Delivery says which Flux objects apply a template.
type Delivery string

const (
	// DeliveryKustomize: a GitRepository and a Kustomization per environment
	// over k8s/overlays/<env>.
	DeliveryKustomize Delivery = "kustomize"
	// DeliveryHelm: a HelmRelease per environment (and its chart source).
	DeliveryHelm Delivery = "helm"
)

var (
	pName = Param{Name: "name", Required: true,
		Description: "Name of the workload: a DNS-1123 label (lowercase letters, digits and '-'). Objects are named <name>-<environment>."}
	pImage = Param{Name: "image", Required: true,
		Description: "Container image reference, e.g. ghcr.io/acme/web:1.0.0."}
)

var all = []Template{
	{
		ID:   WebAppBasic,
		Name: "Web application (Deployment + Service)",
		Description: "A Deployment with readiness and liveness probes and a Service, as a kustomize base under k8s/base/ " +
			"and an overlay per environment under k8s/overlays/<env>/ (image and replicas per environment). " +
			"Flux applies each overlay with a Kustomization that health-checks the Deployment.",
		Params: []Param{
			pName, pImage,
			{Name: "port", Default: "8080", Description: "Port the container listens on (1-65535)."},
			{Name: "servicePort", Default: "80", Description: "Port the Service exposes (1-65535)."},
			{Name: "replicas", Default: "1", Description: "Number of pods (0-100)."},
			{Name: "healthPath", Default: "/healthz", Description: "HTTP path of the readiness and liveness probes."},
		},
	},
	{
		ID:   MicroserviceHelm,
		Name: "Microservice (Helm chart)",
		Description: "A HelmRelease per environment with values. The chart comes from a Helm repository " +
			"(give repositoryUrl and chart) or from a path in the project's Git repository (give chartPath). " +
			"Nothing is written to Git: the values live in the HelmRelease.",
		Params: []Param{
			pName,
			{Name: "chart", Description: "Chart name in the Helm repository (required with repositoryUrl)."},
			{Name: "version", Default: "*", Description: "Chart version or semver range (Helm repository charts)."},
			{Name: "repositoryUrl", Description: "URL of the Helm repository (https:// index, or oci://). Exclusive with chartPath."},
			{Name: "chartPath", Description: "Path of the chart in the project's Git repository, e.g. charts/api. Exclusive with repositoryUrl."},
			{Name: "image", Description: "Container image reference; sets the values image.repository and image.tag."},
			{Name: "replicas", Default: "1", Description: "Number of pods (0-100); sets the value replicaCount."},
			{Name: "values", Description: "More chart values as a JSON object, merged over the ones above."},
		},
	},
	{
		ID:   CronJob,
		Name: "Scheduled job (CronJob)",
		Description: "A CronJob as a kustomize base under k8s/base/ and an overlay per environment under " +
			"k8s/overlays/<env>/ (image and schedule per environment), applied by a Kustomization per environment.",
		Params: []Param{
			pName, pImage,
			{Name: "schedule", Required: true, Description: "Cron schedule in the standard five-field syntax (minute hour day-of-month month day-of-week) or a macro such as @daily."},
			{Name: "concurrencyPolicy", Default: "Forbid", Description: "What to do when a run is still going: Allow, Forbid or Replace."},
		},
	},
}

// List returns every template.
func List() []Template {
	out := make([]Template, len(all))
	for i, t := range all {
		out[i] = t
		out[i].Params = slices.Clone(t.Params)
	}
	return out
}

// Get returns the template with id.
func Get(id string) (Template, bool) {
	for _, t := range List() {
		if t.ID == id {
			return t, true
		}
	}
	return Template{}, false
}

// Value is one parameter as given.
type Value struct {
	Name  string
	Value string
}

// Instance is a template with validated parameters (defaults applied).
type Instance struct {
	Template Template
	values   map[string]string

	name, image, healthPath, schedule, concurrency string
	port, servicePort, replicas                    int32
	helm                                           *HelmChart
}

// HelmChart is where a microservice-helm release gets its chart, and its
// values.
type HelmChart struct {
	// Chart is the chart name (Helm repository) or the chart's path in the
	// Git repository ("./charts/api").
	Chart string
	// Version is the chart version range (Helm repository only).
	Version string
	// RepositoryURL is set when the chart comes from a Helm repository.
	RepositoryURL string
	// RepositoryType is "default" or "oci".
	RepositoryType string
	// Path is the chart's directory in Git ("charts/api"), when the chart
	// comes from the Git repository.
	Path string
	// Values is the release's values as a JSON object.
	Values json.RawMessage
}

// field names a parameter in errors.
func field(name string) string { return "params." + name }

// New validates params for the template id. Errors are EINVALID and name
// the parameter (field "params.<name>"), or "templateId".
func New(id string, params []Value) (*Instance, error) {
	t, ok := Get(id)
	if !ok {
		return nil, fluxgate.InvalidField("templateId", "unknown template %q: use one of %s", id, strings.Join(ids(), ", "))
	}
	v := map[string]string{}
	for _, p := range params {
		if !slices.ContainsFunc(t.Params, func(q Param) bool { return q.Name == p.Name }) {
			return nil, fluxgate.InvalidField(field(p.Name), "template %s has no parameter %q", id, p.Name)
		}
		if _, dup := v[p.Name]; dup {
			return nil, fluxgate.InvalidField(field(p.Name), "parameter %q is given twice", p.Name)
		}
		if len(p.Value) > 8192 {
			return nil, fluxgate.InvalidField(field(p.Name), "parameter %q is longer than 8192 bytes", p.Name)
		}
		v[p.Name] = p.Value
	}
	for _, q := range t.Params {
		if v[q.Name] == "" {
			if q.Required {
				return nil, fluxgate.InvalidField(field(q.Name), "parameter %q is required", q.Name)
			}
			v[q.Name] = q.Default
		}
	}
	in := &Instance{Template: t, values: v}
	return in, in.validate()
}

func ids() []string {
	var out []string
	for _, t := range all {
		out = append(out, t.ID)
	}
	return out
}

// maxNameLen leaves room for "-<environment>" in a 63-character name.
const maxNameLen = 40

func (in *Instance) validate() error {
	v := in.values
	in.name = v["name"]
	if errs := validation.IsDNS1123Label(in.name); len(errs) > 0 {
		return fluxgate.InvalidField(field("name"), "name %q is not a DNS-1123 label: %s", in.name, errs[0])
	}
	if len(in.name) > maxNameLen {
		return fluxgate.InvalidField(field("name"), "name must be at most %d characters (objects are named <name>-<environment>)", maxNameLen)
	}
	var err error
	switch in.Template.ID {
	case WebAppBasic:
		if err = validateImage("image", v["image"]); err != nil {
			return err
		}
		in.image = v["image"]
		if in.port, err = intParam("port", v["port"], 1, 65535); err != nil {
			return err
		}
		if in.servicePort, err = intParam("servicePort", v["servicePort"], 1, 65535); err != nil {
			return err
		}
		if in.replicas, err = intParam("replicas", v["replicas"], 0, 100); err != nil {
			return err
		}
		in.healthPath = v["healthPath"]
		if u, err := url.Parse(in.healthPath); err != nil || !strings.HasPrefix(in.healthPath, "/") || u.Host != "" || u.Scheme != "" ||
			strings.ContainsAny(in.healthPath, " \t\r\n") || len(in.healthPath) > 1024 {
			return fluxgate.InvalidField(field("healthPath"), "healthPath must be an HTTP path starting with /, e.g. /healthz")
		}
	case CronJob:
		if err = validateImage("image", v["image"]); err != nil {
			return err
		}
		in.image = v["image"]
		in.schedule = v["schedule"]
		if err := validateSchedule(in.schedule); err != nil {
			return err
		}
		in.concurrency = v["concurrencyPolicy"]
		if !slices.Contains([]string{"Allow", "Forbid", "Replace"}, in.concurrency) {
			return fluxgate.InvalidField(field("concurrencyPolicy"), "concurrencyPolicy must be Allow, Forbid or Replace")
		}
	case MicroserviceHelm:
		return in.validateHelm()
	}
	return nil
}

func (in *Instance) validateHelm() error {
	v := in.values
	h := &HelmChart{Version: v["version"]}
	repoURL, chartPath := v["repositoryUrl"], v["chartPath"]
	switch {
	case repoURL != "" && chartPath != "":
		return fluxgate.InvalidField(field("chartPath"), "give either repositoryUrl (a Helm repository) or chartPath (a chart in Git), not both")
	case repoURL == "" && chartPath == "":
		return fluxgate.InvalidField(field("repositoryUrl"), "give repositoryUrl (a Helm repository) or chartPath (a chart in Git)")
	case repoURL != "":
		u, err := url.Parse(repoURL)
		if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "oci") {
			return fluxgate.InvalidField(field("repositoryUrl"), "repositoryUrl must be an https:// (or oci://) URL without credentials")
		}
		h.RepositoryURL, h.RepositoryType = repoURL, "default"
		if u.Scheme == "oci" {
			h.RepositoryType = "oci"
		}
		h.Chart = v["chart"]
		if h.Chart == "" {
			return fluxgate.InvalidField(field("chart"), "chart is required with repositoryUrl")
		}
		if errs := validation.IsDNS1123Subdomain(h.Chart); len(errs) > 0 {
			return fluxgate.InvalidField(field("chart"), "chart %q is not a chart name: %s", h.Chart, errs[0])
		}
		if strings.TrimSpace(h.Version) == "" || strings.ContainsAny(h.Version, "\n\r\t\"'`$") || len(h.Version) > 128 {
			return fluxgate.InvalidField(field("version"), "version must be a chart version or semver range such as 1.2.3 or 1.x")
		}
	default:
		p := strings.TrimPrefix(chartPath, "./")
		if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00\n\r") || len(p) > 512 ||
			slices.Contains(strings.Split(p, "/"), "..") || path.Clean(p) != p {
			return fluxgate.InvalidField(field("chartPath"), "chartPath must be a clean relative path inside the repository, e.g. charts/api")
		}
		if v["chart"] != "" {
			return fluxgate.InvalidField(field("chart"), "chart applies to Helm repository charts; a chart in Git is named by chartPath")
		}
		h.Path, h.Chart, h.Version = p, "./"+p, ""
	}
	values := map[string]any{}
	if img := v["image"]; img != "" {
		if err := validateImage("image", img); err != nil {
			return err
		}
		ref, _ := reference.ParseNormalizedNamed(img)
		image := map[string]any{"repository": ref.Name()}
		if t, ok := ref.(reference.Tagged); ok {
			image["tag"] = t.Tag()
		}
		values["image"] = image
	}
	n, err := intParam("replicas", v["replicas"], 0, 100)
	if err != nil {
		return err
	}
	values["replicaCount"] = n
	if raw := strings.TrimSpace(v["values"]); raw != "" {
		var extra map[string]any
		if err := json.Unmarshal([]byte(raw), &extra); err != nil || extra == nil {
			return fluxgate.InvalidField(field("values"), "values must be a JSON object")
		}
		mergeValues(values, extra)
	}
	b, err := json.Marshal(values)
	if err != nil {
		return fluxgate.InvalidField(field("values"), "values cannot be encoded: %v", err)
	}
	h.Values = b
	in.helm = h
	return nil
}

// mergeValues merges src over dst, map by map.
func mergeValues(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = sv
	}
}

func validateImage(name, img string) error {
	if len(img) > 512 {
		return fluxgate.InvalidField(field(name), "image reference is too long")
	}
	if _, err := reference.ParseNormalizedNamed(img); err != nil || strings.TrimSpace(img) != img {
		msg := "not a valid image reference"
		if err != nil {
			msg = err.Error()
		}
		return fluxgate.InvalidField(field(name), "image %q is not an image reference such as ghcr.io/acme/web:1.0.0: %s", img, msg)
	}
	return nil
}

func intParam(name, s string, lo, hi int) (int32, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < lo || n > hi {
		return 0, fluxgate.InvalidField(field(name), "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return int32(n), nil
}

func validateSchedule(s string) error {
	if strings.Contains(s, "TZ=") || strings.Contains(s, "CRON_TZ=") {
		return fluxgate.InvalidField(field("schedule"), "schedule must not set a time zone (TZ=…)")
	}
	if len(s) > 256 || strings.ContainsAny(s, "\n\r") {
		return fluxgate.InvalidField(field("schedule"), "schedule is not a cron schedule")
	}
	if _, err := cron.ParseStandard(s); err != nil {
		return fluxgate.InvalidField(field("schedule"), "schedule %q is not a cron schedule (minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\", or @daily): %v", s, err)
	}
	return nil
}

// Name is the workload name (the "name" parameter).
func (in *Instance) Name() string { return in.name }

// Delivery says which Flux objects apply the instance.
func (in *Instance) Delivery() Delivery {
	if in.Template.ID == MicroserviceHelm {
		return DeliveryHelm
	}
	return DeliveryKustomize
}

// Helm returns the chart and values of a microservice-helm instance (nil
// for the others).
func (in *Instance) Helm() *HelmChart { return in.helm }

// ObjectName is the name of the instance's objects in an environment:
// "<name>-<env>" (Flux objects, and the workload after the overlay's
// nameSuffix).
func (in *Instance) ObjectName(env string) string { return in.name + "-" + env }

// OverlayPath is where an environment's overlay lives in the repository.
func OverlayPath(env string) string { return "k8s/overlays/" + env }

// HealthCheck returns the workload Flux should wait for in an environment
// (the Deployment of web-app-basic), or nil.
func (in *Instance) HealthCheck(env, namespace string) *fluxgate.HealthCheck {
	if in.Template.ID != WebAppBasic {
		return nil
	}
	return &fluxgate.HealthCheck{APIVersion: "apps/v1", Kind: "Deployment", Name: in.ObjectName(env), Namespace: namespace}
}

// validEnv checks an environment name used as an overlay directory.
func validEnv(env string) error {
	if errs := validation.IsDNS1123Label(env); len(errs) > 0 {
		return fmt.Errorf("environment %q is not a DNS-1123 label", env)
	}
	return nil
}
