package wire

// ReadOnePass exposes the fast path to the differential fuzz target, which
// must know which path read a body.
var ReadOnePass = readOnePass

// PoisonReleased tells whether released bodies are overwritten.
const PoisonReleased = poisonReleased
