package main

import (
	"context"
	"encoding/json"
	"errors"
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
	for _, tok := range []string{remoteCommandType, localCommandType} {
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
