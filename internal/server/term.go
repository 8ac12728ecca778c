package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// A term is one span of leadership. A controller cannot be started twice,
// so each term builds its controllers anew with controller-runtime's
// builder, against termManager: the process's manager, except that what
// the controllers add to it runs for the term only, and that the event
// handlers they put on the shared informers are taken off when the term
// ends (controller-runtime's sources never remove theirs; they would pile
// up, one set per term).

// termManager is the manager as one term's controllers see it.
type termManager struct {
	manager.Manager
	cache     *termCache
	runnables []manager.Runnable
}

func newTermManager(mgr manager.Manager) *termManager {
	return &termManager{Manager: mgr, cache: &termCache{Cache: mgr.GetCache()}}
}

// Add keeps r for run instead of adding it to the process's manager.
func (m *termManager) Add(r manager.Runnable) error {
	m.runnables = append(m.runnables, r)
	return nil
}

// GetCache is the shared cache, its event handlers tracked for the term.
func (m *termManager) GetCache() cache.Cache { return m.cache }

// GetControllerOptions lets every term name its controllers as the first
// one did: controller-runtime refuses a name it has seen before.
func (m *termManager) GetControllerOptions() config.Controller {
	opts := m.Manager.GetControllerOptions()
	opts.SkipNameValidation = ptr.To(true)
	return opts
}

// run starts what was added and returns once all of it has stopped and the
// term's event handlers are off the informers. ctx ends the term; so does
// the first runnable that fails, whose error run returns.
func (m *termManager) run(ctx context.Context) error {
	defer func() {
		if err := m.cache.removeHandlers(); err != nil {
			m.GetLogger().Error(err, "removing the term's event handlers from the shared informers")
		}
	}()
	termCtx, end := context.WithCancel(ctx)
	defer end()
	errs := make(chan error, len(m.runnables))
	for _, r := range m.runnables {
		go func() { errs <- r.Start(termCtx) }()
	}
	var failed error
	for range m.runnables {
		err := <-errs
		// Errors once ctx is done are how the controllers stop (a cache
		// sync cut short), not failures.
		if err != nil && ctx.Err() == nil && failed == nil {
			failed = err
			end()
		}
	}
	return failed
}

// termCache records the event handlers added through the informers it
// hands out, to remove them when the term ends.
type termCache struct {
	cache.Cache
	mu       sync.Mutex
	handlers []termHandler
}

type termHandler struct {
	informer     cache.Informer
	registration toolscache.ResourceEventHandlerRegistration
}

func (c *termCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: i, cache: c}, nil
}

func (c *termCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformerForKind(ctx, gvk, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: i, cache: c}, nil
}

func (c *termCache) track(i cache.Informer, r toolscache.ResourceEventHandlerRegistration, err error) (toolscache.ResourceEventHandlerRegistration, error) {
	if err == nil {
		c.mu.Lock()
		c.handlers = append(c.handlers, termHandler{informer: i, registration: r})
		c.mu.Unlock()
	}
	return r, err
}

// removeHandlers takes the term's event handlers off the shared informers.
func (c *termCache) removeHandlers() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, h := range c.handlers {
		errs = append(errs, h.informer.RemoveEventHandler(h.registration))
	}
	c.handlers = nil
	return errors.Join(errs...)
}

// termInformer is a shared informer whose new event handlers are tracked.
type termInformer struct {
	cache.Informer
	cache *termCache
}

func (i *termInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandler(h)
	return i.cache.track(i.Informer, r, err)
}

func (i *termInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithResyncPeriod(h, resync)
	return i.cache.track(i.Informer, r, err)
}

func (i *termInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, opts toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithOptions(h, opts)
	return i.cache.track(i.Informer, r, err)
}
