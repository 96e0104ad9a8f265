//go:build race

package main

// raceBuild is true when the tests run with -race: the demo binary is then
// built with -race too, which reuses the packages the test build compiled
// and runs the demo server under the race detector.
const raceBuild = true
