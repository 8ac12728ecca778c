// Package stats holds the summaries the measurement tools under hack/measure
// report.
package stats

import "slices"

// Median is the middle of values (the mean of the two middle ones for an even
// count), or 0 for none. values is not reordered.
func Median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	mid := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[mid]
	}
	return (sorted[mid-1] + sorted[mid]) / 2
}
