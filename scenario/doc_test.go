package scenario

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/revocable/authserver/strategy"
)

// TestStrategiesDocShowsTheTable: the guarantee rows of the table in
// docs/strategies.md ("Choosing a strategy", printed by `authserver
// compare`) say what this table expects of each strategy: pass where the
// expected outcome shows the guarantee, n/a where it does not. A row that
// disagrees with the table, or a case without a row, fails here, so the
// doc cannot drift from the suite that the routes tests and compare run.
func TestStrategiesDocShowsTheTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "strategies.md"))
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	rows := map[string][]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if cells[0] == "guarantee" {
			header = cells[1:]
			continue
		}
		if header != nil && len(cells) == len(header)+1 {
			rows[cells[0]] = cells[1:]
		}
	}
	if header == nil {
		t.Fatal(`docs/strategies.md has no "| guarantee |" table`)
	}
	for _, name := range strategy.Names() {
		if !slices.Contains(header, name) {
			t.Errorf("docs/strategies.md's table has no column %s", name)
		}
	}
	for _, c := range All() {
		t.Run(c.ID, func(t *testing.T) {
			got, ok := rows[c.Title]
			if !ok {
				t.Fatalf("docs/strategies.md has no row %q", c.Title)
			}
			for i, name := range header {
				want := "n/a"
				if slices.Contains(c.Shows, c.Want[name]) {
					want = "pass"
				}
				if got[i] != want {
					t.Errorf("%s: docs/strategies.md says %q, the table expects %q", name, got[i], want)
				}
			}
		})
	}
}
