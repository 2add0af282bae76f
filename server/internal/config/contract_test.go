package config

import (
	"encoding/json"
	"os"
	"testing"
)

// TestContract asserts that the embedded schema reaches zod's verdict on every
// table case of test/unit/config.test.ts, good and bad. The cases and the
// verdicts come from test/unit/configContract.test.ts, which also lists the
// cases only a cross-key rule refuses (crossKeyOnly): the schema accepts those.
func TestContract(t *testing.T) {
	text, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []struct {
			Name         string          `json:"name"`
			Valid        bool            `json:"valid"`
			CrossKeyOnly string          `json:"crossKeyOnly"`
			Config       json.RawMessage `json:"config"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(text, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) < 50 {
		t.Fatalf("only %d cases in testdata/cases.json", len(file.Cases))
	}
	for _, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			err := ValidateStack(c.Config)
			switch {
			case c.Valid && err != nil && c.CrossKeyOnly != "":
				t.Errorf("the schema now refuses a case listed as decided only by a rule across keys (%s); drop it from crossKeyOnly in test/unit/configContract.test.ts: %v", c.CrossKeyOnly, err)
			case c.Valid && err != nil:
				t.Errorf("zod accepts it, the schema refuses it: %v", err)
			case !c.Valid && err == nil:
				t.Error("zod refuses it, the schema accepts it")
			}
		})
	}
}
