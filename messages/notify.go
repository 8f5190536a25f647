package messages

// Reminders and dead letters of the notification service are generated
// from their own file.

//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/spa-engine/spa/messages proto/spa/v1/notify.proto
