// Package cluster groups what makes a set of engine processes one system:
// the embedded NATS server with JetStream (natsserver), the transactional
// outbox relay that publishes domain events to it (outbox) and, later,
// membership and actor placement. This package itself holds no code.
package cluster
