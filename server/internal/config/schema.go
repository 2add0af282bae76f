// Package config is the edge where the backup server's program meets the
// configuration the Pulumi program writes. The document's shape comes from one
// place, the zod schema in components/config.ts: its JSON Schema is generated
// into stack.schema.json (components/configSchema.ts) and embedded here, so
// the program refuses a config that `pulumi preview` would have refused.
//
// JSON Schema has no form for the rules across keys (unique job names,
// wipeDrives within drives, ...); those stay in TypeScript, and
// testdata/cases.json lists the cases where only they decide.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed stack.schema.json
var stackSchemaJSON []byte

// The embedded schema, compiled once. It is generated and tested, so a failure
// here is a build defect, not a config problem.
var stackSchema = mustCompile("stack.schema.json", stackSchemaJSON)

func mustCompile(name string, text []byte) *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(text)))
	if err != nil {
		panic(fmt.Sprintf("config: %s is not JSON: %v", name, err))
	}
	c := jsonschema.NewCompiler()
	c.UseRegexpEngine(compileECMA)
	if err := c.AddResource(name, doc); err != nil {
		panic(fmt.Sprintf("config: %s: %v", name, err))
	}
	return c.MustCompile(name)
}

// Problem is one value the schema refuses.
type Problem struct {
	// Pointer is the JSON pointer (RFC 6901) of the bad value; "" is the whole document.
	Pointer string
	// Message says what the schema expected there.
	Message string
}

func (p Problem) String() string { return fmt.Sprintf("at %q: %s", p.Pointer, p.Message) }

// InvalidError lists every problem of a document, ordered by pointer.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("invalid pullsnap configuration (%d problem%s):\n  - %s",
		len(lines), plural(len(lines)), strings.Join(lines, "\n  - "))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

var english = message.NewPrinter(language.English)

// ValidateStack checks a stack config document (JSON) against the embedded
// schema. It returns an *InvalidError naming every bad value, or an error
// saying the document is not JSON.
func ValidateStack(doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(doc)))
	if err != nil {
		return fmt.Errorf("config is not JSON: %w", err)
	}
	err = stackSchema.Validate(inst)
	var verr *jsonschema.ValidationError
	if err == nil {
		return nil
	} else if !errors.As(err, &verr) {
		return fmt.Errorf("config: %w", err)
	}
	var problems []Problem
	collect(verr, &problems)
	slices.SortFunc(problems, func(a, b Problem) int {
		return strings.Compare(a.Pointer+"\x00"+a.Message, b.Pointer+"\x00"+b.Message)
	})
	return &InvalidError{Problems: slices.Compact(problems)}
}

// collect keeps the leaves: an allOf or a $ref only says that a cause failed.
func collect(e *jsonschema.ValidationError, into *[]Problem) {
	if len(e.Causes) == 0 {
		*into = append(*into, Problem{Pointer: pointer(e.InstanceLocation), Message: e.ErrorKind.LocalizedString(english)})
		return
	}
	for _, c := range e.Causes {
		collect(c, into)
	}
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}
