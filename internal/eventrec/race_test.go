//go:build race

package eventrec

const raceEnabled = true
