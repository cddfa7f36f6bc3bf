package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/fluxgate/fluxgate"
)

// Onboarding step ids, in order.
const (
	StepRepository     = "repository"
	StepDeploymentMode = "deployment-mode"
	StepEnvironments   = "environments"
	StepGitOpsResource = "gitops-resources"
	StepAutoSync       = "auto-sync"
)

// OnboardingStep is one step of setting a project up.
type OnboardingStep struct {
	ID    string
	Title string
	Done  bool
	// Detail says what is there, or what is missing, in a sentence.
	Detail string
}

// Onboarding is a project's setup checklist.
type Onboarding struct {
	Steps []OnboardingStep
	// Next is the first step not done (nil when the project is set up).
	Next *OnboardingStep
	// NextAction says in a sentence what to do next ("" when complete).
	NextAction string
}

// Complete reports whether every step is done.
func (o *Onboarding) Complete() bool { return o.Next == nil }

// Onboarding computes a project's setup checklist from what exists (needs
// read on the project):
//
//  1. repository: the project has a Git repository connected.
//  2. deployment mode: the project has a deployment mode. Every project
//     gets one when it is created (hybrid unless another is given) and
//     updateProject changes it; the step shows which one is in force so the
//     user can confirm or change it. (Telling an explicit choice from the
//     default would need a new column; the default is a valid choice.)
//  3. environments: the project has at least one environment.
//  4. GitOps resources: every GitOps environment has a Kustomization or a
//     HelmRelease (applyTemplate creates them, or they were created by
//     hand). Done without further checks when the project does not use
//     GitOps.
//  5. auto-sync: autoSync is a per-environment switch, so it always has a
//     value; "decided" means the cluster does what it says. An environment
//     with autoSync on must not have its Kustomizations/HelmReleases
//     suspended (Flux would not apply new commits, contrary to the
//     setting); autoSync off is never the default, so it is a decision by
//     itself (Flux then applies a revision on a sync or an approved
//     deploy).
func (s *Service) Onboarding(ctx context.Context, projectID string) (*Onboarding, error) {
	p, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead)
	if err != nil {
		return nil, err
	}
	repos, err := s.store.ListRepositories(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	envs, err := s.store.ListEnvironments(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	resources, err := s.allResources(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	o := &Onboarding{}
	add := func(st OnboardingStep, next string) {
		o.Steps = append(o.Steps, st)
		if !st.Done && o.Next == nil {
			o.Next = &o.Steps[len(o.Steps)-1]
			o.NextAction = next
		}
	}

	// 1. Repository.
	st := OnboardingStep{ID: StepRepository, Title: "Connect a Git repository", Done: len(repos) > 0}
	if st.Done {
		st.Detail = fmt.Sprintf("%s is connected.", repos[0].FullName)
		if len(repos) > 1 {
			st.Detail = fmt.Sprintf("%d repositories are connected.", len(repos))
		}
	} else {
		st.Detail = "No Git repository is connected to this project."
	}
	add(st, "Connect a repository: give the clone URL of the Git repository that holds (or will hold) this project's manifests.")

	// 2. Deployment mode.
	st = OnboardingStep{ID: StepDeploymentMode, Title: "Choose how changes are deployed", Done: p.DeploymentMode.Valid()}
	if st.Done {
		st.Detail = fmt.Sprintf("Deployment mode is %s: %s", p.DeploymentMode, modeSentence(p.DeploymentMode))
	} else {
		st.Detail = "No deployment mode is set."
	}
	add(st, "Choose a deployment mode: ui-first (deploy from the UI), git-first (push to Git) or hybrid (both).")

	// 3. Environments.
	st = OnboardingStep{ID: StepEnvironments, Title: "Create environments", Done: len(envs) > 0}
	if st.Done {
		var names []string
		for _, e := range envs {
			names = append(names, e.Name)
		}
		st.Detail = fmt.Sprintf("%d environment(s): %s.", len(envs), strings.Join(names, ", "))
	} else {
		st.Detail = "The project has no environment to deploy to."
	}
	add(st, "Create an environment, such as development, staging or production.")

	// 4. GitOps resources, and 5. auto-sync, per GitOps environment.
	delivery := map[string][]*fluxgate.GitOpsResource{}
	for _, r := range resources {
		if r.EnvironmentID != nil && (r.Kind == fluxgate.KindKustomization || r.Kind == fluxgate.KindHelmRelease) {
			delivery[*r.EnvironmentID] = append(delivery[*r.EnvironmentID], r)
		}
	}
	var gitopsEnvs, missing, suspended []string
	for _, e := range envs {
		if !p.GitOpsEnabled || !e.GitOps.Enabled {
			continue
		}
		gitopsEnvs = append(gitopsEnvs, e.Name)
		if len(delivery[e.ID]) == 0 {
			missing = append(missing, e.Name)
			continue
		}
		if e.GitOps.AutoSync {
			for _, r := range delivery[e.ID] {
				if r.Suspended {
					suspended = append(suspended, fmt.Sprintf("%s (%s %s)", e.Name, r.Kind, r.Name))
				}
			}
		}
	}
	st = OnboardingStep{ID: StepGitOpsResource, Title: "Create the GitOps resources"}
	switch {
	case !p.GitOpsEnabled:
		st.Done, st.Detail = true, "The project does not use GitOps: deploys are applied directly."
	case len(envs) == 0:
		st.Detail = "Create an environment first."
	case len(gitopsEnvs) == 0:
		st.Done, st.Detail = true, "No environment has GitOps enabled."
	case len(missing) == 0:
		st.Done, st.Detail = true, fmt.Sprintf("Every GitOps environment (%s) has a Kustomization or HelmRelease.", strings.Join(gitopsEnvs, ", "))
	default:
		st.Detail = fmt.Sprintf("No Kustomization or HelmRelease yet for: %s.", strings.Join(missing, ", "))
	}
	add(st, "Apply a template (for example web-app-basic) to scaffold k8s/ in the repository and create the Flux resources for each environment.")

	st = OnboardingStep{ID: StepAutoSync, Title: "Decide on auto-sync per environment"}
	switch {
	case !p.GitOpsEnabled:
		st.Done, st.Detail = true, "The project does not use GitOps."
	case len(gitopsEnvs) == 0:
		st.Done, st.Detail = len(envs) > 0, "No environment has GitOps enabled."
	case len(missing) > 0:
		st.Detail = "Auto-sync takes effect once every GitOps environment has its Flux resources."
	case len(suspended) > 0:
		st.Detail = fmt.Sprintf("Auto-sync is on but Flux is suspended for: %s.", strings.Join(suspended, ", "))
	default:
		st.Done = true
		var parts []string
		for _, e := range envs {
			if p.GitOpsEnabled && e.GitOps.Enabled {
				state := "on (Flux applies every new commit)"
				if !e.GitOps.AutoSync {
					state = "off (a sync or an approved deploy applies it)"
				}
				parts = append(parts, e.Name+": "+state)
			}
		}
		st.Detail = "Auto-sync " + strings.Join(parts, "; ") + "."
	}
	next := "Turn auto-sync on or off for each environment: on lets Flux apply new commits by itself, off waits for a sync or an approved deploy."
	if len(suspended) > 0 {
		next = "Resume the suspended Flux resources of environments with auto-sync on, or turn auto-sync off for them."
	}
	add(st, next)
	return o, nil
}

func modeSentence(m fluxgate.DeploymentMode) string {
	switch m {
	case fluxgate.DeploymentModeUIFirst:
		return "people deploy from the UI and fluxgate commits to Git."
	case fluxgate.DeploymentModeGitFirst:
		return "people push to Git and fluxgate shows what Flux applies."
	}
	return "deploy from the UI or push to Git; both end in the same history."
}
