package messages

// Payment events (PaymentChanged) are generated from their own file.

//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/payments.proto
