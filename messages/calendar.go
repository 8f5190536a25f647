package messages

// The calendar actors' requests and replies as they travel between nodes
// (see cluster/forward) are generated from their own file.

//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/calendar.proto
