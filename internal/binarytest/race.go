//go:build race

package binarytest

// raceEnabled: the tests run with -race, so the server is built with it
// too, and a data race in the server fails the test that started it.
const raceEnabled = true
