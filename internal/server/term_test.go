package server

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// handlerCounter is a shared informer that counts its event handlers.
type handlerCounter struct {
	cache.Informer
	mu       sync.Mutex
	handlers map[toolscache.ResourceEventHandlerRegistration]bool
}

type registration struct {
	toolscache.ResourceEventHandlerRegistration
	n int
}

func (i *handlerCounter) add() (toolscache.ResourceEventHandlerRegistration, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	r := &registration{n: len(i.handlers)}
	i.handlers[r] = true
	return r, nil
}

func (i *handlerCounter) AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.add()
}

func (i *handlerCounter) AddEventHandlerWithOptions(toolscache.ResourceEventHandler, toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.add()
}

func (i *handlerCounter) RemoveEventHandler(r toolscache.ResourceEventHandlerRegistration) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.handlers[r] {
		return errors.New("no such handler")
	}
	delete(i.handlers, r)
	return nil
}

func (i *handlerCounter) count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.handlers)
}

// oneInformerCache hands out the one informer for every kind.
type oneInformerCache struct {
	cache.Cache
	informer *handlerCounter
}

func (c *oneInformerCache) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return c.informer, nil
}

// processManager is the process's manager, as far as a term uses it.
type processManager struct {
	manager.Manager
	cache cache.Cache
}

func (m *processManager) GetCache() cache.Cache                   { return m.cache }
func (m *processManager) GetLogger() logr.Logger                  { return logr.Discard() }
func (m *processManager) GetControllerOptions() config.Controller { return config.Controller{} }

// handlerOwner is a term's runnable that puts an event handler on the
// shared informer, as a controller's source does, and runs until its
// context is done or it is told to fail.
func handlerOwner(term *termManager, fail <-chan error, added chan<- struct{}) manager.RunnableFunc {
	return func(ctx context.Context) error {
		i, err := term.GetCache().GetInformer(ctx, &corev1.Service{})
		if err != nil {
			return err
		}
		if _, err := i.AddEventHandlerWithOptions(toolscache.ResourceEventHandlerFuncs{}, toolscache.HandlerOptions{}); err != nil {
			return err
		}
		added <- struct{}{}
		select {
		case <-ctx.Done():
			return errors.New("stopped") // as a controller whose cache sync is cut short
		case err := <-fail:
			return err
		}
	}
}

func TestATermRunsWhatItsControllersAddAndTakesTheirHandlersOff(t *testing.T) {
	informer := &handlerCounter{handlers: map[toolscache.ResourceEventHandlerRegistration]bool{}}
	process := &processManager{cache: &oneInformerCache{informer: informer}}
	_, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{}) // the process's own handler
	require.NoError(t, err)

	assert.True(t, *newTermManager(process).GetControllerOptions().SkipNameValidation,
		"every term names its controllers as the first did")

	for range 3 { // terms, one after the other
		term := newTermManager(process)
		added := make(chan struct{}, 2)
		require.NoError(t, term.Add(handlerOwner(term, nil, added)))
		require.NoError(t, term.Add(handlerOwner(term, nil, added)))
		ctx, end := context.WithCancel(context.Background())
		result := make(chan error, 1)
		go func() { result <- term.run(ctx) }()
		<-added
		<-added
		assert.Equal(t, 3, informer.count(), "the process's handler and the term's two")
		end()
		require.NoError(t, <-result, "errors of stopping are not failures")
		assert.Equal(t, 1, informer.count(), "the term's handlers are off the informer")
	}
}

func TestAFailingRunnableEndsTheTerm(t *testing.T) {
	informer := &handlerCounter{handlers: map[toolscache.ResourceEventHandlerRegistration]bool{}}
	term := newTermManager(&processManager{cache: &oneInformerCache{informer: informer}})
	added := make(chan struct{}, 2)
	fail := make(chan error, 1)
	require.NoError(t, term.Add(handlerOwner(term, fail, added)))
	require.NoError(t, term.Add(handlerOwner(term, nil, added)))
	result := make(chan error, 1)
	go func() { result <- term.run(context.Background()) }()
	<-added
	<-added
	fail <- errors.New("cache sync timed out")
	require.EqualError(t, <-result, "cache sync timed out", "the failure, after the other runnable stopped")
	assert.Zero(t, informer.count())
}
