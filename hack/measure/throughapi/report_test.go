package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestQuantileIsTheNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := []time.Duration{quantile(d, 0.5), quantile(d, 0.99), quantile(d, 1), quantile(d[:1], 0.99), quantile(nil, 0.5)}
	assert.Equal(t, []time.Duration{50 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 0}, got)
}

func TestRegisteredURLsPointAtTheVariant(t *testing.T) {
	url := renderedHost + "/mutate-pods"
	assert.Equal(t, "https://127.0.0.1:19563/mutate-pods", *at("https://127.0.0.1:19563", &url))
}
