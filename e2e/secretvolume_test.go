//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// dataLink is the symlink the kubelet swaps to publish a new version of a
// secret volume's files.
const dataLink = "..data"

// secretVolume keeps a directory in step with a Secret as the kubelet keeps a
// secret volume (pkg/volume/util/atomic_writer.go in Kubernetes): each
// version of the data goes into a new timestamped directory, the "..data"
// symlink is swapped to it in one rename, and every key is a symlink through
// "..data", so a reader never sees the files of two versions at once.
type secretVolume struct {
	key  client.ObjectKey
	dir  string
	mode os.FileMode

	written string // resourceVersion of the data on disk
	stop    context.CancelFunc
	done    sync.WaitGroup
}

// mount writes the Secret's current data into a fresh directory, as for a
// new pod, waiting until the Secret exists as the kubelet holds a pod's
// start until its secret volume can be mounted, and then keeps the files in
// step until unmount.
func (v *secretVolume) mount(ctx context.Context) error {
	v.written = ""
	if err := os.RemoveAll(v.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(v.dir, 0o700); err != nil {
		return err
	}
	var lastErr error
	err := pollFor(ctx, fmt.Sprintf("secret %s to mount", v.key), waitTimeout, func(ctx context.Context) (bool, error) {
		lastErr = v.sync(ctx)
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last: %v)", err, lastErr)
	}
	syncCtx, stop := context.WithCancel(context.Background())
	v.stop = stop
	v.done.Go(func() {
		// The kubelet resyncs a volume about once a minute; polling faster
		// only makes the tests quicker, the files change the same way.
		ticker := time.NewTicker(pollInterval)
		defer ticker.Stop()
		for {
			select {
			case <-syncCtx.Done():
				return
			case <-ticker.C:
				_ = v.sync(syncCtx) // a failed read is retried on the next tick
			}
		}
	})
	return nil
}

// unmount stops following the Secret.
func (v *secretVolume) unmount() {
	if v.stop != nil {
		v.stop()
		v.done.Wait()
		v.stop = nil
	}
}

// sync writes the Secret's data when it changed since the last write.
func (v *secretVolume) sync(ctx context.Context) error {
	var secret corev1.Secret
	if err := suite.client.Get(ctx, v.key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("secret %s does not exist yet", v.key)
		}
		return err
	}
	if secret.ResourceVersion == v.written {
		return nil
	}
	if err := v.write(secret.Data); err != nil {
		return fmt.Errorf("writing secret %s to %s: %w", v.key, v.dir, err)
	}
	v.written = secret.ResourceVersion
	return nil
}

// write publishes data as the volume's new version.
func (v *secretVolume) write(data map[string][]byte) error {
	previous, err := os.Readlink(filepath.Join(v.dir, dataLink))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	version, err := os.MkdirTemp(v.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	for name, content := range data {
		if err := os.WriteFile(filepath.Join(version, name), content, v.mode); err != nil {
			return err
		}
	}
	tmpLink := filepath.Join(v.dir, dataLink+"_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(version), tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(v.dir, dataLink)); err != nil {
		return err
	}
	for name := range data {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
				return err
			}
		}
	}
	if previous != "" {
		return os.RemoveAll(filepath.Join(v.dir, previous))
	}
	return nil
}
