//go:build !race

package routes_test

// raceEnabled: see race_on_test.go.
const raceEnabled = false
