package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

const (
	remoteCommandType = "command:remote:Command"
	localCommandType  = "command:local:Command"
)

// schemaJSON is hand-written: the SDK does not read it at run time, but
// `pulumi package get-schema` and tooling do.
//
//go:embed schema.json
var schemaJSON []byte

// logSink is the part of the engine host the provider logs to.
type logSink interface {
	Log(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
	LogStatus(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
}

type discardLog struct{}

func (discardLog) Log(context.Context, diag.Severity, resource.URN, string) error       { return nil }
func (discardLog) LogStatus(context.Context, diag.Severity, resource.URN, string) error { return nil }

// commandProvider implements the engine's provider interface;
// plugin.NewProviderServer turns it into the gRPC service.
type commandProvider struct {
	plugin.UnimplementedProvider
	log logSink
	// stopped is cancelled when the engine asks to cancel (Ctrl-C): running
	// commands are then ended.
	stopped context.Context
	stop    context.CancelFunc
}

func newCommandProvider(log logSink) *commandProvider {
	stopped, stop := context.WithCancel(context.Background())
	return &commandProvider{log: log, stopped: stopped, stop: stop}
}

func runnerFor(typ tokens.Type) (runner, error) {
	switch typ {
	case remoteCommandType:
		return remoteRunner, nil
	case localCommandType:
		return localRunner, nil
	}
	return nil, fmt.Errorf("unknown resource type %q", typ)
}

func (p *commandProvider) Handshake(
	context.Context, plugin.ProviderHandshakeRequest,
) (*plugin.ProviderHandshakeResponse, error) {
	return &plugin.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

func (p *commandProvider) GetPluginInfo(context.Context) (plugin.PluginInfo, error) {
	v := semver.MustParse(version)
	return plugin.PluginInfo{Version: &v}, nil
}

func (p *commandProvider) GetSchema(_ context.Context, req plugin.GetSchemaRequest) (plugin.GetSchemaResponse, error) {
	if req.SubpackageName != "" {
		return plugin.GetSchemaResponse{}, fmt.Errorf("no subpackage %q", req.SubpackageName)
	}
	return plugin.GetSchemaResponse{Schema: schemaJSON}, nil
}

// The provider has no configuration.

func (p *commandProvider) CheckConfig(
	_ context.Context, req plugin.CheckConfigRequest,
) (plugin.CheckConfigResponse, error) {
	return plugin.CheckConfigResponse{Properties: req.News}, nil
}

func (p *commandProvider) DiffConfig(context.Context, plugin.DiffConfigRequest) (plugin.DiffConfigResponse, error) {
	return plugin.DiffConfigResponse{Changes: plugin.DiffNone}, nil
}

func (p *commandProvider) Configure(context.Context, plugin.ConfigureRequest) (plugin.ConfigureResponse, error) {
	return plugin.ConfigureResponse{}, nil
}

func (p *commandProvider) SignalCancellation(context.Context) error {
	p.stop()
	return nil
}

func (p *commandProvider) Close() error { return nil }

// Check validates the inputs and makes sure connection is stored as a secret
// whatever the client sent: it holds keys and passwords.
func (p *commandProvider) Check(_ context.Context, req plugin.CheckRequest) (plugin.CheckResponse, error) {
	news := req.News.Copy()
	secretConnection(news)
	if req.Type == copyToRemoteType {
		return plugin.CheckResponse{Properties: news, Failures: checkCopyArgs(news)}, nil
	}
	if _, err := runnerFor(req.Type); err != nil {
		return plugin.CheckResponse{}, err
	}
	return plugin.CheckResponse{Properties: news, Failures: checkArgs(string(req.Type), news)}, nil
}

// Diff compares old and new inputs, for every resource type. A change under
// triggers replaces the resource; any other change is an update, which
// reruns update (or create), or copies again. Assets compare by their hash.
func (p *commandProvider) Diff(_ context.Context, req plugin.DiffRequest) (plugin.DiffResponse, error) {
	olds := req.OldInputs
	if len(olds) == 0 {
		// State written before engines sent old inputs: outputs = inputs + these.
		olds = req.OldOutputs.Copy()
		delete(olds, "stdout")
		delete(olds, "stderr")
	}
	internal := func(k resource.PropertyKey) bool { return strings.HasPrefix(string(k), "__") }
	d := olds.Diff(req.NewInputs, internal)
	if d == nil || !d.AnyChanges() {
		return plugin.DiffResponse{Changes: plugin.DiffNone}, nil
	}

	// Top-level keys only: the engine's display shows them as "[diff: ~key]",
	// and it computes the property-level diff itself.
	resp := plugin.DiffResponse{Changes: plugin.DiffSome, ChangedKeys: d.ChangedKeys()}
	if d.Changed("triggers") {
		resp.ReplaceKeys = []resource.PropertyKey{"triggers"}
	}
	return resp, nil
}

func (p *commandProvider) Create(ctx context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	if req.Type == copyToRemoteType {
		return p.createCopy(ctx, req)
	}
	run, err := runnerFor(req.Type)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	state := req.Properties.Copy()
	secretConnection(state)
	if req.Preview {
		// Nothing runs during preview, so the outputs are not known.
		setUnknownOutputs(state)
		return plugin.CreateResponse{Properties: state}, nil
	}

	args, err := decodeArgs(req.Properties)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	var out result
	if args.Create != nil {
		ctx, cancel := p.opContext(ctx, req.Timeout)
		defer cancel()
		out, err = execute(ctx, run, &args, *args.Create, result{}, p.status(ctx, req.URN), p.warn(ctx, req.URN))
		if err != nil {
			// Like upstream: a failed create leaves no resource behind, so
			// the next `pulumi up` runs create again.
			return plugin.CreateResponse{}, err
		}
	}
	id, err := resource.NewUniqueHexID(req.Name, 8, 0)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	setOutputs(state, out)
	return plugin.CreateResponse{ID: id, Properties: state}, nil
}

func (p *commandProvider) Update(ctx context.Context, req plugin.UpdateRequest) (plugin.UpdateResponse, error) {
	if req.Type == copyToRemoteType {
		return p.updateCopy(ctx, req)
	}
	run, err := runnerFor(req.Type)
	if err != nil {
		return plugin.UpdateResponse{}, err
	}
	state := req.NewInputs.Copy()
	secretConnection(state)
	prev := outputsOf(req.OldOutputs)
	willRun := !req.NewInputs["update"].IsNull() || !req.NewInputs["create"].IsNull()
	if req.Preview {
		if willRun {
			setUnknownOutputs(state)
		} else {
			setOutputs(state, prev)
		}
		return plugin.UpdateResponse{Properties: state}, nil
	}

	args, err := decodeArgs(req.NewInputs)
	if err != nil {
		return plugin.UpdateResponse{}, err
	}
	command := args.Update
	if command == nil {
		command = args.Create
	}
	out := prev
	if command != nil {
		ctx, cancel := p.opContext(ctx, req.Timeout)
		defer cancel()
		out, err = execute(ctx, run, &args, *command, prev, p.status(ctx, req.URN), p.warn(ctx, req.URN))
		if err != nil {
			return plugin.UpdateResponse{}, err
		}
	}
	setOutputs(state, out)
	return plugin.UpdateResponse{Properties: state}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req plugin.DeleteRequest) (plugin.DeleteResponse, error) {
	if req.Type == copyToRemoteType {
		// Upstream leaves the copy on the host: there is no delete to run.
		return plugin.DeleteResponse{}, nil
	}
	run, err := runnerFor(req.Type)
	if err != nil {
		return plugin.DeleteResponse{}, err
	}
	// The state holds the inputs of the last successful create or update.
	args, err := decodeArgs(req.Outputs)
	if err != nil {
		return plugin.DeleteResponse{}, err
	}
	if args.Delete == nil {
		return plugin.DeleteResponse{}, nil
	}
	ctx, cancel := p.opContext(ctx, req.Timeout)
	defer cancel()
	_, err = execute(ctx, run, &args, *args.Delete, outputsOf(req.Outputs),
		p.status(ctx, req.URN), p.warn(ctx, req.URN))
	return plugin.DeleteResponse{}, err
}

// Read backs `pulumi refresh`. A command has no remote state to read, so the
// resource stays as it is (upstream does the same). Upstream does not read a
// CopyToRemote's remote file back either.
func (p *commandProvider) Read(_ context.Context, req plugin.ReadRequest) (plugin.ReadResponse, error) {
	if len(req.State) == 0 {
		return plugin.ReadResponse{}, errors.New("import is not supported: a command has no state to read back")
	}
	return plugin.ReadResponse{
		ReadResult: plugin.ReadResult{ID: req.ID, Inputs: req.Inputs, Outputs: req.State},
		Status:     resource.StatusOK,
	}, nil
}

// opContext ends with the request, on engine cancellation, or after the
// resource's customTimeouts (seconds; 0 means none).
func (p *commandProvider) opContext(ctx context.Context, timeout float64) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.stopped, cancel)
	if timeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, time.Duration(timeout*float64(time.Second)))
		return ctx, func() { stop(); cancelTimeout(); cancel() }
	}
	return ctx, func() { stop(); cancel() }
}

// status sends a line of command output or progress to the engine. Like
// upstream these are status messages: the display shows the latest one on
// the resource's row while it runs.
func (p *commandProvider) status(ctx context.Context, urn resource.URN) func(string) {
	return func(msg string) { _ = p.log.LogStatus(ctx, diag.Info, urn, msg) }
}

func (p *commandProvider) warn(ctx context.Context, urn resource.URN) func(string) {
	return func(msg string) { _ = p.log.Log(ctx, diag.Warning, urn, msg) }
}

func secretConnection(m resource.PropertyMap) {
	if c, ok := m["connection"]; ok && !c.IsNull() && !c.IsSecret() && !c.IsComputed() {
		m["connection"] = resource.MakeSecret(c)
	}
}

func setOutputs(m resource.PropertyMap, out result) {
	m["stdout"] = resource.NewStringProperty(out.stdout)
	m["stderr"] = resource.NewStringProperty(out.stderr)
}

func setUnknownOutputs(m resource.PropertyMap) {
	m["stdout"] = resource.MakeComputed(resource.NewStringProperty(""))
	m["stderr"] = resource.MakeComputed(resource.NewStringProperty(""))
}

// outputsOf reads stdout and stderr back from a state.
func outputsOf(state resource.PropertyMap) result {
	str := func(k resource.PropertyKey) string {
		v, err := plainValue(state[k])
		if s, ok := v.(string); ok && err == nil {
			return s
		}
		return ""
	}
	return result{stdout: str("stdout"), stderr: str("stderr")}
}
