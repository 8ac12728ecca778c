//go:build race

package wire

// poisonReleased overwrites released bodies in race-enabled builds, which
// is how the test suites run (make test): a string of a review kept past
// Release then reads as garbage and fails the test that keeps it.
const poisonReleased = true
