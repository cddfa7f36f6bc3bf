package k8s

import (
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// NewScheme returns a scheme with the core Kubernetes types, CRDs and the
// Flux API types fluxgate uses.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		apiextensionsv1.AddToScheme,
		sourcev1.AddToScheme,
		kustomizev1.AddToScheme,
		helmv2.AddToScheme,
		imagev1.AddToScheme,
		notificationv1beta3.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}

// GroupVersionKind returns the Flux API version fluxgate uses for kind.
func GroupVersionKind(kind fluxgate.ResourceKind) (schema.GroupVersionKind, error) {
	switch kind {
	case fluxgate.KindGitRepository, fluxgate.KindHelmRepository:
		return sourcev1.GroupVersion.WithKind(string(kind)), nil
	case fluxgate.KindKustomization:
		return kustomizev1.GroupVersion.WithKind(string(kind)), nil
	case fluxgate.KindHelmRelease:
		return helmv2.GroupVersion.WithKind(string(kind)), nil
	case fluxgate.KindImageRepository, fluxgate.KindImagePolicy:
		return imagev1.GroupVersion.WithKind(string(kind)), nil
	}
	return schema.GroupVersionKind{}, fluxgate.InvalidField("kind", "unknown resource kind %q", kind)
}

// NewObject returns an empty typed Flux object of kind with its
// apiVersion/kind set.
func NewObject(kind fluxgate.ResourceKind) (client.Object, error) {
	var obj client.Object
	switch kind {
	case fluxgate.KindGitRepository:
		obj = &sourcev1.GitRepository{}
	case fluxgate.KindHelmRepository:
		obj = &sourcev1.HelmRepository{}
	case fluxgate.KindKustomization:
		obj = &kustomizev1.Kustomization{}
	case fluxgate.KindHelmRelease:
		obj = &helmv2.HelmRelease{}
	case fluxgate.KindImageRepository:
		obj = &imagev1.ImageRepository{}
	case fluxgate.KindImagePolicy:
		obj = &imagev1.ImagePolicy{}
	default:
		return nil, fluxgate.InvalidField("kind", "unknown resource kind %q", kind)
	}
	gvk, _ := GroupVersionKind(kind)
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

// newList returns an empty typed list of kind.
func newList(kind fluxgate.ResourceKind) (client.ObjectList, error) {
	switch kind {
	case fluxgate.KindGitRepository:
		return &sourcev1.GitRepositoryList{}, nil
	case fluxgate.KindHelmRepository:
		return &sourcev1.HelmRepositoryList{}, nil
	case fluxgate.KindKustomization:
		return &kustomizev1.KustomizationList{}, nil
	case fluxgate.KindHelmRelease:
		return &helmv2.HelmReleaseList{}, nil
	case fluxgate.KindImageRepository:
		return &imagev1.ImageRepositoryList{}, nil
	case fluxgate.KindImagePolicy:
		return &imagev1.ImagePolicyList{}, nil
	}
	return nil, fluxgate.InvalidField("kind", "unknown resource kind %q", kind)
}

// kindOf returns the domain kind of a typed Flux object.
func kindOf(obj client.Object) (fluxgate.ResourceKind, bool) {
	switch obj.(type) {
	case *sourcev1.GitRepository:
		return fluxgate.KindGitRepository, true
	case *sourcev1.HelmRepository:
		return fluxgate.KindHelmRepository, true
	case *kustomizev1.Kustomization:
		return fluxgate.KindKustomization, true
	case *helmv2.HelmRelease:
		return fluxgate.KindHelmRelease, true
	case *imagev1.ImageRepository:
		return fluxgate.KindImageRepository, true
	case *imagev1.ImagePolicy:
		return fluxgate.KindImagePolicy, true
	}
	return "", false
}

// AllKinds returns every kind fluxgate manages, sources before the objects
// that use them.
func AllKinds() []fluxgate.ResourceKind {
	return []fluxgate.ResourceKind{
		fluxgate.KindGitRepository,
		fluxgate.KindHelmRepository,
		fluxgate.KindImageRepository,
		fluxgate.KindKustomization,
		fluxgate.KindHelmRelease,
		fluxgate.KindImagePolicy,
	}
}
