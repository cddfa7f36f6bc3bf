package yamledit

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// ChangeOp is the kind of a field change.
type ChangeOp string

const (
	OpAdd    ChangeOp = "ADD"
	OpRemove ChangeOp = "REMOVE"
	OpModify ChangeOp = "MODIFY"
)

// Change is one field-level change between two versions of a file. Path is
// empty when a whole object was added or removed.
type Change struct {
	File     string   `json:"file"`
	Kind     string   `json:"kind"`
	Resource string   `json:"resource"` // e.g. "Deployment/web"
	Path     string   `json:"path"`     // e.g. "spec.template.spec.containers[name=web].image"
	Op       ChangeOp `json:"op"`
	Old      string   `json:"old,omitempty"`
	New      string   `json:"new,omitempty"`
}

// namedListKeys are the lists whose items are matched by their "name"
// field when diffing and merging; other lists are compared as a whole.
func isNamedListKey(key string) bool {
	switch key {
	case "containers", "initContainers", "ephemeralContainers", "env", "ports", "volumes", "volumeMounts":
		return true
	}
	return false
}

func childPath(path, key string) string {
	if strings.ContainsAny(key, ".[]\" ") {
		return path + "[" + fmt.Sprintf("%q", key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func itemPath(path, name string) string { return path + "[name=" + name + "]" }

// renderValue renders a node compactly for change lists and conflicts.
func renderValue(n *yaml.Node) string {
	n = resolveAlias(n)
	if n == nil {
		return ""
	}
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	c := deepCopy(n)
	clearComments(c)
	c.Style |= yaml.FlowStyle
	var buf bytes.Buffer
	enc := newEncoder(&buf, docStyle{indent: 2})
	if err := enc.Encode(c); err != nil {
		return "<unrenderable>"
	}
	_ = enc.Close()
	return strings.TrimSpace(buf.String())
}

// docKey pairs the documents of a file with their identities. Documents
// without a complete identity are keyed by index.
func docKeys(f *File) []string {
	keys := make([]string, len(f.Docs))
	seen := map[string]bool{}
	for i := range f.Docs {
		r := f.Root(i)
		id := objectID(r)
		k := fmt.Sprintf("#%d", i)
		if r != nil && id.Kind != "" && (id.Name != "" || strings.HasPrefix(id.APIVersion, "kustomize.config.k8s.io/")) {
			k = id.APIVersion + "|" + id.Kind + "|" + id.Namespace + "|" + id.Name
		}
		if seen[k] {
			k = fmt.Sprintf("%s#%d", k, i)
		}
		seen[k] = true
		keys[i] = k
	}
	return keys
}

// DiffFiles lists the field-level changes from old to new content of one
// file (either may be nil for an added or deleted file).
func DiffFiles(file string, old, new []byte) ([]Change, error) {
	of, err := parseOrEmpty(old)
	if err != nil {
		return nil, fmt.Errorf("parse old %s: %w", file, err)
	}
	nf, err := parseOrEmpty(new)
	if err != nil {
		return nil, fmt.Errorf("parse new %s: %w", file, err)
	}
	ok, nk := docKeys(of), docKeys(nf)
	newIdx := map[string]int{}
	for i, k := range nk {
		newIdx[k] = i
	}
	var out []Change
	matched := map[int]bool{}
	for i, k := range ok {
		oldR := of.Root(i)
		id := objectID(oldR)
		j, found := newIdx[k]
		if !found {
			out = append(out, Change{File: file, Kind: id.Kind, Resource: id.String(), Op: OpRemove, Old: renderValue(oldR)})
			continue
		}
		matched[j] = true
		diffNodes(&out, Change{File: file, Kind: id.Kind, Resource: id.String()}, "", oldR, nf.Root(j))
	}
	for j := range nk {
		if !matched[j] {
			r := nf.Root(j)
			id := objectID(r)
			out = append(out, Change{File: file, Kind: id.Kind, Resource: id.String(), Op: OpAdd, New: renderValue(r)})
		}
	}
	return out, nil
}

func parseOrEmpty(src []byte) (*File, error) {
	if src == nil {
		return &File{}, nil
	}
	return Parse(src)
}

func diffNodes(out *[]Change, tmpl Change, path string, a, b *yaml.Node) {
	a, b = resolveAlias(a), resolveAlias(b)
	if equalNodes(a, b) {
		return
	}
	emit := func(op ChangeOp) {
		c := tmpl
		c.Path, c.Op, c.Old, c.New = path, op, renderValue(a), renderValue(b)
		*out = append(*out, c)
	}
	switch {
	case a == nil:
		emit(OpAdd)
	case b == nil:
		emit(OpRemove)
	case a.Kind == yaml.MappingNode && b.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(a.Content); i += 2 {
			k := a.Content[i].Value
			diffNodes(out, tmpl, childPath(path, k), a.Content[i+1], mapGet(b, k))
		}
		for i := 0; i+1 < len(b.Content); i += 2 {
			k := b.Content[i].Value
			if mapGet(a, k) == nil && !hasKey(a, k) {
				diffNodes(out, tmpl, childPath(path, k), nil, b.Content[i+1])
			}
		}
	case a.Kind == yaml.SequenceNode && b.Kind == yaml.SequenceNode && isNamedListKey(lastKey(path)):
		an, ok1 := namedItems(a)
		bn, ok2 := namedItems(b)
		if !ok1 || !ok2 {
			emit(OpModify)
			return
		}
		for _, it := range a.Content {
			name, _ := itemName(it)
			var other *yaml.Node
			if j, ok := bn[name]; ok {
				other = b.Content[j]
			}
			diffNodes(out, tmpl, itemPath(path, name), it, other)
		}
		for _, it := range b.Content {
			name, _ := itemName(it)
			if _, ok := an[name]; !ok {
				diffNodes(out, tmpl, itemPath(path, name), nil, it)
			}
		}
	default:
		emit(OpModify)
	}
}

func hasKey(n *yaml.Node, key string) bool {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// lastKey returns the last mapping key of a path ("containers" for
// "spec.template.spec.containers").
func lastKey(path string) string {
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		if path[i] == ']' {
			return ""
		}
		return path[i+1:]
	}
	return path
}

// Impact says what applying a set of changes does to running pods.
type Impact struct {
	RestartsPods bool     `json:"restartsPods"`
	Reasons      []string `json:"reasons,omitempty"` // why pods restart
	Notes        []string `json:"notes,omitempty"`   // other effects (scaling, config)
}

func isWorkload(kind string) bool {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob":
		return true
	}
	return false
}

// AssessImpact decides whether changes restart pods: a change under a
// workload's pod template (spec.template, or spec.jobTemplate for CronJobs)
// does; scaling (spec.replicas) and other fields do not.
func AssessImpact(changes []Change) Impact {
	var im Impact
	for _, c := range changes {
		switch {
		case isWorkload(c.Kind) && c.Path == "" && c.Op == OpAdd:
			im.RestartsPods = true
			im.Reasons = append(im.Reasons, c.Resource+" is created: its pods start")
		case isWorkload(c.Kind) && c.Path == "" && c.Op == OpRemove:
			im.RestartsPods = true
			im.Reasons = append(im.Reasons, c.Resource+" is deleted: its pods stop")
		case isWorkload(c.Kind) && (strings.HasPrefix(c.Path, "spec.template") || strings.HasPrefix(c.Path, "spec.jobTemplate")):
			im.RestartsPods = true
			im.Reasons = append(im.Reasons, fmt.Sprintf("%s: pod template changed (%s %s) — pods are replaced by a rolling update", c.Resource, c.Path, strings.ToLower(string(c.Op))))
		case isWorkload(c.Kind) && c.Path == "spec.replicas":
			im.Notes = append(im.Notes, fmt.Sprintf("%s: scales from %s to %s replicas without restarting running pods", c.Resource, orDefault(c.Old, "1"), orDefault(c.New, "1")))
		case c.Kind == "ConfigMap" || c.Kind == "Secret":
			im.Notes = append(im.Notes, fmt.Sprintf("%s changed: pods that read it at start-up see it only after their next restart", c.Resource))
		}
	}
	return im
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// UnifiedDiff returns a unified diff (3 lines of context) of a file's old
// and new content; "" when equal.
func UnifiedDiff(file string, old, new []byte) string {
	if bytes.Equal(old, new) {
		return ""
	}
	from, to := "a/"+file, "b/"+file
	if old == nil {
		from = "/dev/null"
	}
	if new == nil {
		to = "/dev/null"
	}
	s, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: splitLines(old), B: splitLines(new),
		FromFile: from, ToFile: to, Context: 3,
	})
	if err != nil {
		return ""
	}
	return s
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return difflib.SplitLines(string(b))
}
