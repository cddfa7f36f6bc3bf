package migrations

import (
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

var objectRE = regexp.MustCompile(`(?m)^\s*CREATE (?:UNIQUE )?(TABLE|INDEX) (\w+)`)

// objects lists, per migration file, the tables and indexes it creates.
func objects(t *testing.T, dialect string) map[string][]string {
	t.Helper()
	fsys, err := FS(dialect)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("%s: no migrations", dialect)
	}
	out := map[string][]string{}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range objectRE.FindAllStringSubmatch(string(b), -1) {
			out[f] = append(out[f], m[1]+" "+m[2])
		}
		slices.Sort(out[f])
	}
	return out
}

// TestDialectsInStep checks that both dialects have the same migration files
// creating the same tables and indexes.
func TestDialectsInStep(t *testing.T) {
	pg, lite := objects(t, Postgres), objects(t, SQLite)
	if !reflect.DeepEqual(pg, lite) {
		t.Fatalf("dialects differ:\npostgres %v\nsqlite   %v", pg, lite)
	}
	if !slices.Contains(pg["00001_init.sql"], "TABLE flux_events") {
		t.Fatalf("00001_init.sql does not create flux_events: %v", pg["00001_init.sql"])
	}
	if _, err := FS("mysql"); err == nil {
		t.Fatal("unknown dialect accepted")
	}
}
