package twiliofake

import "github.com/spa-engine/spa/actors/providers/internal/fakefault"

// Fault is one failure for Server.Faults, named here for tests outside
// the providers (fakefault is internal to them).
type Fault = fakefault.Fault
