// Package e2e tests the realtime pieces together, as two replicas sharing
// Redis would run them: Flux webhook on one, GraphQL websocket
// subscription on the other, resume with a cursor. It has no code of its
// own; the server's own end-to-end tests cover the real schema.
package e2e
