package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// ResourceRef is a Flux object and the fluxgate ids from its labels.
type ResourceRef struct {
	ObjectKey
	ProjectID     string `json:"projectId"`
	EnvironmentID string `json:"environmentId,omitempty"`
	ResourceID    string `json:"resourceId"`
}

// ResourceChange is a Flux object's new state.
type ResourceChange struct {
	ResourceRef
	Generation int64
	Status     fluxgate.ResourceStatusUpdate
	// Object is the watcher's cached copy: read it, never modify it.
	Object client.Object
}

// Sink consumes what the Watcher sees. Calls for one object are never
// concurrent; calls for different objects may be. An error makes the
// watcher retry the call with backoff (a few times, then it is logged and
// dropped until the next change or repair).
type Sink interface {
	// ResourceChanged: an object was added or its status changed (also
	// called for every object by the repair pass after a relist).
	ResourceChanged(ctx context.Context, ch ResourceChange) error
	// ResourceDeleted: an object the watcher knew is gone from the cluster.
	ResourceDeleted(ctx context.Context, ref ResourceRef) error
	// FluxEvent: a Flux controller recorded a new event about a managed
	// object (ProjectID and ResourceID set from the object's labels).
	FluxEvent(ctx context.Context, ev *fluxgate.FluxEvent) error
	// Resync lists every managed object present in the watched namespaces
	// after the initial sync and after each relist. Rows whose object is
	// not present vanished while nobody watched (mark them failed, "missing
	// in cluster"). Kinds whose CRD the cluster does not serve have no
	// objects, so their rows are missing too.
	Resync(ctx context.Context, present []ResourceRef) error
}

// WatcherOptions configure a Watcher. Zero values take the defaults.
type WatcherOptions struct {
	// Namespaces to watch; empty watches all namespaces (objects are still
	// restricted by LabelSelector).
	Namespaces []string
	// LabelSelector restricts the Flux objects watched (default
	// ManagedSelector: app.kubernetes.io/managed-by=fluxgate).
	LabelSelector string
	// Kinds to watch (default AllKinds). Kinds whose CRD is not installed are
	// skipped with a log line.
	Kinds []fluxgate.ResourceKind
	// NoEvents disables the core/v1 Event informer.
	NoEvents bool
	// NoWorkloads disables the workload informers that run when the Sink
	// is also a WorkloadSink.
	NoWorkloads bool
	// WorkloadNamespaces to watch workloads in; empty watches all
	// namespaces (a Kustomization applies to any namespace).
	WorkloadNamespaces []string
	// Workers calling the sink (default 4).
	Workers int
	// MaxRetries of a failing sink call (default 5).
	MaxRetries int
	// RepairDelay after a relist before the repair pass (default 500ms),
	// so that the informer cache has taken in the new list.
	RepairDelay time.Duration
	// SyncTimeout bounds the initial list (default 2m).
	SyncTimeout time.Duration
	// Metrics to count (nil: not counted).
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

func (o *WatcherOptions) defaults() {
	if o.LabelSelector == "" {
		o.LabelSelector = ManagedSelector
	}
	if len(o.Kinds) == 0 {
		o.Kinds = AllKinds()
	}
	if len(o.Namespaces) == 0 {
		o.Namespaces = []string{metav1.NamespaceAll}
	}
	if len(o.WorkloadNamespaces) == 0 {
		o.WorkloadNamespaces = []string{metav1.NamespaceAll}
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 5
	}
	if o.RepairDelay <= 0 {
		o.RepairDelay = 500 * time.Millisecond
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Watcher runs informers on the Flux kinds fluxgate manages and on core/v1
// Events about them, and reports changes to a Sink; when the Sink is also a
// WorkloadSink, it watches the workloads Flux applied too. Run it only on
// the replica holding the lease (RunLeaderElected).
type Watcher struct {
	c         client.WithWatch
	mapper    apimeta.RESTMapper
	sink      Sink
	workloads WorkloadSink // nil: no workload informers
	opts      WatcherOptions
	sel       labels.Selector

	mu      sync.RWMutex
	running bool
	run     *watchRun // current synced run, nil otherwise
}

// NewWatcher returns a Watcher for the cluster cfg points at.
func NewWatcher(cfg *rest.Config, sink Sink, opts WatcherOptions) (*Watcher, error) {
	c, mapper, err := newKubeClient(cfg)
	if err != nil {
		return nil, err
	}
	return newWatcher(c, mapper, sink, opts)
}

func newWatcher(c client.WithWatch, mapper apimeta.RESTMapper, sink Sink, opts WatcherOptions) (*Watcher, error) {
	if sink == nil {
		return nil, errors.New("new watcher: sink is required")
	}
	opts.defaults()
	sel, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return nil, fmt.Errorf("parse label selector: %w", err)
	}
	w := &Watcher{c: c, mapper: mapper, sink: sink, opts: opts, sel: sel}
	if ws, ok := sink.(WorkloadSink); ok && !opts.NoWorkloads {
		w.workloads = ws
	}
	return w, nil
}

// queue items.
type itemType uint8

const (
	itemObject itemType = iota
	itemEvent
	itemRepair
	itemWorkload // key: Kind is the apps/v1 kind
)

type item struct {
	typ itemType
	key ObjectKey // itemObject; itemEvent: Kind empty, namespace/name of the Event
	// relist: itemRepair after a relist (report every object again).
	relist bool
}

// informerKey identifies one informer.
type informerKey struct {
	kind      fluxgate.ResourceKind // "" for Events
	namespace string
}

// objState is what the watcher remembers of one object.
type objState struct {
	ref   ResourceRef
	sent  bool
	last  uint64 // statusHash of the last status reported
	gen   int64
	ready bool
	m     metricState
}

// watchRun is the state of one Run.
type watchRun struct {
	w         *Watcher
	queue     workqueue.TypedRateLimitingInterface[item]
	informers map[informerKey]toolscache.SharedIndexInformer
	wl        *workloadState // nil without a WorkloadSink
	kinds     []fluxgate.ResourceKind
	synced    atomic.Bool

	mu     sync.Mutex
	objs   map[ObjectKey]*objState
	events map[string]string  // event namespace/name → last reported resourceVersion
	forced map[ObjectKey]bool // to report even if unchanged (repair after relist)
	ready  map[fluxgate.ResourceKind]int
	lists  map[informerKey]int // list calls per informer (the first is the initial sync)
}

// Run starts the informers, waits for their initial sync, reports every
// object present (Resync) and then every change until ctx is done. It
// returns nil when ctx is cancelled, or an error if the initial sync fails.
// A Watcher runs once at a time; Run may be called again after it returns.
func (w *Watcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &watchRun{
		w:         w,
		queue:     workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[item](), workqueue.TypedRateLimitingQueueConfig[item]{Name: "fluxgate-watcher"}),
		informers: map[informerKey]toolscache.SharedIndexInformer{},
		objs:      map[ObjectKey]*objState{},
		events:    map[string]string{},
		forced:    map[ObjectKey]bool{},
		ready:     map[fluxgate.ResourceKind]int{},
		lists:     map[informerKey]int{},
	}
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("watcher is already running")
	}
	w.running = true
	w.mu.Unlock()
	var wg sync.WaitGroup
	defer func() {
		cancel()
		r.queue.ShutDown()
		wg.Wait()
		w.mu.Lock()
		w.run, w.running = nil, false
		w.mu.Unlock()
		if m := w.opts.Metrics; m != nil {
			for _, k := range r.kinds {
				m.ResourcesReady.WithLabelValues(string(k)).Set(0)
			}
		}
	}()

	for _, kind := range w.opts.Kinds {
		gvk, err := GroupVersionKind(kind)
		if err != nil {
			return err
		}
		if _, err := w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			if apimeta.IsNoMatchError(err) {
				w.opts.Logger.WarnContext(ctx, "flux kind not served by the cluster; not watching it", "kind", kind)
				continue
			}
			return fmt.Errorf("map %s: %w", kind, err)
		}
		r.kinds = append(r.kinds, kind)
		for _, ns := range w.opts.Namespaces {
			if err := r.addInformer(ctx, informerKey{kind: kind, namespace: ns}); err != nil {
				return err
			}
		}
	}
	if !r.startAndSync(ctx, &wg, func(k informerKey) bool { return k.kind != "" }) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("watcher: initial sync of flux objects timed out")
	}
	if !w.opts.NoEvents {
		for _, ns := range w.opts.Namespaces {
			if err := r.addInformer(ctx, informerKey{namespace: ns}); err != nil {
				return err
			}
		}
		if !r.startAndSync(ctx, &wg, func(k informerKey) bool { return k.kind == "" }) {
			if ctx.Err() != nil {
				return nil
			}
			return errors.New("watcher: initial sync of events timed out")
		}
	}
	if w.workloads != nil {
		if err := r.addWorkloadInformers(ctx); err != nil {
			return err
		}
		r.startWorkloads(ctx, &wg)
	}
	for i := 0; i < w.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r.processNext(ctx) {
			}
		}()
	}
	r.queue.Add(item{typ: itemRepair})
	r.synced.Store(true)
	// Published only now: the informer set no longer changes.
	w.mu.Lock()
	w.run = r
	w.mu.Unlock()
	w.opts.Logger.InfoContext(ctx, "flux watcher synced", "kinds", r.kinds, "objects", r.count(), "workloads", w.workloads != nil)
	<-ctx.Done()
	return nil
}

// Synced reports whether a run has finished its initial sync.
func (w *Watcher) Synced() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.run != nil && w.run.synced.Load()
}

// Get returns the cached object and its mapped status, if the watcher is
// running and has it. The object must not be modified.
func (w *Watcher) Get(key ObjectKey) (client.Object, fluxgate.ResourceStatusUpdate, bool) {
	w.mu.RLock()
	r := w.run
	w.mu.RUnlock()
	if r == nil {
		return nil, fluxgate.ResourceStatusUpdate{}, false
	}
	obj, ok := r.get(key)
	if !ok {
		return nil, fluxgate.ResourceStatusUpdate{}, false
	}
	return obj, StatusOf(obj), true
}

// listWatch is a ListerWatcher that always uses paged LIST + WATCH (not the
// streaming watch-list), so that every relist is seen by ListWithContextFunc.
type listWatch struct{ toolscache.ListWatch }

func (listWatch) IsWatchListSemanticsUnSupported() bool { return true }

func (r *watchRun) addInformer(ctx context.Context, k informerKey) error {
	w := r.w
	newList := func() (client.ObjectList, error) {
		if k.kind == "" {
			return &corev1.EventList{}, nil
		}
		return newList(k.kind)
	}
	var exampleObj runtime.Object
	if k.kind == "" {
		exampleObj = &corev1.Event{}
	} else {
		o, err := NewObject(k.kind)
		if err != nil {
			return err
		}
		exampleObj = o
	}
	listOpts := func(raw *metav1.ListOptions) *client.ListOptions {
		o := &client.ListOptions{Namespace: k.namespace, Raw: raw}
		if k.kind != "" {
			o.LabelSelector = w.sel
		}
		return o
	}
	lw := &listWatch{toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list, err := newList()
			if err != nil {
				return nil, err
			}
			if err := w.c.List(ctx, list, listOpts(&opts)); err != nil {
				return nil, err
			}
			if opts.Continue == "" {
				r.listed(k)
			}
			return list, nil
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			list, err := newList()
			if err != nil {
				return nil, err
			}
			return w.c.Watch(ctx, list, listOpts(&opts))
		},
	}}
	inf := toolscache.NewSharedIndexInformerWithOptions(lw, exampleObj, toolscache.SharedIndexInformerOptions{
		ObjectDescription: fmt.Sprintf("%s in %q", kindName(k.kind), k.namespace),
	})
	if err := inf.SetTransform(stripForCache); err != nil {
		return fmt.Errorf("informer transform: %w", err)
	}
	var handler toolscache.ResourceEventHandler
	if k.kind == "" {
		handler = toolscache.FilteringResourceEventHandler{
			FilterFunc: func(obj any) bool {
				ev, ok := tombstoned(obj).(*corev1.Event)
				return ok && IsFluxEvent(ev)
			},
			Handler: toolscache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { r.enqueueEvent(obj) },
				UpdateFunc: func(_, obj any) { r.enqueueEvent(obj) },
				DeleteFunc: func(obj any) { r.forgetEvent(obj) },
			},
		}
	} else {
		enqueue := func(obj any) {
			if o, ok := tombstoned(obj).(client.Object); ok {
				r.queue.Add(item{typ: itemObject, key: ObjectKey{Kind: k.kind, Namespace: o.GetNamespace(), Name: o.GetName()}})
			}
		}
		handler = toolscache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
			DeleteFunc: enqueue,
		}
	}
	if _, err := inf.AddEventHandler(handler); err != nil {
		return fmt.Errorf("informer handler: %w", err)
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, _ *toolscache.Reflector, err error) {
		if !errors.Is(err, context.Canceled) {
			w.opts.Logger.WarnContext(ctx, "flux watch failed; relisting", "kind", kindName(k.kind), "namespace", k.namespace, "err", err)
		}
	}); err != nil {
		return fmt.Errorf("informer error handler: %w", err)
	}
	r.informers[k] = inf
	return nil
}

func kindName(k fluxgate.ResourceKind) string {
	if k == "" {
		return "Event"
	}
	return string(k)
}

// listed records a LIST; any list after the first is a relist after a lost
// watch, followed by a repair pass.
func (r *watchRun) listed(k informerKey) {
	r.mu.Lock()
	r.lists[k]++
	n := r.lists[k]
	r.mu.Unlock()
	if n <= 1 || !r.synced.Load() {
		return
	}
	if m := r.w.opts.Metrics; m != nil {
		m.Relists.WithLabelValues(kindName(k.kind)).Inc()
	}
	if k.kind != "" {
		r.queue.AddAfter(item{typ: itemRepair, relist: true}, r.w.opts.RepairDelay)
	}
}

func (r *watchRun) startAndSync(ctx context.Context, wg *sync.WaitGroup, which func(informerKey) bool) bool {
	var synced []toolscache.InformerSynced
	for k, inf := range r.informers {
		if !which(k) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			inf.RunWithContext(ctx)
		}()
		synced = append(synced, inf.HasSynced)
	}
	sctx, cancel := context.WithTimeout(ctx, r.w.opts.SyncTimeout)
	defer cancel()
	return toolscache.WaitForCacheSync(sctx.Done(), synced...)
}

// stripForCache drops what the watcher never reads, to keep the cache small.
func stripForCache(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a != nil {
			if _, ok := a[corev1.LastAppliedConfigAnnotation]; ok {
				delete(a, corev1.LastAppliedConfigAnnotation)
				o.SetAnnotations(a)
			}
		}
	}
	return obj, nil
}

func tombstoned(obj any) any {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func (r *watchRun) get(key ObjectKey) (client.Object, bool) {
	return lookup(r.informers, key)
}

// lookup finds key in the cache of the informer of its kind and namespace.
func lookup(informers map[informerKey]toolscache.SharedIndexInformer, key ObjectKey) (client.Object, bool) {
	for k, inf := range informers {
		if k.kind != key.Kind || (k.namespace != "" && k.namespace != key.Namespace) {
			continue
		}
		obj, ok, err := inf.GetIndexer().GetByKey(key.Namespace + "/" + key.Name)
		if err == nil && ok {
			return obj.(client.Object), true
		}
	}
	return nil, false
}

func (r *watchRun) count() int {
	n := 0
	for k, inf := range r.informers {
		if k.kind != "" {
			n += len(inf.GetIndexer().ListKeys())
		}
	}
	return n
}

func (r *watchRun) enqueueEvent(obj any) {
	if ev, ok := tombstoned(obj).(*corev1.Event); ok {
		r.queue.Add(item{typ: itemEvent, key: ObjectKey{Namespace: ev.Namespace, Name: ev.Name}})
	}
}

func (r *watchRun) forgetEvent(obj any) {
	if ev, ok := tombstoned(obj).(*corev1.Event); ok {
		r.mu.Lock()
		delete(r.events, ev.Namespace+"/"+ev.Name)
		r.mu.Unlock()
	}
}

func (r *watchRun) processNext(ctx context.Context) bool {
	it, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(it)
	var err error
	switch it.typ {
	case itemObject:
		err = r.syncObject(ctx, it)
	case itemEvent:
		err = r.syncEvent(ctx, it.key.Namespace, it.key.Name)
	case itemRepair:
		err = r.repair(ctx, it.relist)
	case itemWorkload:
		err = r.syncWorkload(ctx, it.key)
	}
	switch {
	case err == nil || ctx.Err() != nil:
		r.queue.Forget(it)
	case r.queue.NumRequeues(it) < r.w.opts.MaxRetries:
		r.w.opts.Logger.WarnContext(ctx, "flux watcher sink failed; retrying", "item", it.key.String(), "err", err)
		r.queue.AddRateLimited(it)
	default:
		r.w.opts.Logger.ErrorContext(ctx, "flux watcher sink failed; giving up", "item", it.key.String(), "err", err)
		r.queue.Forget(it)
	}
	return true
}

func refOf(key ObjectKey, obj client.Object) ResourceRef {
	l := obj.GetLabels()
	return ResourceRef{ObjectKey: key, ProjectID: l[LabelProject], EnvironmentID: l[LabelEnvironment], ResourceID: l[LabelResourceID]}
}

func (r *watchRun) syncObject(ctx context.Context, it item) error {
	key := it.key
	obj, ok := r.get(key)
	r.mu.Lock()
	st := r.objs[key]
	if !ok {
		if st == nil {
			r.mu.Unlock()
			return nil
		}
		delete(r.objs, key)
		if st.ready {
			r.ready[key.Kind]--
			r.setReadyGauge(key.Kind)
		}
		r.mu.Unlock()
		return r.w.sink.ResourceDeleted(ctx, st.ref)
	}
	first := st == nil
	if first {
		st = &objState{}
		r.objs[key] = st
	}
	st.ref = refOf(key, obj)
	u := StatusOf(obj)
	r.observeMetrics(key.Kind, st, obj, u, first)
	if ready := u.Status == fluxgate.ResourceReady; ready != st.ready {
		st.ready = ready
		if ready {
			r.ready[key.Kind]++
		} else {
			r.ready[key.Kind]--
		}
		r.setReadyGauge(key.Kind)
	}
	sum := statusHash(u)
	unchanged := st.sent && st.gen == obj.GetGeneration() && st.last == sum
	ch := ResourceChange{ResourceRef: st.ref, Generation: obj.GetGeneration(), Status: u, Object: obj}
	r.mu.Unlock()
	r.mu.Lock()
	force := r.forced[key]
	delete(r.forced, key)
	r.mu.Unlock()
	if unchanged && !force {
		return nil
	}
	if err := r.w.sink.ResourceChanged(ctx, ch); err != nil {
		if force {
			r.mu.Lock()
			r.forced[key] = true // the retry must report it too
			r.mu.Unlock()
		}
		return err
	}
	r.mu.Lock()
	st.sent, st.last, st.gen = true, sum, ch.Generation
	r.mu.Unlock()
	return nil
}

// statusHash fingerprints a status update, so that the watcher remembers
// what it last reported in 8 bytes instead of a copy of the status.
func statusHash(u fluxgate.ResourceStatusUpdate) uint64 {
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(u)
	return h.Sum64()
}

// setReadyGauge must be called with r.mu held.
func (r *watchRun) setReadyGauge(kind fluxgate.ResourceKind) {
	if m := r.w.opts.Metrics; m != nil {
		m.ResourcesReady.WithLabelValues(string(kind)).Set(float64(r.ready[kind]))
	}
}

func (r *watchRun) syncEvent(ctx context.Context, namespace, name string) error {
	var ev *corev1.Event
	for k, inf := range r.informers {
		if k.kind != "" || (k.namespace != "" && k.namespace != namespace) {
			continue
		}
		if obj, ok, err := inf.GetIndexer().GetByKey(namespace + "/" + name); err == nil && ok {
			ev = obj.(*corev1.Event)
			break
		}
	}
	if ev == nil {
		return nil
	}
	id := namespace + "/" + name
	r.mu.Lock()
	seen := r.events[id] == ev.ResourceVersion
	r.mu.Unlock()
	if seen {
		return nil
	}
	key := ObjectKey{Kind: fluxgate.ResourceKind(ev.InvolvedObject.Kind), Namespace: ev.InvolvedObject.Namespace, Name: ev.InvolvedObject.Name}
	if key.Namespace == "" {
		key.Namespace = ev.Namespace
	}
	obj, ok := r.get(key)
	if !ok {
		// Not an object fluxgate manages (or already deleted).
		return nil
	}
	fe := FluxEventFromEvent(ev)
	ref := refOf(key, obj)
	fe.ProjectID = ref.ProjectID
	if ref.ResourceID != "" {
		id := ref.ResourceID
		fe.ResourceID = &id
	}
	if err := r.w.sink.FluxEvent(ctx, fe); err != nil {
		return err
	}
	r.mu.Lock()
	r.events[id] = ev.ResourceVersion
	r.mu.Unlock()
	return nil
}

// repair reports every object present to the sink (Resync) and, after a
// relist (force), queues every object to be reported again and those that
// vanished to be reported deleted.
func (r *watchRun) repair(ctx context.Context, force bool) error {
	var present []ResourceRef
	seen := map[ObjectKey]bool{}
	for k, inf := range r.informers {
		if k.kind == "" {
			continue
		}
		for _, obj := range inf.GetIndexer().List() {
			o := obj.(client.Object)
			key := ObjectKey{Kind: k.kind, Namespace: o.GetNamespace(), Name: o.GetName()}
			seen[key] = true
			present = append(present, refOf(key, o))
			if force {
				// Same queue item as a change: never processed concurrently.
				r.mu.Lock()
				r.forced[key] = true
				r.mu.Unlock()
				r.queue.Add(item{typ: itemObject, key: key})
			}
		}
	}
	if force {
		r.mu.Lock()
		for key := range r.objs {
			if !seen[key] {
				r.queue.Add(item{typ: itemObject, key: key})
			}
		}
		r.mu.Unlock()
	}
	sort.Slice(present, func(i, j int) bool { return present[i].String() < present[j].String() })
	return r.w.sink.Resync(ctx, present)
}
