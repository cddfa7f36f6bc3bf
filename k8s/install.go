package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// InstallOptions control InstallFlux.
type InstallOptions struct {
	// Wait bounds how long InstallFlux waits for the required controllers to
	// become ready after applying. Zero reports readiness right away.
	Wait time.Duration
}

// AppliedObject names one object InstallFlux applied.
type AppliedObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// InstallResult is what InstallFlux did and the resulting Flux health.
type InstallResult struct {
	Applied []AppliedObject `json:"applied"`
	Health  *FluxHealth     `json:"health"`
}

// InstallFlux applies a Flux install bundle (the multi-document YAML or JSON
// of `flux install --export`) with server-side apply as field owner
// "fluxgate": namespaces and CRDs first (waiting until the CRDs are
// established), then everything else; then it reports component readiness,
// waiting up to opts.Wait for it. Nothing is downloaded.
//
// Returns EINVALID if the bundle cannot be parsed or has no objects.
func (c *Client) InstallFlux(ctx context.Context, manifests []byte, opts InstallOptions) (*InstallResult, error) {
	objs, err := decodeManifests(manifests)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(objs, func(i, j int) bool { return installOrder(objs[i]) < installOrder(objs[j]) })
	res := &InstallResult{}
	var crds []string
	for i, u := range objs {
		// Custom resources in the bundle need their CRDs served first.
		if installOrder(u) == 2 && i > 0 && installOrder(objs[i-1]) < 2 && len(crds) > 0 {
			if err := c.waitEstablished(ctx, crds); err != nil {
				return res, err
			}
		}
		if err := c.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return res, apiError(err, "apply %s %s", u.GetKind(), nsName(u))
		}
		if u.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, u.GetName())
		}
		res.Applied = append(res.Applied, AppliedObject{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()})
	}
	if installOrder(objs[len(objs)-1]) < 2 && len(crds) > 0 {
		if err := c.waitEstablished(ctx, crds); err != nil {
			return res, err
		}
	}
	check := func(ctx context.Context) (bool, error) {
		h, err := c.FluxHealth(ctx)
		if err != nil {
			return false, err
		}
		res.Health = h
		return h.Ready, nil
	}
	if opts.Wait > 0 {
		if err := c.poll(ctx, opts.Wait, check); err != nil && !wait.Interrupted(err) {
			return res, err
		}
	} else if _, err := check(ctx); err != nil {
		return res, err
	}
	return res, nil
}

func nsName(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

// installOrder: namespaces, CRDs, then the rest.
func installOrder(u *unstructured.Unstructured) int {
	switch u.GetKind() {
	case "Namespace":
		return 0
	case "CustomResourceDefinition":
		return 1
	}
	return 2
}

func (c *Client) waitEstablished(ctx context.Context, names []string) error {
	err := c.poll(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := c.c.Get(ctx, client.ObjectKey{Name: n}, &crd); err != nil {
				return false, apiError(err, "get crd %s", n)
			}
			established := false
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					established = true
				}
			}
			if !established {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for flux crds: %w", err)
	}
	return nil
}

// decodeManifests splits a multi-document YAML/JSON bundle into objects,
// expanding v1 Lists.
func decodeManifests(b []byte) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fluxgate.InvalidField("manifests", "document %d is not valid YAML or JSON", doc)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fluxgate.InvalidField("manifests", "document %d is not a valid list", doc)
			}
			for i := range list.Items {
				out = append(out, &list.Items[i])
			}
			continue
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fluxgate.InvalidField("manifests", "document %d lacks apiVersion, kind or metadata.name", doc)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fluxgate.InvalidField("manifests", "the bundle has no objects")
	}
	return out, nil
}
