package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// commandArgs are the inputs of both resource types. Pointers tell "unset"
// from "empty", which matters for create/update/delete.
type commandArgs struct {
	Create                 *string           `json:"create"`
	Update                 *string           `json:"update"`
	Delete                 *string           `json:"delete"`
	Stdin                  *string           `json:"stdin"`
	Environment            map[string]string `json:"environment"`
	Logging                string            `json:"logging"`
	AddPreviousOutputInEnv *bool             `json:"addPreviousOutputInEnv"`

	Connection *connection `json:"connection"` // remote only

	Dir          *string  `json:"dir"`          // local only
	Interpreter  []string `json:"interpreter"`  // local only
	AssetPaths   []string `json:"assetPaths"`   // local only; rejected by Check
	ArchivePaths []string `json:"archivePaths"` // local only; rejected by Check
}

// connection is command:remote:Connection. The SDK already fills in the
// schema defaults; the accessors repeat them for other clients.
type connection struct {
	Host               string   `json:"host"`
	Port               *float64 `json:"port"`
	User               *string  `json:"user"`
	Password           *string  `json:"password"`
	PrivateKey         *string  `json:"privateKey"`
	PrivateKeyPassword *string  `json:"privateKeyPassword"`
	AgentSocketPath    *string  `json:"agentSocketPath"`
	DialErrorLimit     *int     `json:"dialErrorLimit"`
	PerDialTimeout     *int     `json:"perDialTimeout"`
	HostKey            *string  `json:"hostKey"`
	Proxy              any      `json:"proxy"`
}

func (c *connection) port() int {
	if c.Port == nil {
		return 22
	}
	return int(*c.Port)
}

func (c *connection) user() string {
	if c.User == nil {
		return "root"
	}
	return *c.User
}

func (c *connection) dialErrorLimit() int {
	if c.DialErrorLimit == nil {
		return 10
	}
	return *c.DialErrorLimit
}

func (c *connection) perDialTimeout() time.Duration {
	if c.PerDialTimeout == nil {
		return 15 * time.Second
	}
	return time.Duration(*c.PerDialTimeout) * time.Second
}

var loggingValues = []string{"stdout", "stderr", "stdoutAndStderr", "none"}

func (a *commandArgs) logStdout() bool {
	return a.Logging == "" || a.Logging == "stdout" || a.Logging == "stdoutAndStderr"
}

func (a *commandArgs) logStderr() bool {
	return a.Logging == "" || a.Logging == "stderr" || a.Logging == "stdoutAndStderr"
}

func (a *commandArgs) addPreviousOutput() bool {
	return a.AddPreviousOutputInEnv == nil || *a.AddPreviousOutputInEnv
}

var errUnknown = errors.New("value is not known yet")

// skipKey reports keys that are never decoded: triggers may hold any value
// (assets, resource references) and only matter to Diff; the others are
// outputs or engine-internal.
func skipKey(k resource.PropertyKey) bool {
	return k == "triggers" || k == "stdout" || k == "stderr" || strings.HasPrefix(string(k), "__")
}

// plainValue strips secret markers so a value can be decoded with
// encoding/json. Unknown values (only seen during preview) are an error.
func plainValue(v resource.PropertyValue) (any, error) {
	switch {
	case v.IsSecret():
		return plainValue(v.SecretValue().Element)
	case v.IsOutput():
		if o := v.OutputValue(); o.Known {
			return plainValue(o.Element)
		}
		return nil, errUnknown
	case v.IsComputed():
		return nil, errUnknown
	case v.IsNull(), v.IsString(), v.IsNumber(), v.IsBool():
		return v.V, nil
	case v.IsArray():
		out := make([]any, 0, len(v.ArrayValue()))
		for _, e := range v.ArrayValue() {
			p, err := plainValue(e)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			p, err := plainValue(e)
			if err != nil {
				return nil, err
			}
			out[string(k)] = p
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %s", v.TypeString())
}

// decodeKey decodes one property into args, a pointer to an args struct.
// Decoding key by key lets Check name the property that is wrong.
func decodeKey(args any, k resource.PropertyKey, v resource.PropertyValue) error {
	p, err := plainValue(v)
	if err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{string(k): p})
	if err != nil {
		return err
	}
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(b, args); errors.As(err, &typeErr) {
		// The default message names Go types; say what the schema expects.
		err = fmt.Errorf("expected %s, got a %s", schemaType(typeErr.Type.String()), typeErr.Value)
		if typeErr.Field != "" && typeErr.Field != string(k) {
			err = fmt.Errorf("%s: %w", typeErr.Field, err)
		}
		return err
	} else if err != nil {
		return err
	}
	return nil
}

func schemaType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map["):
		return "an object of strings"
	case strings.HasPrefix(goType, "[]"):
		return "a list of strings"
	case goType == "int":
		return "an integer"
	case goType == "float64":
		return "a number"
	}
	return "a " + goType
}

// decodeArgs decodes all inputs. It fails on unknown values, so call it only
// when a command is about to run.
func decodeArgs(m resource.PropertyMap) (commandArgs, error) {
	var args commandArgs
	for k, v := range m {
		if skipKey(k) {
			continue
		}
		if err := decodeKey(&args, k, v); err != nil {
			return commandArgs{}, fmt.Errorf("invalid input %q: %w", k, err)
		}
	}
	return args, nil
}

// checkArgs validates the inputs of a resource of type typ, skipping values
// that are not known yet. It returns every problem at once.
func checkArgs(typ string, m resource.PropertyMap) []plugin.CheckFailure {
	var failures []plugin.CheckFailure
	fail := func(prop, format string, a ...any) {
		failures = append(failures, plugin.CheckFailure{
			Property: resource.PropertyKey(prop), Reason: fmt.Sprintf(format, a...),
		})
	}

	var args commandArgs
	for _, k := range m.StableKeys() {
		v := m[k]
		if skipKey(k) || v.ContainsUnknowns() {
			continue
		}
		if err := decodeKey(&args, k, v); err != nil {
			fail(string(k), "%s", err)
		}
	}
	if v, ok := m["logging"]; ok && !v.ContainsUnknowns() && args.Logging != "" &&
		!slices.Contains(loggingValues, args.Logging) {
		fail("logging", "%q is not one of %s", args.Logging, strings.Join(loggingValues, ", "))
	}

	switch typ {
	case remoteCommandType:
		checkConnection(m, args.Connection, fail)
	case localCommandType:
		if len(args.AssetPaths) > 0 {
			fail("assetPaths", "not supported by this provider")
		}
		if len(args.ArchivePaths) > 0 {
			fail("archivePaths", "not supported by this provider")
		}
	}
	return failures
}

// checkConnection checks the connection input of a remote resource; conn is
// its decoded value, nil when it did not decode.
func checkConnection(m resource.PropertyMap, conn *connection, fail func(prop, format string, a ...any)) {
	v, ok := m["connection"]
	switch {
	case !ok || v.IsNull():
		fail("connection", "missing required property")
	case v.ContainsUnknowns():
		// Checked again once known, at the real run.
	case conn != nil && conn.Host == "":
		fail("connection.host", "missing required property")
	case conn != nil && conn.Proxy != nil:
		fail("connection.proxy", "proxy connections are not supported by this provider")
	}
}
