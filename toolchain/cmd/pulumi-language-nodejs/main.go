// Command pulumi-language-nodejs is a small Pulumi language host for Node.js
// programs: the plugin the engine starts for `runtime: nodejs` in Pulumi.yaml.
//
// Why this exists: the engine and its SDK build from the Go module proxy, but
// the proxy refuses upstream's language host module
// (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) and no
// release download is reachable here. So this is our own, smaller host. It
// does what pullsnap's CommonJS TypeScript program needs and no more:
//
//   - Run: spawn `node @pulumi/pulumi/cmd/run` (from the program's
//     node_modules) against the engine's resource monitor. That entry point
//     loads ts-node itself, so TypeScript needs nothing from us.
//   - GetRequiredPackages: name the resource plugins that installed npm
//     packages declare, so the engine loads e.g. @pulumi/command's plugin.
//   - Handshake, GetPluginInfo, InstallDependencies (npm install), About,
//     GetProgramDependencies and RuntimeOptionsPrompts.
//
// Left out on purpose (the engine tolerates Unimplemented, or never asks for
// them in this project): code generation, Template, Pack, Link, Cancel (a
// cancelled Run request stops node anyway), RunPlugin (Node.js plugins and
// policy packs), debugger attach, bun, yarn and pnpm, tracing, and the legacy
// synchronous-invoke pipes (`--sync`) that only the deprecated `invokeSync`
// API uses.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/nodejs/npm"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const (
	// runEntry is the npm SDK's program launcher, resolved from the program
	// directory so that the program's own copy of @pulumi/pulumi runs it.
	runEntry = "@pulumi/pulumi/cmd/run"

	// exitCodeAlreadyReported is what cmd/run exits with after it has shown
	// the user the error itself; we then ask the engine to bail quietly
	// instead of adding a second, vaguer message.
	exitCodeAlreadyReported = 32

	// sdkModule is the Go module whose version we report as ours.
	sdkModule = "github.com/pulumi/pulumi/sdk/v3"
)

func main() {
	showVersion := flag.Bool("version", false, "print the plugin version and exit")
	// The engine may pass these; they select features this host does not have.
	flag.String("tracing", "", "ignored: tracing is not supported")
	runtimeName := flag.String("runtime", "nodejs", "JavaScript runtime; only nodejs is supported")
	flag.Parse()

	if *showVersion {
		fmt.Println(pluginVersion())
		return
	}
	if *runtimeName != "nodejs" {
		fatalf("unsupported runtime %q: only nodejs is supported", *runtimeName)
	}

	// The engine passes its own address as the only positional argument.
	host := &languageHost{}
	if flag.NArg() > 0 {
		host.setEngineAddress(flag.Arg(0))
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()

	// Stop serving once the engine stops answering (checked every 5 minutes),
	// so a crashed CLI does not leave us running forever.
	if addr := host.engine(); addr != "" {
		if err := rpcutil.Healthcheck(ctx, addr, 5*time.Minute, cancel); err != nil {
			fatalf("could not start health check: %v", err)
		}
	}

	stop := make(chan bool)
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		fatalf("could not start the language host RPC server: %v", err)
	}

	// The engine reads the port we listen on from our first line of stdout.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		fatalf("language host RPC server stopped: %v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: "+format+"\n", args...)
	os.Exit(1)
}

// pluginVersion is the version of the Pulumi Go SDK this binary was built
// with (3.274.1 today), read from the build info so that it follows go.mod.
func pluginVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == sdkModule {
				return strings.TrimPrefix(dep.Version, "v")
			}
		}
	}
	return ""
}

// languageHost implements pulumirpc.LanguageRuntimeServer. The embedded
// Unimplemented server answers codes.Unimplemented for every method we leave
// out.
type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	mu            sync.Mutex
	engineAddress string
}

func (h *languageHost) setEngineAddress(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.engineAddress = addr
}

func (h *languageHost) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

// Handshake tells us the engine's address. The engine also passes it on the
// command line; Handshake matters when the host was started by hand and
// attached with PULUMI_DEBUG_LANGUAGES.
func (h *languageHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.setEngineAddress(req.GetEngineAddress())
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: pluginVersion()}, nil
}

// GetRequiredPackages lists the resource plugins that the program's installed
// npm packages declare. Plugins that the program only needs at run time (the
// dynamic provider shim `pulumi-resource-pulumi-nodejs`) are loaded by the
// engine on demand and need not be listed.
func (h *languageHost) GetRequiredPackages(
	_ context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	pkgs, err := findResourcePlugins(req.GetInfo().GetProgramDirectory())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: pkgs}, nil
}

// GetRequiredPlugins is the deprecated form of GetRequiredPackages, still
// called by engines that predate packages.
func (h *languageHost) GetRequiredPlugins(
	_ context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	pkgs, err := findResourcePlugins(req.GetInfo().GetProgramDirectory())
	if err != nil {
		return nil, err
	}
	plugins := make([]*pulumirpc.PluginDependency, 0, len(pkgs))
	for _, p := range pkgs {
		plugins = append(plugins, &pulumirpc.PluginDependency{
			Name: p.Name, Kind: p.Kind, Version: p.Version, Server: p.Server,
		})
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

// Run runs the program once, for one preview, update, refresh or destroy,
// and reports how it ended. A program error is a RunResponse.Error, not an
// RPC error: the RPC itself worked.
func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	if info == nil {
		return nil, errors.New("run request has no program info")
	}
	opts, err := parseOptions(info.GetOptions().AsMap())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "could not find node on PATH: " + err.Error()}, nil
	}
	entry, err := resolveModule(ctx, node, info.GetProgramDirectory(), runEntry)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	env, err := runEnv(req, opts)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	args := append(append([]string{}, opts.nodeArgs...), entry)
	args = append(args, runArgs(req, h.engine())...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = info.GetProgramDirectory()
	cmd.Env = env
	// Wrapping our stdout/stderr hides that they are files, so Go copies
	// through pipes. Handing node our own descriptors would let it switch them
	// to non-blocking mode under the engine, which reads the other ends.
	cmd.Stdout = struct{ io.Writer }{os.Stdout}
	cmd.Stderr = struct{ io.Writer }{os.Stderr}
	// On cancellation give node the chance to finish its in-flight resource
	// operations (it handles SIGINT), and kill it only if it does not exit.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second

	return runResponse(cmd.Run()), nil
}

// runResponse turns how node ended into what the engine shows the user.
func runResponse(err error) *pulumirpc.RunResponse {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}
	case !errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{Error: "could not run the Node.js program: " + err.Error()}
	case exitErr.ExitCode() == exitCodeAlreadyReported:
		return &pulumirpc.RunResponse{Bail: true}
	case exitErr.ExitCode() < 0: // killed by a signal
		return &pulumirpc.RunResponse{Error: "Program was stopped: " + exitErr.String()}
	default:
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
		}
	}
}

// runArgs builds cmd/run's command line: flags, then the entry point (the
// program directory or a file in it), then the program's own arguments.
func runArgs(req *pulumirpc.RunRequest, engineAddress string) []string {
	var args []string
	flagIfSet := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	flagIfSet("monitor", req.GetMonitorAddress())
	flagIfSet("engine", engineAddress)
	flagIfSet("organization", req.GetOrganization())
	flagIfSet("project", req.GetProject())
	flagIfSet("root-directory", req.GetInfo().GetRootDirectory())
	flagIfSet("stack", req.GetStack())
	flagIfSet("pwd", req.GetInfo().GetProgramDirectory())
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if req.GetParallel() > 0 {
		flagIfSet("parallel", strconv.Itoa(int(req.GetParallel())))
	}
	entry := req.GetInfo().GetEntryPoint()
	if entry == "" {
		entry = "."
	}
	args = append(args, entry)
	return append(args, req.GetArgs()...)
}

// runEnv is our environment plus what the npm SDK reads from it: the stack's
// configuration and which of its keys are secrets (both as JSON), and the
// TypeScript options from Pulumi.yaml.
func runEnv(req *pulumirpc.RunRequest, opts nodeOptions) ([]string, error) {
	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretsJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("encoding secret config keys: %w", err)
	}

	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretsJSON),
	)
	if opts.typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if opts.tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+opts.tsconfig)
	}
	return env, nil
}

// nodeOptions are the `runtime.options` of Pulumi.yaml that we honour.
type nodeOptions struct {
	typescript bool     // run .ts through ts-node (default true)
	tsconfig   string   // tsconfig.json for ts-node to use
	nodeArgs   []string // extra node flags, split on spaces (no quoting)
}

func parseOptions(raw map[string]any) (nodeOptions, error) {
	opts := nodeOptions{typescript: true}
	var problems []string
	for key, value := range raw {
		var ok bool
		switch key {
		case "typescript":
			opts.typescript, ok = value.(bool)
		case "tsconfig":
			opts.tsconfig, ok = value.(string)
		case "nodeargs":
			var s string
			s, ok = value.(string)
			opts.nodeArgs = strings.Fields(s)
		default:
			// packagemanager, production and the like only matter to
			// features we do not have; ignore them like unknown keys.
			ok = true
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("runtime option %q has the wrong type (%T)", key, value))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return opts, errors.New(strings.Join(problems, "; "))
	}
	return opts, nil
}

// resolveModule asks node where `module` resolves from dir, so we find the
// same file node's own module resolution would load for the program.
func resolveModule(ctx context.Context, node, dir, module string) (string, error) {
	// The module name goes in argv, not into the script, so no quoting issues.
	cmd := exec.CommandContext(ctx, node, "-e", "console.log(require.resolve(process.argv[1]))", module)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("could not find %s from %s; is @pulumi/pulumi installed (npm install)? %v: %s",
			module, dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// findResourcePlugins walks the node_modules tree below programDir, through
// nested node_modules and symlinked (workspace) packages, and returns one
// entry per plugin that a package.json declares with
// `"pulumi": {"resource": true, ...}`. Packages that fail to parse are
// skipped with a warning: one broken package must not block every preview.
func findResourcePlugins(programDir string) ([]*pulumirpc.PackageDependency, error) {
	if programDir == "" {
		return nil, errors.New("request has no program directory")
	}
	found := map[string]*pulumirpc.PackageDependency{} // by name@version
	visited := map[string]bool{}                       // real package paths

	var walkModules func(dir string)
	var visitPackage func(dir string)
	walkModules = func(dir string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				warnf("reading %s: %v", dir, err)
			}
			return
		}
		for _, e := range entries {
			name := e.Name()
			switch {
			case strings.HasPrefix(name, "."): // .bin, .package-lock.json, .cache
			case strings.HasPrefix(name, "@"): // a scope holds packages
				scoped, err := os.ReadDir(filepath.Join(dir, name))
				if err != nil {
					warnf("reading %s: %v", filepath.Join(dir, name), err)
					continue
				}
				for _, s := range scoped {
					visitPackage(filepath.Join(dir, name, s.Name()))
				}
			default:
				visitPackage(filepath.Join(dir, name))
			}
		}
	}
	visitPackage = func(dir string) {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || visited[real] {
			return // dangling link, or a package reached twice
		}
		visited[real] = true
		dep, err := readPluginDeclaration(filepath.Join(real, "package.json"))
		switch {
		case err != nil:
			warnf("%v", err)
		case dep != nil:
			found[dep.Name+"@"+dep.Version] = dep
		}
		walkModules(filepath.Join(real, "node_modules"))
	}
	walkModules(filepath.Join(programDir, "node_modules"))

	// Sorted, so that the engine sees the same order every time.
	keys := make([]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	deps := make([]*pulumirpc.PackageDependency, 0, len(keys))
	for _, k := range keys {
		deps = append(deps, found[k])
	}
	return deps, nil
}

// readPluginDeclaration returns the resource plugin that one package.json
// declares, or nil when it declares none or does not exist.
func readPluginDeclaration(path string) (*pulumirpc.PackageDependency, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pkg struct {
		Name    string                  `json:"name"`
		Version string                  `json:"version"`
		Pulumi  plugin.PulumiPluginJSON `json:"pulumi"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if !pkg.Pulumi.Resource {
		return nil, nil
	}

	// Without an explicit name, only @pulumi/* packages imply one
	// (@pulumi/command -> command); a third-party scope says nothing.
	name := pkg.Pulumi.Name
	if name == "" {
		var ok bool
		if name, ok = strings.CutPrefix(pkg.Name, "@pulumi/"); !ok {
			return nil, fmt.Errorf("%s: package %q declares a Pulumi plugin but no pulumi.name", path, pkg.Name)
		}
	}
	version := pkg.Pulumi.Version
	if version == "" {
		version = pkg.Version
	}
	if version == "" {
		return nil, fmt.Errorf("%s: package %q declares a Pulumi plugin without a version", path, pkg.Name)
	}

	dep := &pulumirpc.PackageDependency{
		Name:    name,
		Kind:    "resource",
		Version: "v" + strings.TrimPrefix(version, "v"),
		Server:  pkg.Pulumi.Server,
	}
	if p := pkg.Pulumi.Parameterization; p != nil {
		dep.Parameterization = &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
	}
	if p := pkg.Pulumi.ExtensionParameterization; p != nil {
		dep.Extension = &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
	}
	return dep, nil
}

// warnf logs to our stderr, which the engine shows with -v or in its logs.
func warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: warning: "+format+"\n", args...)
}

// InstallDependencies runs `npm install` in the program directory (for
// `pulumi install`), streaming npm's output back to the engine.
func (h *languageHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()

	dir := req.GetInfo().GetProgramDirectory()
	fmt.Fprintf(stdout, "Installing dependencies in %s with npm...\n", dir)
	if _, err := npm.Install(server.Context(), npm.NpmPackageManager, dir, false, stdout, stderr); err != nil {
		return fmt.Errorf("npm install in %s: %w", dir, err)
	}
	fmt.Fprintln(stdout, "Finished installing dependencies")
	return closer.Close()
}

// RuntimeOptionsPrompts asks nothing: npm is the only package manager here.
func (h *languageHost) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

// About reports which node runs programs, for `pulumi about`.
func (h *languageHost) About(ctx context.Context, _ *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("could not find node on PATH: %w", err)
	}
	resp := &pulumirpc.AboutResponse{Executable: node, Metadata: map[string]string{"packagemanager": "npm"}}
	// A missing version is not worth failing `pulumi about` for.
	if out, err := exec.CommandContext(ctx, node, "--version").Output(); err == nil {
		resp.Version = strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	}
	return resp, nil
}

// GetProgramDependencies lists the program's npm packages (from
// package-lock.json), for `pulumi about` and update metadata.
func (h *languageHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	pm, err := npm.ResolvePackageManager(npm.NpmPackageManager, dir)
	if err != nil {
		return nil, err
	}
	pkgs, err := pm.ListPackages(ctx, dir, req.GetTransitiveDependencies())
	if err != nil {
		return nil, fmt.Errorf("listing npm packages in %s: %w", dir, err)
	}
	deps := make([]*pulumirpc.DependencyInfo, 0, len(pkgs))
	for _, p := range pkgs {
		deps = append(deps, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}
