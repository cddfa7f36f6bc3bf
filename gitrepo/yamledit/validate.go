package yamledit

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Issue is one validation problem. Line and Column are 1-based (0 when
// unknown); Path is the field path inside the document.
type Issue struct {
	File     string `json:"file,omitempty"`
	Document int    `json:"document"` // 1-based document index in the file
	Resource string `json:"resource,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
}

func (i Issue) String() string {
	var b strings.Builder
	if i.File != "" {
		b.WriteString(i.File + ": ")
	}
	if i.Line > 0 {
		fmt.Fprintf(&b, "line %d", i.Line)
		if i.Column > 0 {
			fmt.Fprintf(&b, ", column %d", i.Column)
		}
		b.WriteString(": ")
	}
	if i.Path != "" {
		b.WriteString(i.Path + ": ")
	}
	b.WriteString(i.Message)
	return b.String()
}

// ValidationError carries the issues found in a file. Callers map it to
// INVALID_INPUT.
type ValidationError struct {
	File   string
	Issues []Issue
}

func (e *ValidationError) Error() string {
	msgs := make([]string, 0, len(e.Issues))
	for _, i := range e.Issues {
		msgs = append(msgs, i.String())
	}
	prefix := "invalid yaml"
	if e.File != "" {
		prefix = "invalid " + e.File
	}
	return prefix + ": " + strings.Join(msgs, "; ")
}

// knownObject returns an empty typed object for the built-in kinds that are
// decoded strictly.
func knownObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "apps/v1/ReplicaSet":
		return &appsv1.ReplicaSet{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "v1/Pod":
		return &corev1.Pod{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "batch/v1/CronJob":
		return &batchv1.CronJob{}
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	}
	return nil
}

var (
	unknownFieldRe = regexp.MustCompile(`unknown field "([^"]*)"`)
	duplicateRe    = regexp.MustCompile(`duplicate field "([^"]*)"`)
	typeFieldRe    = regexp.MustCompile(`Go struct field [A-Za-z0-9_]+\.([^ ]+) of type (\S+)`)
)

// Validate checks a manifest file: YAML syntax (with line/column), limits
// (size, alias expansion), every document a Kubernetes object with
// apiVersion, kind and metadata.name, and the built-in kinds decoded
// strictly so unknown or mistyped fields are reported with their path. An
// empty result means the file is valid.
func Validate(src []byte) []Issue {
	f, err := Parse(src)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			return []Issue{{Line: se.Line, Column: se.Column, Message: se.Msg}}
		}
		return []Issue{{Message: err.Error()}}
	}
	var issues []Issue
	seen := map[ObjectID]int{}
	for i := range f.Docs {
		root := f.Root(i)
		if root == nil {
			continue
		}
		issues = append(issues, validateDoc(i+1, root, seen)...)
	}
	return issues
}

func validateDoc(docNum int, root *yaml.Node, seen map[ObjectID]int) []Issue {
	at := func(n *yaml.Node, path, format string, args ...any) Issue {
		is := Issue{Document: docNum, Path: path, Message: fmt.Sprintf(format, args...)}
		if n != nil {
			is.Line, is.Column = n.Line, n.Column
		}
		return is
	}
	if root.Kind != yaml.MappingNode {
		return []Issue{at(root, "", "document is not a mapping (a Kubernetes object)")}
	}
	var issues []Issue
	id := objectID(root)
	for _, req := range []string{"apiVersion", "kind"} {
		if v := mapGet(root, req); v == nil || v.Kind != yaml.ScalarNode || v.Value == "" {
			issues = append(issues, at(root, req, "required field is missing"))
		}
	}
	kustomize := strings.HasPrefix(id.APIVersion, "kustomize.config.k8s.io/")
	meta := mapGet(root, "metadata")
	switch {
	case kustomize:
	case meta == nil || meta.Kind != yaml.MappingNode:
		issues = append(issues, at(root, "metadata", "required field is missing"))
	default:
		name := mapGet(meta, "name")
		if name == nil || name.Kind != yaml.ScalarNode || name.Value == "" {
			if mapGet(meta, "generateName") == nil {
				issues = append(issues, at(meta, "metadata.name", "required field is missing"))
			}
		} else if errs := validation.IsDNS1123Subdomain(name.Value); len(errs) > 0 {
			issues = append(issues, at(name, "metadata.name", "%q: %s", name.Value, strings.Join(errs, "; ")))
		}
	}
	if len(issues) > 0 {
		return issues
	}
	res := id.String()
	if !kustomize {
		if prev, dup := seen[id]; dup {
			issues = append(issues, Issue{Document: docNum, Resource: res, Line: root.Line, Column: root.Column, Message: fmt.Sprintf("duplicate of document %d", prev)})
		}
		seen[id] = docNum
	}
	obj := knownObject(id.APIVersion, id.Kind)
	if obj == nil {
		return issues
	}
	var v any
	if err := root.Decode(&v); err != nil {
		return append(issues, Issue{Document: docNum, Resource: res, Message: err.Error()})
	}
	data, err := json.Marshal(v)
	if err != nil {
		return append(issues, Issue{Document: docNum, Resource: res, Message: err.Error()})
	}
	strictErrs, err := sigsjson.UnmarshalStrict(data, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	for _, se := range strictErrs {
		msg := se.Error()
		is := Issue{Document: docNum, Resource: res, Message: msg}
		if m := unknownFieldRe.FindStringSubmatch(msg); m != nil {
			is.Path, is.Message = m[1], "unknown field"
		} else if m := duplicateRe.FindStringSubmatch(msg); m != nil {
			is.Path, is.Message = m[1], "duplicate field"
		}
		if n := lookupPath(root, is.Path); n != nil {
			is.Line, is.Column = n.Line, n.Column
		}
		issues = append(issues, is)
	}
	if err != nil {
		is := Issue{Document: docNum, Resource: res, Message: strings.TrimPrefix(err.Error(), "json: ")}
		if m := typeFieldRe.FindStringSubmatch(err.Error()); m != nil {
			is.Path = m[1]
			is.Message = "wrong type, expected " + m[2]
			if n := lookupPath(root, is.Path); n != nil {
				is.Line, is.Column = n.Line, n.Column
			}
		}
		issues = append(issues, is)
	}
	return issues
}

// lookupPath finds the node (the key node for mapping entries) at a path
// like "spec.template.spec.containers[0].imagee". A list without an index
// is searched item by item.
func lookupPath(root *yaml.Node, path string) *yaml.Node {
	if path == "" {
		return nil
	}
	var segs []string
	for _, part := range strings.Split(path, ".") {
		for part != "" {
			if i := strings.IndexByte(part, '['); i > 0 {
				segs = append(segs, part[:i])
				part = part[i:]
				continue
			}
			if strings.HasPrefix(part, "[") {
				j := strings.IndexByte(part, ']')
				if j < 0 {
					return nil
				}
				segs = append(segs, part[:j+1])
				part = part[j+1:]
				continue
			}
			segs = append(segs, part)
			part = ""
		}
	}
	var walk func(n *yaml.Node, segs []string) *yaml.Node
	walk = func(n *yaml.Node, segs []string) *yaml.Node {
		n = resolveAlias(n)
		if n == nil || len(segs) == 0 {
			return n
		}
		s := segs[0]
		switch n.Kind {
		case yaml.SequenceNode:
			if strings.HasPrefix(s, "[") {
				idx, err := strconv.Atoi(strings.Trim(s, "[]"))
				if err != nil || idx < 0 || idx >= len(n.Content) {
					return nil
				}
				return walk(n.Content[idx], segs[1:])
			}
			for _, it := range n.Content {
				if r := walk(it, segs); r != nil {
					return r
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s {
					if len(segs) == 1 {
						return n.Content[i]
					}
					return walk(n.Content[i+1], segs[1:])
				}
			}
		}
		return nil
	}
	return walk(root, segs)
}
