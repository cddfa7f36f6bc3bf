package yamledit

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// DeploymentEdit is a set of changes to one Deployment. Nil / empty fields
// are left alone.
type DeploymentEdit struct {
	// Name of the Deployment; empty selects the only Deployment.
	Name       string
	Replicas   *int32
	Containers []ContainerEdit
}

// ContainerEdit changes one container of the pod template.
type ContainerEdit struct {
	// Name of the container; empty selects the first container.
	Name            string
	Image           *string
	ImagePullPolicy *string
	// Env is merged by name: existing variables get the new value, others
	// are appended.
	Env []EnvVar
	// RemoveEnv lists variables to delete.
	RemoveEnv     []string
	Resources     *ResourcesEdit
	LivenessProbe *ProbeEdit
}

// EnvVar is a literal environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ResourcesEdit sets resource quantities by resource name ("cpu",
// "memory", …); an empty quantity removes the entry.
type ResourcesEdit struct {
	Requests map[string]string
	Limits   map[string]string
}

// ProbeEdit sets an HTTP liveness probe. Remove deletes the probe.
type ProbeEdit struct {
	Remove              bool
	Path                *string
	Port                *string // number or named port
	InitialDelaySeconds *int32
}

// Empty reports whether the edit changes nothing.
func (e DeploymentEdit) Empty() bool {
	if e.Replicas != nil {
		return false
	}
	for _, c := range e.Containers {
		if c.Image != nil || c.ImagePullPolicy != nil || len(c.Env) > 0 || len(c.RemoveEnv) > 0 || c.Resources != nil || c.LivenessProbe != nil {
			return false
		}
	}
	return true
}

var imageRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]*$`)

// Validate checks the edit's values; it returns an *InvalidInputError.
func (e DeploymentEdit) Validate() error {
	if e.Empty() {
		return &InvalidInputError{Field: "change", Reason: "nothing to change"}
	}
	if e.Replicas != nil && (*e.Replicas < 0 || *e.Replicas > 10000) {
		return invalid("replicas", "must be between 0 and 10000, got %d", *e.Replicas)
	}
	for i, c := range e.Containers {
		f := fmt.Sprintf("containers[%d]", i)
		if c.Image != nil && (len(*c.Image) > 512 || !imageRe.MatchString(*c.Image)) {
			return invalid(f+".image", "%q is not a valid image reference", *c.Image)
		}
		if c.ImagePullPolicy != nil {
			switch *c.ImagePullPolicy {
			case "Always", "IfNotPresent", "Never":
			default:
				return invalid(f+".imagePullPolicy", "must be Always, IfNotPresent or Never")
			}
		}
		for j, ev := range c.Env {
			if errs := validation.IsEnvVarName(ev.Name); len(errs) > 0 {
				return invalid(fmt.Sprintf("%s.env[%d].name", f, j), "%q: %s", ev.Name, strings.Join(errs, "; "))
			}
			if !utf8.ValidString(ev.Value) || len(ev.Value) > 1<<20 {
				return invalid(fmt.Sprintf("%s.env[%d].value", f, j), "must be valid UTF-8 text up to 1 MiB")
			}
		}
		for j, n := range c.RemoveEnv {
			if errs := validation.IsEnvVarName(n); len(errs) > 0 {
				return invalid(fmt.Sprintf("%s.removeEnv[%d]", f, j), "%q: %s", n, strings.Join(errs, "; "))
			}
		}
		if r := c.Resources; r != nil {
			for kind, m := range map[string]map[string]string{"requests": r.Requests, "limits": r.Limits} {
				for name, q := range m {
					if errs := validation.IsQualifiedName(name); len(errs) > 0 {
						return invalid(f+".resources."+kind, "resource name %q: %s", name, strings.Join(errs, "; "))
					}
					if q == "" {
						continue
					}
					if _, err := resource.ParseQuantity(q); err != nil {
						return invalid(f+".resources."+kind+"."+name, "%q is not a quantity", q)
					}
				}
			}
		}
		if p := c.LivenessProbe; p != nil && !p.Remove {
			if p.Path != nil && (!strings.HasPrefix(*p.Path, "/") || !utf8.ValidString(*p.Path) || strings.ContainsAny(*p.Path, " \t\r\n")) {
				return invalid(f+".livenessProbe.path", "must be a URL path starting with /")
			}
			if p.Port != nil {
				if n, err := strconv.Atoi(*p.Port); err == nil {
					if n < 1 || n > 65535 {
						return invalid(f+".livenessProbe.port", "must be 1-65535")
					}
				} else if errs := validation.IsValidPortName(*p.Port); len(errs) > 0 {
					return invalid(f+".livenessProbe.port", "%q: %s", *p.Port, strings.Join(errs, "; "))
				}
			}
			if p.InitialDelaySeconds != nil && *p.InitialDelaySeconds < 0 {
				return invalid(f+".livenessProbe.initialDelaySeconds", "must not be negative")
			}
		}
	}
	return nil
}

// FindDeployment returns the index of the document holding the named
// Deployment (or the only one when name is empty). It returns an error
// wrapping ErrNotFound when there is none, and an *InvalidInputError when
// name is empty and there are several.
func (f *File) FindDeployment(name string) (int, error) {
	found := -1
	for i := range f.Docs {
		r := f.Root(i)
		if r == nil || r.Kind != yaml.MappingNode || scalarValue(r, "kind") != "Deployment" {
			continue
		}
		n := scalarValue(r, "metadata", "name")
		if name != "" && n != name {
			continue
		}
		if found >= 0 {
			return -1, invalid("name", "several Deployments found; say which one")
		}
		found = i
	}
	if found < 0 {
		if name == "" {
			return -1, fmt.Errorf("deployment: %w", ErrNotFound)
		}
		return -1, fmt.Errorf("deployment %q: %w", name, ErrNotFound)
	}
	return found, nil
}

// EditDeployment applies edit to the Deployment in src and returns the new
// file content; unrelated bytes are unchanged. Errors: *InvalidInputError,
// ErrNotFound (wrapped), parse errors (*SyntaxError, *LimitError).
func EditDeployment(src []byte, edit DeploymentEdit) ([]byte, error) {
	if err := edit.Validate(); err != nil {
		return nil, err
	}
	src, crlf := toLF(src)
	f, err := Parse(src)
	if err != nil {
		return nil, err
	}
	i, err := f.FindDeployment(edit.Name)
	if err != nil {
		return nil, err
	}
	docs := f.CopyDocs()
	if err := applyDeploymentEdit(yaml.NewRNode(rootOf(docs[i])), edit); err != nil {
		return nil, err
	}
	out, err := f.Render(docs)
	if err != nil {
		return nil, err
	}
	return fromLF(out, crlf), nil
}

func intNode(v int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagInt, Value: strconv.FormatInt(v, 10)}
}

func strNode(v string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: v}
	return n
}

// quantityNode keeps numbers plain (cpu: 2) and other quantities strings.
func quantityNode(v string) *yaml.Node {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return intNode(mustAtoi(v))
	}
	return strNode(v)
}

func mustAtoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// portNode returns an int node for numeric ports, a string otherwise.
func portNode(v string) *yaml.Node {
	if n, err := strconv.Atoi(v); err == nil {
		return intNode(int64(n))
	}
	return strNode(v)
}

// setField sets key in mapping rn to v, keeping the key's position; a new
// key is placed where kubectl would write it (see keyOrder).
func setField(rn *yaml.RNode, key string, v *yaml.Node) error {
	existed := mapGetPresent(rn.YNode(), key) != nil
	_, err := rn.Pipe(yaml.SetField(key, yaml.NewRNode(v)))
	if err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	if !existed {
		placeKey(rn.YNode(), key)
	}
	return nil
}

// keyOrder is the conventional order of the fields fluxgate adds, by the
// fields that precede them.
func keyOrder() [][]string {
	return [][]string{
		{"replicas", "selector", "strategy", "template"},
		{"name", "image", "imagePullPolicy", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "volumeMounts", "livenessProbe", "readinessProbe", "startupProbe"},
		{"exec", "httpGet", "tcpSocket", "grpc", "initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"},
		{"path", "port", "host", "scheme", "httpHeaders"},
		{"limits", "requests"},
	}
}

// placeKey moves a key just added at the end of mapping m after the last
// key that conventionally precedes it (or first, if none does).
func placeKey(m *yaml.Node, key string) {
	for _, order := range keyOrder() {
		rank := slices.Index(order, key)
		if rank < 0 {
			continue
		}
		ki := -1
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				ki = i
			}
		}
		if ki < 0 {
			return
		}
		pair := []*yaml.Node{m.Content[ki], m.Content[ki+1]}
		rest := append(append([]*yaml.Node{}, m.Content[:ki]...), m.Content[ki+2:]...)
		at, known := 0, false
		for i := 0; i+1 < len(rest); i += 2 {
			if r := slices.Index(order, rest[i].Value); r >= 0 {
				known = true
				if r < rank {
					at = i + 2
				}
			}
		}
		if !known {
			return // a mapping of another kind: leave the key last
		}
		m.Content = slices.Insert(rest, at, pair...)
		return
	}
}

// mapField returns the mapping under key, creating it; an empty flow
// mapping ("{}") becomes a block mapping so that new fields are written in
// block style.
func mapField(rn *yaml.RNode, key string) (*yaml.RNode, error) {
	if v := mapGetPresent(rn.YNode(), key); v != nil && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		if err := setField(rn, key, &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}); err != nil {
			return nil, err
		}
	}
	existed := mapGetPresent(rn.YNode(), key) != nil
	m, err := rn.Pipe(yaml.LookupCreate(yaml.MappingNode, key))
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", key, err)
	}
	if !existed {
		placeKey(rn.YNode(), key)
	}
	if m.YNode().Kind != yaml.MappingNode {
		return nil, invalid(key, "is not a mapping")
	}
	if len(m.YNode().Content) == 0 {
		m.YNode().Style &^= yaml.FlowStyle
	}
	return m, nil
}

func applyDeploymentEdit(dep *yaml.RNode, edit DeploymentEdit) error {
	if edit.Replicas != nil {
		spec, err := mapField(dep, "spec")
		if err != nil {
			return err
		}
		if err := setField(spec, "replicas", intNode(int64(*edit.Replicas))); err != nil {
			return err
		}
	}
	if len(edit.Containers) == 0 {
		return nil
	}
	containers, err := dep.Pipe(yaml.Lookup("spec", "template", "spec", "containers"))
	if err != nil {
		return fmt.Errorf("lookup containers: %w", err)
	}
	if containers == nil || containers.YNode().Kind != yaml.SequenceNode || len(containers.YNode().Content) == 0 {
		return fmt.Errorf("deployment has no containers: %w", ErrNotFound)
	}
	for _, ce := range edit.Containers {
		var c *yaml.RNode
		if ce.Name == "" {
			c = yaml.NewRNode(containers.YNode().Content[0])
		} else {
			c, err = containers.Pipe(yaml.MatchElement("name", ce.Name))
			if err != nil {
				return fmt.Errorf("find container %s: %w", ce.Name, err)
			}
			if c == nil {
				return fmt.Errorf("container %q: %w", ce.Name, ErrNotFound)
			}
		}
		if err := applyContainerEdit(c, ce); err != nil {
			return err
		}
	}
	return nil
}

func applyContainerEdit(c *yaml.RNode, ce ContainerEdit) error {
	if c.YNode().Kind != yaml.MappingNode {
		return invalid("containers", "container is not a mapping")
	}
	if ce.Image != nil {
		if err := setField(c, "image", strNode(*ce.Image)); err != nil {
			return err
		}
	}
	if ce.ImagePullPolicy != nil {
		if err := setField(c, "imagePullPolicy", strNode(*ce.ImagePullPolicy)); err != nil {
			return err
		}
	}
	if len(ce.Env) > 0 || len(ce.RemoveEnv) > 0 {
		if err := editEnv(c, ce.Env, ce.RemoveEnv); err != nil {
			return err
		}
	}
	if ce.Resources != nil {
		if err := editResources(c, *ce.Resources); err != nil {
			return err
		}
	}
	if ce.LivenessProbe != nil {
		if err := editProbe(c, *ce.LivenessProbe); err != nil {
			return err
		}
	}
	return nil
}

func editEnv(c *yaml.RNode, set []EnvVar, remove []string) error {
	env := mapGet(c.YNode(), "env")
	if env == nil || isEmptyNull(env) {
		if len(set) == 0 {
			return nil
		}
		env = &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
		if err := setField(c, "env", env); err != nil {
			return err
		}
		env = mapGet(c.YNode(), "env")
	}
	if env.Kind != yaml.SequenceNode {
		return invalid("env", "is not a list")
	}
	if len(env.Content) == 0 {
		env.Style &^= yaml.FlowStyle
	}
	envRN := yaml.NewRNode(env)
	for _, n := range remove {
		if _, err := envRN.Pipe(yaml.ElementSetter{Keys: []string{"name"}, Values: []string{n}}); err != nil {
			return fmt.Errorf("remove env %s: %w", n, err)
		}
	}
	for _, ev := range set {
		item, err := envRN.Pipe(yaml.MatchElement("name", ev.Name))
		if err != nil {
			return fmt.Errorf("find env %s: %w", ev.Name, err)
		}
		if item == nil {
			env.Content = append(env.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap, Content: []*yaml.Node{
				strNode("name"), strNode(ev.Name), strNode("value"), strNode(ev.Value),
			}})
			continue
		}
		if _, err := item.Pipe(yaml.Clear("valueFrom")); err != nil {
			return fmt.Errorf("env %s: %w", ev.Name, err)
		}
		v := strNode(ev.Value)
		if ev.Value == "" {
			v.Style = yaml.DoubleQuotedStyle
		}
		if err := setField(item, "value", v); err != nil {
			return err
		}
	}
	if len(env.Content) == 0 {
		if _, err := c.Pipe(yaml.Clear("env")); err != nil {
			return fmt.Errorf("clear env: %w", err)
		}
	}
	return nil
}

func editResources(c *yaml.RNode, r ResourcesEdit) error {
	res, err := mapField(c, "resources")
	if err != nil {
		return err
	}
	for _, part := range []struct {
		key string
		m   map[string]string
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		if len(part.m) == 0 {
			continue
		}
		m, err := mapField(res, part.key)
		if err != nil {
			return err
		}
		for _, name := range sortedKeys(part.m) {
			q := part.m[name]
			if q == "" {
				if _, err := m.Pipe(yaml.Clear(name)); err != nil {
					return fmt.Errorf("clear %s: %w", name, err)
				}
				continue
			}
			if err := setField(m, name, quantityNode(q)); err != nil {
				return err
			}
		}
		if len(m.YNode().Content) == 0 {
			if _, err := res.Pipe(yaml.Clear(part.key)); err != nil {
				return fmt.Errorf("clear %s: %w", part.key, err)
			}
		}
	}
	if len(res.YNode().Content) == 0 {
		res.YNode().Style |= yaml.FlowStyle
	}
	return nil
}

func editProbe(c *yaml.RNode, p ProbeEdit) error {
	if p.Remove {
		if _, err := c.Pipe(yaml.Clear("livenessProbe")); err != nil {
			return fmt.Errorf("clear livenessProbe: %w", err)
		}
		return nil
	}
	probe, err := mapField(c, "livenessProbe")
	if err != nil {
		return err
	}
	if p.Path != nil || p.Port != nil {
		// A probe has exactly one handler.
		for _, h := range []string{"exec", "tcpSocket", "grpc"} {
			if _, err := probe.Pipe(yaml.Clear(h)); err != nil {
				return fmt.Errorf("clear %s: %w", h, err)
			}
		}
		hg, err := mapField(probe, "httpGet")
		if err != nil {
			return err
		}
		if p.Path != nil {
			if err := setField(hg, "path", strNode(*p.Path)); err != nil {
				return err
			}
		}
		if p.Port != nil {
			if err := setField(hg, "port", portNode(*p.Port)); err != nil {
				return err
			}
		}
		if mapGet(hg.YNode(), "port") == nil {
			return invalid("livenessProbe.port", "required for an HTTP probe")
		}
	}
	if p.InitialDelaySeconds != nil {
		if err := setField(probe, "initialDelaySeconds", intNode(int64(*p.InitialDelaySeconds))); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
