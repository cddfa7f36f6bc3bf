package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/fluxgate/fluxgate"
)

// FieldOwner is the server-side apply field manager of everything fluxgate
// writes.
const FieldOwner = "fluxgate"

// Options configure a Client. Zero values take the defaults.
type Options struct {
	// FluxNamespace is where the Flux controllers run (default flux-system).
	FluxNamespace string
	// PollInterval is how often bounded waits re-read an object (default 250ms).
	PollInterval time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.FluxNamespace == "" {
		o.FluxNamespace = "flux-system"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Client writes and reads Flux objects, Secrets and Flux's own components.
// It reads straight from the API server: use a Watcher for status that is
// read often.
type Client struct {
	c    client.Client
	opts Options
}

// New returns a Client for the cluster cfg points at.
func New(cfg *rest.Config, opts Options) (*Client, error) {
	c, _, err := newKubeClient(cfg)
	if err != nil {
		return nil, err
	}
	return NewFromClient(c, opts), nil
}

// NewFromClient wraps an existing controller-runtime client, whose scheme
// must include NewScheme's types (tests pass the fake client here).
func NewFromClient(c client.Client, opts Options) *Client {
	opts.defaults()
	return &Client{c: c, opts: opts}
}

// Kube returns the underlying controller-runtime client.
func (c *Client) Kube() client.Client { return c.c }

// EnsureNamespace creates or updates a project namespace, labelled with the
// project id and managed-by fluxgate.
func (c *Client) EnsureNamespace(ctx context.Context, name, projectID string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(name)
	labels := map[string]string{LabelManagedBy: ManagedByValue}
	if projectID != "" {
		labels[LabelProject] = projectID
	}
	u.SetLabels(labels)
	if err := c.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return apiError(err, "apply namespace %s", name)
	}
	return nil
}

// Applied is the result of Apply: the object as the API server stored it and
// its mapped status.
type Applied struct {
	Object     client.Object
	Status     fluxgate.ResourceStatusUpdate
	Generation int64
	UID        string
}

// Apply creates or updates the Flux object of r with server-side apply (field
// owner "fluxgate", taking over conflicting fields only among those fluxgate
// sets; fields set by others are left alone).
//
// Returns EINVALID when r's spec is invalid or the CRD schema rejects it
// (Field names the spec field), EUNAVAILABLE when the cluster cannot be
// reached or the Flux CRD is not installed.
func (c *Client) Apply(ctx context.Context, r *fluxgate.GitOpsResource) (*Applied, error) {
	obj, err := BuildObject(r)
	if err != nil {
		return nil, err
	}
	u, err := toApplyUnstructured(obj)
	if err != nil {
		return nil, err
	}
	// Always send spec.suspend so that resuming in the database resumes in
	// the cluster (the typed struct omits false).
	if err := unstructured.SetNestedField(u.Object, specSuspend(obj), "spec", "suspend"); err != nil {
		return nil, fmt.Errorf("set spec.suspend: %w", err)
	}
	if err := c.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return nil, apiError(err, "apply %s", KeyOf(r))
	}
	live, err := NewObject(r.Kind)
	if err != nil {
		return nil, err
	}
	// Apply fills u with the server's answer.
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, live); err != nil {
		return nil, fmt.Errorf("decode applied %s: %w", KeyOf(r), err)
	}
	return &Applied{Object: live, Status: StatusOf(live), Generation: live.GetGeneration(), UID: string(live.GetUID())}, nil
}

// toApplyUnstructured turns a typed object into an apply configuration: no
// status, no server-set metadata.
func toApplyUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
		delete(md, "resourceVersion")
		delete(md, "managedFields")
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// Get reads a Flux object from the API server and maps its status.
//
// Returns ENOTFOUND if it does not exist.
func (c *Client) Get(ctx context.Context, key ObjectKey) (client.Object, fluxgate.ResourceStatusUpdate, error) {
	obj, err := NewObject(key.Kind)
	if err != nil {
		return nil, fluxgate.ResourceStatusUpdate{}, err
	}
	if err := c.c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, obj); err != nil {
		return nil, fluxgate.ResourceStatusUpdate{}, apiError(err, "get %s", key)
	}
	return obj, StatusOf(obj), nil
}

// DeleteOptions control Delete.
type DeleteOptions struct {
	// Prune, when set for a Kustomization, first sets spec.prune so that
	// Flux garbage-collects (true) or orphans (false) the objects it
	// applied. nil keeps the object's current setting.
	Prune *bool
	// Wait bounds how long Delete waits for the object to be gone (Flux's
	// finalizer runs the pruning first). Zero returns right after the
	// delete request.
	Wait time.Duration
}

// DeleteResult says whether the object is gone.
type DeleteResult struct {
	// Gone is true once the object no longer exists (or never did).
	Gone bool
	// Finalizers still pending when Wait ran out (Flux still pruning, or no
	// Flux controller running to remove its finalizer).
	Finalizers []string
}

// Delete deletes a Flux object. With prune enabled on a Kustomization, Flux
// deletes the objects it applied before removing its finalizer; Wait lets
// the caller see that finish. Deleting an object that does not exist
// succeeds with Gone.
func (c *Client) Delete(ctx context.Context, key ObjectKey, opts DeleteOptions) (*DeleteResult, error) {
	obj, err := NewObject(key.Kind)
	if err != nil {
		return nil, err
	}
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	if opts.Prune != nil && key.Kind == fluxgate.KindKustomization {
		patch := fmt.Appendf(nil, `{"spec":{"prune":%t}}`, *opts.Prune)
		if err := c.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldOwner)); err != nil {
			if apierrors.IsNotFound(err) {
				return &DeleteResult{Gone: true}, nil
			}
			return nil, apiError(err, "set prune on %s", key)
		}
	}
	policy := metav1.DeletePropagationBackground
	if err := c.c.Delete(ctx, obj, &client.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		if apierrors.IsNotFound(err) {
			return &DeleteResult{Gone: true}, nil
		}
		return nil, apiError(err, "delete %s", key)
	}
	res := &DeleteResult{}
	if opts.Wait <= 0 {
		res.Finalizers = obj.GetFinalizers()
		return res, nil
	}
	err = c.poll(ctx, opts.Wait, func(ctx context.Context) (bool, error) {
		err := c.c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, obj)
		if apierrors.IsNotFound(err) {
			res.Gone = true
			return true, nil
		}
		if err != nil {
			return false, apiError(err, "get %s", key)
		}
		res.Finalizers = obj.GetFinalizers()
		return false, nil
	})
	if err != nil && !wait.Interrupted(err) {
		return nil, err
	}
	if res.Gone {
		res.Finalizers = nil
	}
	return res, nil
}

// Suspend sets spec.suspend=true: Flux stops reconciling the object.
func (c *Client) Suspend(ctx context.Context, key ObjectKey) error {
	return c.setSuspend(ctx, key, true)
}

// Resume sets spec.suspend=false and requests a reconcile, as `flux resume`
// does, so that Flux catches up at once.
func (c *Client) Resume(ctx context.Context, key ObjectKey) error {
	return c.setSuspend(ctx, key, false)
}

func (c *Client) setSuspend(ctx context.Context, key ObjectKey, suspend bool) error {
	obj, err := NewObject(key.Kind)
	if err != nil {
		return err
	}
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	var patch []byte
	if suspend {
		patch = []byte(`{"spec":{"suspend":true}}`)
	} else {
		patch = fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}},"spec":{"suspend":false}}`,
			meta.ReconcileRequestAnnotation, c.token())
	}
	if err := c.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldOwner)); err != nil {
		return apiError(err, "set suspend=%t on %s", suspend, key)
	}
	return nil
}

func (c *Client) token() string { return c.opts.Now().UTC().Format(time.RFC3339Nano) }

// ReconcileResult reports a reconcile request.
type ReconcileResult struct {
	// Token is the reconcile.fluxcd.io/requestedAt value set.
	Token string
	// Handled is true once Flux set status.lastHandledReconcileAt to Token.
	Handled bool
	// Status is the object's status when Handled became true or the wait
	// ended.
	Status fluxgate.ResourceStatusUpdate
}

// Reconcile asks Flux to reconcile an object now by setting the
// reconcile.fluxcd.io/requestedAt annotation, then waits for
// status.lastHandledReconcileAt to equal the token (bounded by timeout). A wait that runs out is
// not an error: Handled is false. A suspended object is refused with
// ECONFLICT (Flux would ignore the request).
func (c *Client) Reconcile(ctx context.Context, key ObjectKey, timeout time.Duration) (*ReconcileResult, error) {
	obj, _, err := c.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if specSuspend(obj) {
		return nil, fluxgate.Errorf(fluxgate.ECONFLICT, "%s %s is suspended; resume it first", key.Kind, key.Name)
	}
	res := &ReconcileResult{Token: c.token()}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, res.Token)
	if err := c.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldOwner)); err != nil {
		return nil, apiError(err, "request reconcile of %s", key)
	}
	res.Status = StatusOf(obj)
	if timeout <= 0 {
		return res, nil
	}
	err = c.poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		if err := c.c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, obj); err != nil {
			return false, apiError(err, "get %s", key)
		}
		res.Status = StatusOf(obj)
		res.Handled = lastHandledReconcileAt(obj) == res.Token
		return res.Handled, nil
	})
	if err != nil && !wait.Interrupted(err) {
		return nil, err
	}
	return res, nil
}

// poll runs cond every PollInterval until it returns true, an error, or
// timeout passes (a wait.Interrupted error).
// cond gets ctx itself, not the poll's deadline context: a request started
// just before the deadline finishes instead of failing in the client's rate
// limiter.
func (c *Client) poll(ctx context.Context, timeout time.Duration, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, c.opts.PollInterval, timeout, true, func(context.Context) (bool, error) {
		return cond(ctx)
	})
}

// apiError maps an API error to a fluxgate error code, keeping the cause
// wrapped for logs. Messages never carry Secret data: the API server does
// not echo it and callers never format it in.
func apiError(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var fe *fluxgate.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return err
	case apierrors.IsNotFound(err):
		return &wrapped{code: fluxgate.ENOTFOUND, msg: what + ": not found", err: err}
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return &wrapped{code: fluxgate.ECONFLICT, msg: what + ": conflict, try again", err: err}
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return invalidError(err, what)
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return &wrapped{code: fluxgate.EUNAVAILABLE, msg: what + ": fluxgate is not allowed to do this in the cluster", err: err}
	case apimeta.IsNoMatchError(err):
		return &wrapped{code: fluxgate.EUNAVAILABLE, msg: what + ": the Flux CRD is not installed in the cluster", err: err}
	case apierrors.IsServiceUnavailable(err), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err), isConnectionError(err):
		return &wrapped{code: fluxgate.EUNAVAILABLE, msg: what + ": the cluster is unavailable", err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// invalidError turns a 422 from the API server (CRD schema, CEL rules) into
// EINVALID naming the field.
func invalidError(err error, what string) error {
	var status apierrors.APIStatus
	field, msg := "spec", err.Error()
	if errors.As(err, &status) {
		if d := status.Status().Details; d != nil && len(d.Causes) > 0 {
			field = strings.TrimPrefix(d.Causes[0].Field, "spec.")
			msg = d.Causes[0].Message
		}
	}
	return &wrapped{code: fluxgate.EINVALID, field: field, msg: what + ": rejected by the cluster: " + msg, err: err}
}

func isConnectionError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such host") ||
		strings.Contains(s, "i/o timeout") || strings.Contains(s, "EOF") || errors.Is(err, context.DeadlineExceeded)
}

// wrapped is a *fluxgate.Error that keeps its cause for errors.Is/As and logs.
type wrapped struct {
	code, field, msg string
	err              error
}

func (w *wrapped) Error() string { return w.msg + ": " + w.err.Error() }
func (w *wrapped) Unwrap() []error {
	return []error{&fluxgate.Error{Code: w.code, Field: w.field, Message: w.msg}, w.err}
}

// newKubeClient returns a controller-runtime client (with watch) for cfg,
// using fluxgate's scheme and a dynamic REST mapper.
func newKubeClient(cfg *rest.Config) (client.WithWatch, apimeta.RESTMapper, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, nil, err
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes http client: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes rest mapper: %w", err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme, Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, mapper, nil
}
