package yamledit

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// DeploymentView is the structured view of a Deployment the config editor
// shows: it parses from YAML (ParseDeploymentView) and renders back into the
// same YAML (RenderDeploymentView) with only the changed fields rewritten.
type DeploymentView struct {
	Name       string          `json:"name"`
	Namespace  string          `json:"namespace,omitempty"`
	Replicas   *int32          `json:"replicas,omitempty"`
	Containers []ContainerView `json:"containers"`
}

// ContainerView is one container of the pod template.
type ContainerView struct {
	Name            string        `json:"name"`
	Image           string        `json:"image"`
	ImagePullPolicy string        `json:"imagePullPolicy,omitempty"`
	Resources       ResourcesView `json:"resources"`
	LivenessProbe   *ProbeView    `json:"livenessProbe,omitempty"`
	Env             []EnvVarView  `json:"env,omitempty"`
}

// ResourcesView holds requests and limits by resource name (cpu, memory…).
type ResourcesView struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

// ProbeView is an HTTP liveness probe.
type ProbeView struct {
	Path                string `json:"path"`
	Port                string `json:"port"`
	InitialDelaySeconds int32  `json:"initialDelaySeconds"`
}

// EnvVarView is an environment variable; FromSource is true when the value
// comes from a valueFrom reference (secret, config map…), which the view
// does not edit.
type EnvVarView struct {
	Name       string `json:"name"`
	Value      string `json:"value,omitempty"`
	FromSource bool   `json:"fromSource,omitempty"`
}

// ParseDeploymentView reads the view of the named Deployment (or the only
// one) from src.
func ParseDeploymentView(src []byte, name string) (*DeploymentView, error) {
	f, err := Parse(src)
	if err != nil {
		return nil, err
	}
	i, err := f.FindDeployment(name)
	if err != nil {
		return nil, err
	}
	var dep appsv1.Deployment
	if err := decodeNode(f.Root(i), &dep); err != nil {
		return nil, invalid("yaml", "deployment: %v", err)
	}
	return viewOf(&dep), nil
}

func decodeNode(n *yaml.Node, into any) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return fmt.Errorf("decode yaml: %w", err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("to json: %w", err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

func viewOf(dep *appsv1.Deployment) *DeploymentView {
	v := &DeploymentView{Name: dep.Name, Namespace: dep.Namespace, Replicas: dep.Spec.Replicas}
	for _, c := range dep.Spec.Template.Spec.Containers {
		cv := ContainerView{Name: c.Name, Image: c.Image, ImagePullPolicy: string(c.ImagePullPolicy)}
		cv.Resources.Requests = quantities(c.Resources.Requests)
		cv.Resources.Limits = quantities(c.Resources.Limits)
		if p := c.LivenessProbe; p != nil && p.HTTPGet != nil {
			cv.LivenessProbe = &ProbeView{Path: p.HTTPGet.Path, Port: p.HTTPGet.Port.String(), InitialDelaySeconds: p.InitialDelaySeconds}
		}
		for _, e := range c.Env {
			cv.Env = append(cv.Env, EnvVarView{Name: e.Name, Value: e.Value, FromSource: e.ValueFrom != nil})
		}
		v.Containers = append(v.Containers, cv)
	}
	return v
}

func quantities(rl corev1.ResourceList) map[string]string {
	if len(rl) == 0 {
		return nil
	}
	m := make(map[string]string, len(rl))
	for k, q := range rl {
		m[string(k)] = q.String()
	}
	return m
}

// EditFromView computes the edit that turns current into desired.
// Containers are matched by name; adding or removing containers is not
// supported (InvalidInputError).
func EditFromView(current, desired *DeploymentView) (DeploymentEdit, error) {
	e := DeploymentEdit{Name: current.Name}
	if desired.Replicas != nil && (current.Replicas == nil || *current.Replicas != *desired.Replicas) {
		e.Replicas = desired.Replicas
	}
	if len(desired.Containers) != len(current.Containers) {
		return e, invalid("containers", "adding or removing containers is not supported in the structured view; edit the YAML")
	}
	for i, dc := range desired.Containers {
		var cc *ContainerView
		for j := range current.Containers {
			if current.Containers[j].Name == dc.Name {
				cc = &current.Containers[j]
			}
		}
		if cc == nil {
			return e, invalid(fmt.Sprintf("containers[%d].name", i), "no container named %q", dc.Name)
		}
		ce := ContainerEdit{Name: dc.Name}
		if dc.Image != cc.Image {
			ce.Image = &dc.Image
		}
		if dc.ImagePullPolicy != cc.ImagePullPolicy && dc.ImagePullPolicy != "" {
			ce.ImagePullPolicy = &dc.ImagePullPolicy
		}
		if r := diffQuantities(cc.Resources, dc.Resources); r != nil {
			ce.Resources = r
		}
		switch {
		case dc.LivenessProbe == nil && cc.LivenessProbe != nil:
			ce.LivenessProbe = &ProbeEdit{Remove: true}
		case dc.LivenessProbe != nil && (cc.LivenessProbe == nil || *dc.LivenessProbe != *cc.LivenessProbe):
			p := ProbeEdit{}
			if cc.LivenessProbe == nil || dc.LivenessProbe.Path != cc.LivenessProbe.Path || dc.LivenessProbe.Port != cc.LivenessProbe.Port {
				p.Path, p.Port = &dc.LivenessProbe.Path, &dc.LivenessProbe.Port
			}
			if cc.LivenessProbe == nil || dc.LivenessProbe.InitialDelaySeconds != cc.LivenessProbe.InitialDelaySeconds {
				p.InitialDelaySeconds = &dc.LivenessProbe.InitialDelaySeconds
			}
			ce.LivenessProbe = &p
		}
		cur := map[string]EnvVarView{}
		for _, ev := range cc.Env {
			cur[ev.Name] = ev
		}
		want := map[string]bool{}
		for _, ev := range dc.Env {
			want[ev.Name] = true
			if ev.FromSource {
				continue
			}
			if old, ok := cur[ev.Name]; !ok || old.FromSource || old.Value != ev.Value {
				ce.Env = append(ce.Env, EnvVar{Name: ev.Name, Value: ev.Value})
			}
		}
		for _, ev := range cc.Env {
			if !want[ev.Name] {
				ce.RemoveEnv = append(ce.RemoveEnv, ev.Name)
			}
		}
		e.Containers = append(e.Containers, ce)
	}
	return e, nil
}

func diffQuantities(cur, want ResourcesView) *ResourcesEdit {
	d := func(c, w map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range w {
			if c[k] != v {
				out[k] = v
			}
		}
		for k := range c {
			if _, ok := w[k]; !ok {
				out[k] = ""
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	r := &ResourcesEdit{Requests: d(cur.Requests, want.Requests), Limits: d(cur.Limits, want.Limits)}
	if r.Requests == nil && r.Limits == nil {
		return nil
	}
	return r
}

// RenderDeploymentView writes desired into src (the Deployment named
// desired.Name, or the only one), rewriting only what differs. Rendering
// the view parsed from src returns src unchanged.
func RenderDeploymentView(src []byte, desired *DeploymentView) ([]byte, error) {
	current, err := ParseDeploymentView(src, desired.Name)
	if err != nil {
		return nil, err
	}
	e, err := EditFromView(current, desired)
	if err != nil {
		return nil, err
	}
	if e.Empty() {
		return src, nil
	}
	return EditDeployment(src, e)
}
