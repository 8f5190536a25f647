package whatsappfake

import "github.com/spa-engine/spa/actors/providers/internal/fakefault"

// Fault is one failure for Server.Faults, named here for tests outside
// the providers tree (the fault package is internal to it).
type Fault = fakefault.Fault
