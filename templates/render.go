package templates

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelManagedBy = "app.kubernetes.io/managed-by"
)

// Files returns the files the instance scaffolds, by repository path: the
// kustomize base under k8s/base/ and an overlay per environment under
// k8s/overlays/<env>/. microservice-helm scaffolds nothing.
func (in *Instance) Files(envs []string) (map[string][]byte, error) {
	files := map[string][]byte{}
	var base []any
	var baseNames []string
	var patch func(env string) any
	var patchFile string
	switch in.Template.ID {
	case WebAppBasic:
		base = []any{in.deployment(), in.service()}
		baseNames = []string{"deployment.yaml", "service.yaml"}
		patch, patchFile = in.deploymentPatch, "deployment.yaml"
	case CronJob:
		base = []any{in.cronJob()}
		baseNames = []string{"cronjob.yaml"}
		patch, patchFile = in.cronJobPatch, "cronjob.yaml"
	default:
		return files, nil
	}
	for i, obj := range base {
		b, err := marshal(obj)
		if err != nil {
			return nil, err
		}
		files["k8s/base/"+baseNames[i]] = b
	}
	k, err := marshal(&kusttypes.Kustomization{
		TypeMeta:  kusttypes.TypeMeta{APIVersion: kusttypes.KustomizationVersion, Kind: kusttypes.KustomizationKind},
		Resources: baseNames,
		Labels:    []kusttypes.Label{{Pairs: map[string]string{labelManagedBy: "fluxgate"}}},
	})
	if err != nil {
		return nil, err
	}
	files["k8s/base/kustomization.yaml"] = k
	for _, env := range envs {
		if err := validEnv(env); err != nil {
			return nil, err
		}
		dir := OverlayPath(env)
		ov := &kusttypes.Kustomization{
			TypeMeta:   kusttypes.TypeMeta{APIVersion: kusttypes.KustomizationVersion, Kind: kusttypes.KustomizationKind},
			Resources:  []string{"../../base"},
			NameSuffix: "-" + env,
			Labels: []kusttypes.Label{{
				Pairs: map[string]string{labelInstance: in.ObjectName(env)},
				// The environments share the project's namespace: each
				// Deployment must select its own pods only.
				IncludeSelectors: in.Template.ID == WebAppBasic,
				IncludeTemplates: in.Template.ID != WebAppBasic,
			}},
			Patches: []kusttypes.Patch{{Path: patchFile}},
		}
		if files[dir+"/kustomization.yaml"], err = marshal(ov); err != nil {
			return nil, err
		}
		if files[dir+"/"+patchFile], err = marshal(patch(env)); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func (in *Instance) container() corev1.Container {
	return corev1.Container{Name: in.name, Image: in.image}
}

func (in *Instance) deployment() *appsv1.Deployment {
	labels := map[string]string{labelName: in.name}
	probe := func(delay int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: in.healthPath, Port: intstr.FromString("http"),
			}},
			InitialDelaySeconds: delay, PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3,
		}
	}
	c := in.container()
	c.ImagePullPolicy = corev1.PullIfNotPresent
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: in.port, Protocol: corev1.ProtocolTCP}}
	c.ReadinessProbe = probe(5)
	c.LivenessProbe = probe(15)
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: in.name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &in.replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
			},
		},
	}
}

// deploymentPatch is an environment's strategic-merge patch: the image and
// replicas a UI deploy to that environment edits.
func (in *Instance) deploymentPatch(string) any {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: in.name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &in.replicas,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{in.container()}}},
		},
	}
}

func (in *Instance) service() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: in.name, Labels: map[string]string{labelName: in.name}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{labelName: in.name},
			Ports: []corev1.ServicePort{{
				Name: "http", Port: in.servicePort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

func (in *Instance) cronJob() *batchv1.CronJob {
	labels := map[string]string{labelName: in.name}
	c := in.container()
	c.ImagePullPolicy = corev1.PullIfNotPresent
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	history := int32(3)
	failed := int32(1)
	backoff := int32(2)
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: in.name, Labels: labels},
		Spec: batchv1.CronJobSpec{
			Schedule:                   in.schedule,
			ConcurrencyPolicy:          batchv1.ConcurrencyPolicy(in.concurrency),
			SuccessfulJobsHistoryLimit: &history,
			FailedJobsHistoryLimit:     &failed,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				BackoffLimit: &backoff,
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyOnFailure,
						Containers:    []corev1.Container{c},
					},
				},
			}},
		},
	}
}

// cronJobPatch is an environment's patch: schedule and image.
func (in *Instance) cronJobPatch(string) any {
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: in.name},
		Spec: batchv1.CronJobSpec{
			Schedule: in.schedule,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{in.container()}},
			}}},
		},
	}
}

// marshal encodes obj as YAML via JSON, dropping what the API types write
// for unset fields (null, {}, creationTimestamp, status), so the files
// hold what was set and nothing else.
func marshal(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("decode %T: %w", obj, err)
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	prune(m)
	return yaml.Marshal(m)
}

// prune removes nulls and empty objects and lists, depth first.
func prune(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		for k, c := range t {
			if md, ok := c.(map[string]any); ok {
				delete(md, "creationTimestamp")
			}
			if prune(c) {
				delete(t, k)
			}
		}
		return len(t) == 0
	case []any:
		for _, c := range t {
			prune(c)
		}
		return len(t) == 0
	}
	return false
}
