//go:build race

package routes_test

// raceEnabled: the tests run with -race, which makes each request several
// times slower; TestThousandLogins then runs fewer strategies.
const raceEnabled = true
