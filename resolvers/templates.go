package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate/graph/model"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/templates"
)

func (r *queryResolver) Templates(ctx context.Context) ([]*model.Template, error) {
	ts, err := r.Service.Templates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*model.Template, 0, len(ts))
	for _, t := range ts {
		m := &model.Template{ID: t.ID, Name: t.Name, Description: t.Description, Parameters: []*model.TemplateParameter{}}
		for _, p := range t.Params {
			mp := &model.TemplateParameter{Name: p.Name, Description: p.Description, Required: p.Required}
			if p.Default != "" {
				d := p.Default
				mp.Default = &d
			}
			m.Parameters = append(m.Parameters, mp)
		}
		out = append(out, m)
	}
	return out, nil
}

func (r *mutationResolver) ApplyTemplate(ctx context.Context, in model.ApplyTemplateInput) (*model.ApplyTemplatePayload, error) {
	params := make([]templates.Value, 0, len(in.Params))
	for _, p := range in.Params {
		params = append(params, templates.Value{Name: p.Name, Value: p.Value})
	}
	res, err := r.Service.ApplyTemplate(ctx, service.ApplyTemplateInput{
		ProjectID: in.ProjectID, RepositoryID: in.RepositoryID, TemplateID: in.TemplateID, Params: params,
	})
	if err != nil {
		return nil, err
	}
	out := &model.ApplyTemplatePayload{
		CommitSha: res.CommitSHA, Branch: res.Branch, Created: res.Created, Kept: res.Kept,
		CreatedResources: res.CreatedResources, SkippedResources: []*model.SkippedResource{},
	}
	for _, s := range res.SkippedResources {
		out.SkippedResources = append(out.SkippedResources, &model.SkippedResource{Kind: s.Kind, Name: s.Name, Existing: s.Existing})
	}
	return out, nil
}

func (r *queryResolver) Onboarding(ctx context.Context, projectID string) (*model.Onboarding, error) {
	o, err := r.Service.Onboarding(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := &model.Onboarding{Steps: []*model.OnboardingStep{}, Complete: o.Complete()}
	for _, s := range o.Steps {
		st := &model.OnboardingStep{ID: s.ID, Title: s.Title, Done: s.Done, Detail: s.Detail}
		out.Steps = append(out.Steps, st)
		if o.Next != nil && o.Next.ID == s.ID {
			out.NextStep = st
		}
	}
	if o.NextAction != "" {
		a := o.NextAction
		out.NextAction = &a
	}
	return out, nil
}
