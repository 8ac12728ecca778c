//go:build !race

package eventrec

const raceEnabled = false
