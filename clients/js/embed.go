// Package js holds the browser client (authclient.js, an ES module with
// its TypeScript types in authclient.d.ts) so that the server can serve
// the very file this directory publishes as an npm package: the routes
// answer GET /api/v1/client.js with it.
package js

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
)

//go:embed authclient.js
var source []byte

// Module is the client's source and its content hash.
type Module struct {
	// Source is the ES module, as published.
	Source []byte
	// Hash is the first 16 hex digits of its SHA-256: the name of the
	// versioned, immutable path, and the ETag of the unversioned one.
	Hash string
}

// Load returns the embedded module and its hash.
func Load() Module {
	sum := sha256.Sum256(source)
	return Module{Source: source, Hash: hex.EncodeToString(sum[:8])}
}
