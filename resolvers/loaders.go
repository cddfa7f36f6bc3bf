package resolvers

import (
	"context"
	"net/http"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/service"
)

type loadersKey struct{}

// Loaders are per-request dataloaders: many user lookups (or approval
// lists) in one query become one store round trip.
type Loaders struct {
	users     *dataloadgen.Loader[string, *fluxgate.User]
	approvals *dataloadgen.Loader[string, []*fluxgate.Approval]
	required  *dataloadgen.Loader[service.ApprovalsNeeded, int]
}

// NewLoaders returns fresh loaders over svc.
func NewLoaders(svc *service.Service) *Loaders {
	return &Loaders{
		users: dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]*fluxgate.User, []error) {
			users, err := svc.Users(ctx, ids)
			if err != nil {
				return nil, []error{err}
			}
			return users, nil
		}, dataloadgen.WithWait(time.Millisecond)),
		approvals: dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([][]*fluxgate.Approval, []error) {
			lists, err := svc.ApprovalsOf(ctx, ids)
			if err != nil {
				return nil, []error{err}
			}
			return lists, nil
		}, dataloadgen.WithWait(time.Millisecond)),
		required: dataloadgen.NewLoader(func(ctx context.Context, keys []service.ApprovalsNeeded) ([]int, []error) {
			n, err := svc.RequiredApprovalsOf(ctx, keys)
			if err != nil {
				return nil, []error{err}
			}
			return n, nil
		}, dataloadgen.WithWait(time.Millisecond)),
	}
}

// LoaderMiddleware puts fresh loaders in every request's context.
func LoaderMiddleware(svc *service.Service, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), loadersKey{}, NewLoaders(svc))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// WithLoaders returns ctx carrying loaders (for websocket operations).
func WithLoaders(ctx context.Context, svc *service.Service) context.Context {
	return context.WithValue(ctx, loadersKey{}, NewLoaders(svc))
}

func loaders(ctx context.Context) (*Loaders, error) {
	l, ok := ctx.Value(loadersKey{}).(*Loaders)
	if !ok {
		return nil, fluxgate.Errorf(fluxgate.EINTERNAL, "dataloaders missing from context")
	}
	return l, nil
}

func loadUser(ctx context.Context, id string) (*fluxgate.User, error) {
	l, err := loaders(ctx)
	if err != nil {
		return nil, err
	}
	u, err := l.users.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "user %s not found", id)
	}
	return u, nil
}
