package yamledit

import (
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// equalNodes reports whether a and b hold the same data (ignoring style,
// comments and positions; mapping key order does not matter).
func equalNodes(a, b *yaml.Node) bool {
	a, b = resolveAlias(a), resolveAlias(b)
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if a.Kind == yaml.DocumentNode {
		a = rootOf(a)
		return equalNodes(a, rootOf(b))
	}
	if b.Kind == yaml.DocumentNode {
		return equalNodes(a, rootOf(b))
	}
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case yaml.ScalarNode:
		return equalScalars(a, b)
	case yaml.SequenceNode:
		if len(a.Content) != len(b.Content) {
			return false
		}
		for i := range a.Content {
			if !equalNodes(a.Content[i], b.Content[i]) {
				return false
			}
		}
		return true
	case yaml.MappingNode:
		if len(a.Content) != len(b.Content) {
			return false
		}
		bm := make(map[string]*yaml.Node, len(b.Content)/2)
		for i := 0; i+1 < len(b.Content); i += 2 {
			bm[keyString(b.Content[i])] = b.Content[i+1]
		}
		if len(bm) != len(b.Content)/2 {
			return false
		}
		for i := 0; i+1 < len(a.Content); i += 2 {
			bv, ok := bm[keyString(a.Content[i])]
			if !ok || !equalNodes(a.Content[i+1], bv) {
				return false
			}
		}
		return true
	}
	return false
}

func keyString(k *yaml.Node) string {
	k = resolveAlias(k)
	if k == nil {
		return ""
	}
	if k.Kind == yaml.ScalarNode {
		return k.Value
	}
	return "\x00complex"
}

func equalScalars(a, b *yaml.Node) bool {
	ta, tb := a.ShortTag(), b.ShortTag()
	if ta != tb {
		return false
	}
	switch ta {
	case "!!null":
		return true
	case "!!bool":
		return strings.EqualFold(a.Value, b.Value)
	case "!!int":
		x, e1 := strconv.ParseInt(strings.ReplaceAll(a.Value, "_", ""), 0, 64)
		y, e2 := strconv.ParseInt(strings.ReplaceAll(b.Value, "_", ""), 0, 64)
		if e1 == nil && e2 == nil {
			return x == y
		}
	case "!!float":
		x, e1 := strconv.ParseFloat(a.Value, 64)
		y, e2 := strconv.ParseFloat(b.Value, 64)
		if e1 == nil && e2 == nil {
			return x == y
		}
	}
	return a.Value == b.Value
}

// deepCopy copies a node tree; aliases inside the tree point into the copy.
func deepCopy(n *yaml.Node) *yaml.Node {
	m := map[*yaml.Node]*yaml.Node{}
	var cp func(n *yaml.Node) *yaml.Node
	cp = func(n *yaml.Node) *yaml.Node {
		if n == nil {
			return nil
		}
		if c, ok := m[n]; ok {
			return c
		}
		c := *n
		m[n] = &c
		if n.Content != nil {
			c.Content = make([]*yaml.Node, len(n.Content))
			for i, ch := range n.Content {
				c.Content[i] = cp(ch)
			}
		}
		return &c
	}
	c := cp(n)
	// Re-point aliases whose anchors were copied.
	var fix func(n *yaml.Node, seen map[*yaml.Node]bool)
	fix = func(n *yaml.Node, seen map[*yaml.Node]bool) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			if a, ok := m[n.Alias]; ok {
				n.Alias = a
			}
		}
		for _, ch := range n.Content {
			fix(ch, seen)
		}
	}
	fix(c, map[*yaml.Node]bool{})
	return c
}

// CopyDocs deep-copies the documents of f, for editing.
func (f *File) CopyDocs() []*yaml.Node {
	out := make([]*yaml.Node, len(f.Docs))
	for i, d := range f.Docs {
		out[i] = deepCopy(d)
	}
	return out
}

// mapGet returns the value of key in mapping n, or nil.
func mapGet(n *yaml.Node, key string) *yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

func scalarValue(n *yaml.Node, path ...string) string {
	for _, p := range path {
		n = mapGet(n, p)
	}
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// ObjectID identifies a Kubernetes object in a document.
type ObjectID struct {
	APIVersion, Kind, Namespace, Name string
}

func (o ObjectID) String() string {
	s := o.Kind + "/" + o.Name
	if o.Namespace != "" {
		s = o.Kind + "/" + o.Namespace + "/" + o.Name
	}
	return s
}

func objectID(root *yaml.Node) ObjectID {
	return ObjectID{
		APIVersion: scalarValue(root, "apiVersion"),
		Kind:       scalarValue(root, "kind"),
		Namespace:  scalarValue(root, "metadata", "namespace"),
		Name:       scalarValue(root, "metadata", "name"),
	}
}

// IDOf returns the identity (apiVersion, kind, namespace, name) of the
// object in a document root.
func IDOf(root *yaml.Node) ObjectID { return objectID(root) }
