package config

import "github.com/statekeeper/statekeeper/internal/review"

// ReviewSettings are the engine settings this configuration asks for; the
// server and `check` both build their engine from it, so they decide alike.
func (c Config) ReviewSettings() review.Settings {
	return review.Settings{
		Defaults:           c.Defaults(),
		DefaultMode:        c.DefaultMode,
		ExcludedNamespaces: c.Excluded(),
		ClusterDomain:      c.ClusterDomain,
	}
}
