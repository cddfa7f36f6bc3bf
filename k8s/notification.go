package k8s

import (
	"context"
	"net/url"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// NotificationWebhook makes Flux's notification-controller POST every event
// of a namespace's Flux objects to fluxgate's webhook endpoint.
type NotificationWebhook struct {
	Namespace string
	// Name of the Provider, Alert and Secret (default "fluxgate").
	Name string
	// Address is the webhook URL, e.g. https://fluxgate.example.com/webhooks/flux.
	Address string
	// HMACKey signs each request (X-Signature: sha256=<hex HMAC of the
	// body>) with a generic-hmac Provider; empty uses a plain generic one.
	HMACKey string
	Labels  map[string]string
}

// ApplyNotificationWebhook creates or updates a generic(-hmac) Provider, its
// Secret (address and key under "address" and "token", as Flux reads them)
// and an Alert for every Flux kind fluxgate manages, with server-side apply.
//
// Returns EINVALID for a bad namespace, name or address.
func (c *Client) ApplyNotificationWebhook(ctx context.Context, wh NotificationWebhook) error {
	if wh.Name == "" {
		wh.Name = "fluxgate"
	}
	if len(validation.IsDNS1123Label(wh.Namespace)) > 0 {
		return fluxgate.InvalidField("namespace", "namespace must be a lowercase DNS label")
	}
	if len(validation.IsDNS1123Subdomain(wh.Name)) > 0 {
		return fluxgate.InvalidField("name", "name must be a lowercase DNS name")
	}
	if u, err := url.Parse(wh.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fluxgate.InvalidField("address", "address must be an http(s) URL")
	}
	labels := map[string]string{LabelManagedBy: ManagedByValue}
	for k, v := range wh.Labels {
		labels[k] = v
	}
	om := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: wh.Name, Namespace: wh.Namespace, Labels: labels}
	}
	data := map[string][]byte{"address": []byte(wh.Address)}
	typ := notificationv1beta3.GenericProvider
	if wh.HMACKey != "" {
		typ = notificationv1beta3.GenericHMACProvider
		data["token"] = []byte(wh.HMACKey)
	}
	secret := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: om(), Type: corev1.SecretTypeOpaque, Data: data}
	provider := &notificationv1beta3.Provider{ObjectMeta: om(), Spec: notificationv1beta3.ProviderSpec{
		Type:      typ,
		SecretRef: &meta.LocalObjectReference{Name: wh.Name},
	}}
	provider.SetGroupVersionKind(notificationv1beta3.GroupVersion.WithKind(notificationv1beta3.ProviderKind))
	alert := &notificationv1beta3.Alert{ObjectMeta: om(), Spec: notificationv1beta3.AlertSpec{
		ProviderRef:   meta.LocalObjectReference{Name: wh.Name},
		EventSeverity: "info",
	}}
	alert.SetGroupVersionKind(notificationv1beta3.GroupVersion.WithKind(notificationv1beta3.AlertKind))
	for _, k := range AllKinds() {
		alert.Spec.EventSources = append(alert.Spec.EventSources, notificationv1.CrossNamespaceObjectReference{
			Kind: string(k), Name: "*", MatchLabels: map[string]string{LabelManagedBy: ManagedByValue},
		})
	}
	for _, obj := range []client.Object{secret, provider, alert} {
		u, err := toApplyUnstructured(obj)
		if err != nil {
			return err
		}
		if err := c.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return apiError(scrubbed(err), "apply %s %s/%s", obj.GetObjectKind().GroupVersionKind().Kind, wh.Namespace, wh.Name)
		}
	}
	return nil
}
