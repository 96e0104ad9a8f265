// Package apidoc holds the OpenAPI 3 document of the HTTP API. It is
// written by hand in YAML (openapi.yaml: comments and anchors keep it
// readable), embedded in the binary, and served as JSON at
// GET /api/v1/openapi.json. The routes tests keep it honest: it must be
// valid, name exactly the routes of the router, and every answer the tests
// receive must match it.
package apidoc

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

//go:embed openapi.yaml
var source []byte

// JSON returns the document as JSON. Call it once: it converts the YAML
// each time.
func JSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(source, &doc); err != nil {
		return nil, fmt.Errorf("apidoc: openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("apidoc: openapi.yaml as JSON: %w", err)
	}
	return b, nil
}
