// Package cluster groups what makes a set of engine processes one system:
// the embedded NATS server with JetStream (natsserver), the transactional
// outbox relay that publishes domain events to it (outbox), the live node
// set (membership), partition leases with fencing epochs (partition),
// who holds a partition and the activation epochs taken from its lease
// (placement), request forwarding to partition owners (forward), one
// router per placed actor kind (route) and the codecs that carry each
// kind's messages (calwire, shopwire, sessionwire). This package itself
// holds no code.
package cluster
