package k8s

import (
	"context"
	"encoding/json"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AnnotationSyncRevision names, on a Kustomization fluxgate keeps
// suspended (an environment with autoSync off), the commit it was resumed
// to apply; fluxgate suspends it again once that commit is applied. Kept on
// the object so that any replica, also after a restart, knows what is in
// flight.
const AnnotationSyncRevision = "fluxgate.io/sync-revision"

// SetAnnotations merges annotations into an object's metadata (an empty
// value removes the annotation). ENOTFOUND when the object does not exist.
func (c *Client) SetAnnotations(ctx context.Context, key ObjectKey, annotations map[string]string) error {
	obj, err := NewObject(key.Kind)
	if err != nil {
		return err
	}
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	values := make(map[string]any, len(annotations))
	for k, v := range annotations {
		if v == "" {
			values[k] = nil
		} else {
			values[k] = v
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": values}})
	if err != nil {
		return err
	}
	if err := c.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldOwner)); err != nil {
		return apiError(err, "annotate %s", key)
	}
	return nil
}
