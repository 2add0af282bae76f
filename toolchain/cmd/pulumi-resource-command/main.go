// Command pulumi-resource-command is a small resource provider that stands in
// for the upstream pulumi-command plugin. The npm package @pulumi/command is
// only an SDK and needs that plugin binary, but here release downloads are
// unreachable and the Go module proxy refuses the upstream provider module.
// So this is our own implementation of the part we use: command:remote:Command
// (run commands over SSH), command:remote:CopyToRemote (upload over SFTP) and
// command:local:Command, with the same resource tokens and wire schema as
// @pulumi/command 1.2.1 so the unmodified SDK works.
//
// Install it next to the CLI with
//
//	pulumi plugin install resource command 1.2.1 --file pulumi-resource-command
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is what GetPluginInfo reports. It must equal the plugin version the
// npm SDK asks for (package.json "pulumi.version"), or the engine looks for
// another plugin.
const version = "1.2.1"

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		// host is nil when the engine attaches to an already running provider
		// (PULUMI_DEBUG_PROVIDERS); log lines are then dropped.
		var sink logSink = discardLog{}
		if host != nil {
			sink = host
		}
		return plugin.NewProviderServer(newCommandProvider(sink)), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
