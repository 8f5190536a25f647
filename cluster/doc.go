// Package cluster groups what makes a set of engine processes one system:
// the embedded NATS server with JetStream (natsserver), the transactional
// outbox relay that publishes domain events to it (outbox), the live node
// set (membership), partition leases with fencing epochs (partition) and
// request forwarding to partition owners (forward). This package itself
// holds no code.
package cluster
