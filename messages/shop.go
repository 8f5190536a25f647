package messages

// The shop actors' (inventory, cart), session and quota actors' requests and
// replies as they travel between nodes (see cluster/forward) are generated
// from their own files.

//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/shop.proto
//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/session.proto
//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/quota.proto

// Order events (OrderChanged, ReturnProcessed) are generated from their own file.

//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/orders.proto
