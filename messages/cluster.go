package messages

// The cluster layer's messages (cluster/membership, cluster/partition,
// cluster/forward) are generated from their own file.

//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/cluster.proto
