package yamledit

import (
	"bytes"
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Merge3 merges two edits of one file made from a common base: theirs is
// the current head, ours the user's edit. It works at field level: mappings
// by key; lists of named items (containers, initContainers, env, ports,
// volumes, volumeMounts) by name; other lists as a whole. Changes to
// different fields merge; the same change on both sides is taken once; a
// field changed on both sides to different values is a conflict, and then
// Merge3 returns a *ConflictError listing every conflicting path and no
// content. The merged file is theirs with the merged changes patched in,
// so theirs' comments and formatting are kept, and the parts taken from
// ours keep ours' comments where they are new.
//
// base, theirs or ours may be nil for a file that does not exist on that
// side. A nil result with a nil error means the file is deleted.
func Merge3(file string, base, theirs, ours []byte) ([]byte, error) {
	switch {
	case bytes.Equal(ours, base) && (ours == nil) == (base == nil):
		return theirs, nil
	case bytes.Equal(theirs, base) && (theirs == nil) == (base == nil):
		return ours, nil
	case bytes.Equal(theirs, ours) && (theirs == nil) == (ours == nil):
		return theirs, nil
	}
	theirs, crlf := toLF(theirs)
	base, _ = toLF(base)
	ours, _ = toLF(ours)
	bf, err := parseOrEmpty(base)
	if err != nil {
		return nil, fmt.Errorf("parse base %s: %w", file, err)
	}
	tf, err := parseOrEmpty(theirs)
	if err != nil {
		return nil, fmt.Errorf("parse theirs %s: %w", file, err)
	}
	of, err := parseOrEmpty(ours)
	if err != nil {
		return nil, AsInvalidInput(file, err)
	}
	m := &merger{file: file}
	if theirs == nil || ours == nil {
		// Deleted on one side, changed on the other.
		var t, o *yaml.Node
		if theirs != nil {
			t = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "(file exists)"}
		}
		if ours != nil {
			o = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "(file exists)"}
		}
		m.conflict("", "", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "(file exists)"}, t, o)
		return nil, &ConflictError{Conflicts: m.conflicts}
	}
	bk, tk, ok := docKeys(bf), docKeys(tf), docKeys(of)
	bIdx, oIdx := index(bk), index(ok)
	var merged []*yaml.Node
	for ti, k := range tk {
		var b, o *yaml.Node
		bi, inBase := bIdx[k]
		if inBase {
			b = bf.Root(bi)
		}
		oi, inOurs := oIdx[k]
		if inOurs {
			o = of.Root(oi)
		}
		t := tf.Root(ti)
		res := objectID(t).String()
		var r *yaml.Node
		if inBase && !inOurs {
			// Ours deleted the object.
			if !equalNodes(t, b) {
				m.conflict(res, "", b, t, nil)
			}
			merged = append(merged, nil)
			continue
		}
		r = m.merge(res, "", b, t, o)
		doc := *tf.Docs[ti]
		doc.Content = nil
		if r != nil {
			doc.Content = []*yaml.Node{r}
		}
		merged = append(merged, &doc)
	}
	tIdx := index(tk)
	for oi, k := range ok {
		if _, inTheirs := tIdx[k]; inTheirs {
			continue
		}
		o := of.Root(oi)
		if bi, inBase := bIdx[k]; inBase {
			// Theirs deleted the object.
			if b := bf.Root(bi); !equalNodes(o, b) {
				m.conflict(objectID(o).String(), "", b, nil, o)
			}
			continue
		}
		merged = append(merged, of.Docs[oi])
	}
	if len(m.conflicts) > 0 {
		return nil, &ConflictError{Conflicts: m.conflicts}
	}
	out, err := tf.Render(merged)
	if err != nil {
		return nil, err
	}
	return fromLF(out, crlf), nil
}

func index(keys []string) map[string]int {
	m := make(map[string]int, len(keys))
	for i, k := range keys {
		m[k] = i
	}
	return m
}

type merger struct {
	file      string
	conflicts []Conflict
}

func (m *merger) conflict(res, path string, b, t, o *yaml.Node) {
	m.conflicts = append(m.conflicts, Conflict{
		File: m.file, Resource: res, Path: path,
		Base: renderValue(b), Theirs: renderValue(t), Ours: renderValue(o),
	})
}

// merge returns the merged node for one position (nil = absent). Unchanged
// parts are theirs' own nodes, so rendering onto theirs touches nothing else.
func (m *merger) merge(res, path string, b, t, o *yaml.Node) *yaml.Node {
	b, t, o = resolveAlias(b), resolveAlias(t), resolveAlias(o)
	switch {
	case equalNodes(o, b) && (o == nil) == (b == nil):
		return t
	case equalNodes(t, b) && (t == nil) == (b == nil):
		return o
	case equalNodes(t, o) && (t == nil) == (o == nil):
		return t
	}
	if t != nil && o != nil && t.Kind == yaml.MappingNode && o.Kind == yaml.MappingNode && (b == nil || b.Kind == yaml.MappingNode) {
		return m.mergeMaps(res, path, b, t, o)
	}
	if t != nil && o != nil && t.Kind == yaml.SequenceNode && o.Kind == yaml.SequenceNode && (b == nil || b.Kind == yaml.SequenceNode) && isNamedListKey(lastKey(path)) {
		_, okT := namedItems(t)
		_, okO := namedItems(o)
		okB := true
		if b != nil && len(b.Content) > 0 {
			_, okB = namedItems(b)
		}
		if okT && okO && okB {
			return m.mergeNamed(res, path, b, t, o)
		}
	}
	m.conflict(res, path, b, t, o)
	return t
}

func (m *merger) mergeMaps(res, path string, b, t, o *yaml.Node) *yaml.Node {
	r := *t
	r.Content = nil
	for i := 0; i+1 < len(t.Content); i += 2 {
		k := t.Content[i].Value
		v := m.merge(res, childPath(path, k), mapGet(b, k), t.Content[i+1], mapGetPresent(o, k))
		if v != nil {
			r.Content = append(r.Content, t.Content[i], v)
		}
	}
	for i := 0; i+1 < len(o.Content); i += 2 {
		k := o.Content[i].Value
		if hasKey(t, k) {
			continue
		}
		v := m.merge(res, childPath(path, k), mapGetPresent(b, k), nil, o.Content[i+1])
		if v == nil {
			continue
		}
		// Place it after the key that precedes it in ours, if present.
		at := len(r.Content)
		if i > 0 {
			prev := o.Content[i-2].Value
			for j := 0; j+1 < len(r.Content); j += 2 {
				if r.Content[j].Value == prev {
					at = j + 2
				}
			}
		}
		r.Content = slices.Insert(r.Content, at, o.Content[i], v)
	}
	if len(r.Content) == 0 {
		r.Style |= yaml.FlowStyle
	}
	return &r
}

// mapGetPresent is mapGet, but a present key with a null value yields a
// null node rather than nil, so "set to null" differs from "absent".
func mapGetPresent(n *yaml.Node, key string) *yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func (m *merger) mergeNamed(res, path string, b, t, o *yaml.Node) *yaml.Node {
	byName := func(seq *yaml.Node, name string) *yaml.Node {
		if seq == nil {
			return nil
		}
		for _, it := range seq.Content {
			if n, _ := itemName(it); n == name {
				return it
			}
		}
		return nil
	}
	r := *t
	r.Content = nil
	for _, it := range t.Content {
		name, _ := itemName(it)
		v := m.merge(res, itemPath(path, name), byName(b, name), it, byName(o, name))
		if v != nil {
			r.Content = append(r.Content, v)
		}
	}
	for i, it := range o.Content {
		name, _ := itemName(it)
		if byName(t, name) != nil {
			continue
		}
		v := m.merge(res, itemPath(path, name), byName(b, name), nil, it)
		if v == nil {
			continue
		}
		// Place it after the item that precedes it in ours, if present.
		at := len(r.Content)
		if i > 0 {
			prev, _ := itemName(o.Content[i-1])
			for j, x := range r.Content {
				if n, _ := itemName(x); n == prev {
					at = j + 1
				}
			}
		}
		r.Content = slices.Insert(r.Content, at, v)
	}
	if len(r.Content) == 0 {
		r.Style |= yaml.FlowStyle
	}
	return &r
}
