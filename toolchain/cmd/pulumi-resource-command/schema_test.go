package main

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/blang/semver"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

// The embedded schema must bind cleanly against Pulumi's metaschema, and its
// version must be the one GetPluginInfo reports.
func TestSchemaBinds(t *testing.T) {
	var spec schema.PackageSpec
	if err := json.Unmarshal(schemaJSON, &spec); err != nil {
		t.Fatal(err)
	}
	pkg, diags, err := schema.BindSpec(spec, noLoader{}, schema.ValidationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if pkg.Version == nil || pkg.Version.String() != version {
		t.Errorf("schema version = %v, want %s", pkg.Version, version)
	}
	have := map[string]bool{}
	for _, r := range pkg.Resources {
		have[r.Token] = true
	}
	for _, tok := range []string{remoteCommandType, copyToRemoteType, localCommandType} {
		if !have[tok] {
			t.Errorf("schema lacks %s", tok)
		}
	}
}

// noLoader fails every look-up: the schema references no other package.
type noLoader struct{}

func (noLoader) LoadPackage(string, *semver.Version) (*schema.Package, error) {
	return nil, errors.New("no other packages")
}

func (noLoader) LoadPackageV2(context.Context, *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, errors.New("no other packages")
}

// CopyToRemote's properties as upstream 1.2.1 declares them: the SDK sends
// exactly these, and the engine replaces on triggers.
func TestSchemaCopyToRemote(t *testing.T) {
	var spec schema.PackageSpec
	if err := json.Unmarshal(schemaJSON, &spec); err != nil {
		t.Fatal(err)
	}
	r, ok := spec.Resources[copyToRemoteType]
	if !ok {
		t.Fatalf("schema lacks %s", copyToRemoteType)
	}
	type prop struct {
		ref, typ        string
		secret, replace bool
	}
	want := map[string]prop{
		"connection": {ref: "#/types/command:remote:Connection", secret: true},
		"source":     {ref: "pulumi.json#/Asset"},
		"remotePath": {typ: "string"},
		"triggers":   {typ: "array", replace: true},
	}
	for name, props := range map[string]map[string]schema.PropertySpec{
		"inputProperties": r.InputProperties, "properties": r.Properties,
	} {
		if len(props) != len(want) {
			t.Errorf("%s has %d properties, want %d", name, len(props), len(want))
		}
		for k, w := range want {
			p := props[k]
			got := prop{ref: p.Ref, typ: p.Type, secret: p.Secret, replace: p.ReplaceOnChanges}
			if got != w {
				t.Errorf("%s.%s = %+v, want %+v", name, k, got, w)
			}
		}
	}
	required := []string{"connection", "source", "remotePath"}
	if !slices.Equal(r.RequiredInputs, required) || !slices.Equal(r.Required, required) {
		t.Errorf("requiredInputs = %v, required = %v, want %v for both", r.RequiredInputs, r.Required, required)
	}
}
