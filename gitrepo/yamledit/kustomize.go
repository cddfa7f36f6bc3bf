package yamledit

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// SplitImage splits an image reference into name, tag and digest:
// "ghcr.io/acme/web:1.2@sha256:…" → ("ghcr.io/acme/web", "1.2", "sha256:…").
// A registry port ("localhost:5000/web") is not mistaken for a tag.
func SplitImage(ref string) (name, tag, digest string) {
	name = ref
	if i := strings.Index(name, "@"); i >= 0 {
		name, digest = name[:i], name[i+1:]
	}
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i:], "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

// IsKustomization reports whether a file name is a kustomization file.
func IsKustomization(path string) bool {
	base := path[strings.LastIndex(path, "/")+1:]
	return base == "kustomization.yaml" || base == "kustomization.yml" || base == "Kustomization"
}

// SetKustomizeImage points the `images:` entry of a kustomization file that
// overrides image name (the name used in the resources) at newImage: newTag
// or digest, and newName when the repository changes. found is false when
// the file has no entry for name (src is then returned unchanged).
// Formatting and comments are kept as with EditDeployment.
func SetKustomizeImage(src []byte, name, newImage string) (out []byte, found bool, err error) {
	src, crlf := toLF(src)
	f, err := Parse(src)
	if err != nil {
		return nil, false, err
	}
	docs := f.CopyDocs()
	for _, d := range docs {
		root := rootOf(d)
		if root == nil || scalarValue(root, "kind") != "Kustomization" {
			continue
		}
		images := mapGet(root, "images")
		if images == nil || images.Kind != yaml.SequenceNode {
			continue
		}
		for _, it := range images.Content {
			if it.Kind != yaml.MappingNode || scalarValue(it, "name") != name {
				continue
			}
			found = true
			newName, tag, digest := SplitImage(newImage)
			rn := yaml.NewRNode(it)
			if newName != name || mapGet(it, "newName") != nil {
				if newName == name {
					if _, err := rn.Pipe(yaml.Clear("newName")); err != nil {
						return nil, false, fmt.Errorf("clear newName: %w", err)
					}
				} else if err := setField(rn, "newName", strNode(newName)); err != nil {
					return nil, false, err
				}
			}
			set, clear := "newTag", "digest"
			value := tag
			if digest != "" {
				set, clear, value = "digest", "newTag", digest
			}
			if _, err := rn.Pipe(yaml.Clear(clear)); err != nil {
				return nil, false, fmt.Errorf("clear %s: %w", clear, err)
			}
			if value == "" {
				if _, err := rn.Pipe(yaml.Clear(set)); err != nil {
					return nil, false, fmt.Errorf("clear %s: %w", set, err)
				}
			} else if err := setField(rn, set, strNode(value)); err != nil {
				return nil, false, err
			}
		}
	}
	if !found {
		return fromLF(src, crlf), false, nil
	}
	out, err = f.Render(docs)
	if err != nil {
		return nil, false, err
	}
	return fromLF(out, crlf), true, nil
}
