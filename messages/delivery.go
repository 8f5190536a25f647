package messages

// The notification service's delivery checks (delivery.proto).
//
//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/delivery.proto
