package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// command:remote:CopyToRemote uploads a file, a directory or a text over
// SFTP, with upstream 1.2.1's semantics:
//
//   - The outputs are the inputs; nothing is added.
//   - Create copies. Update copies again only when the source's hash or
//     remotePath changed; a change of triggers replaces instead (Diff).
//   - Delete leaves the remote copy in place, and Read returns the state as it
//     is: the remote side is never read back.
//   - A copied file gets the SFTP server's default mode for new files
//     (OpenSSH: 0666 less its umask), not the local file's; an existing file
//     keeps its mode. Run a command afterwards to chmod a program.
const copyToRemoteType = "command:remote:CopyToRemote"

// copyArgs are CopyToRemote's inputs other than source and triggers.
type copyArgs struct {
	Connection *connection `json:"connection"`
	RemotePath *string     `json:"remotePath"`
}

// copySource is what a CopyToRemote uploads: a text (StringAsset), or a local
// file or directory (FileAsset or FileArchive; an archive file such as .tgz
// is uploaded as it is, not unpacked).
type copySource struct {
	text   *string
	path   string
	hash   string // as the engine computed it from the content
	isText bool
}

// sourceOf reads the source input. Like upstream, an asset must be a text or
// a path, and an archive a path: URIs and archives built from assets are
// refused.
func sourceOf(v resource.PropertyValue) (copySource, error) {
	switch {
	case v.IsSecret():
		return sourceOf(v.SecretValue().Element)
	case v.IsOutput():
		if o := v.OutputValue(); o.Known {
			return sourceOf(o.Element)
		}
		return copySource{}, errUnknown
	case v.IsComputed():
		return copySource{}, errUnknown
	case v.IsAsset():
		a := v.AssetValue()
		switch {
		case a.IsPath():
			return copySource{path: a.Path, hash: a.Hash}, nil
		case a.IsText():
			return copySource{text: &a.Text, hash: a.Hash, isText: true}, nil
		}
		return copySource{}, errors.New("an asset must be a FileAsset or a StringAsset")
	case v.IsArchive():
		a := v.ArchiveValue()
		if a.IsPath() {
			return copySource{path: a.Path, hash: a.Hash}, nil
		}
		return copySource{}, errors.New("an archive must be a FileArchive (a path to a file or directory)")
	}
	return copySource{}, fmt.Errorf("expected an asset or an archive, got a %s", v.TypeString())
}

func decodeCopyArgs(m resource.PropertyMap) (copyArgs, copySource, error) {
	var args copyArgs
	for k, v := range m {
		if k == "source" || k == "triggers" || strings.HasPrefix(string(k), "__") {
			continue
		}
		if err := decodeKey(&args, k, v); err != nil {
			return copyArgs{}, copySource{}, fmt.Errorf("invalid input %q: %w", k, err)
		}
	}
	if args.Connection == nil {
		return copyArgs{}, copySource{}, errors.New("connection is required")
	}
	if args.RemotePath == nil {
		return copyArgs{}, copySource{}, errors.New("remotePath is required")
	}
	src, err := sourceOf(m["source"])
	if err != nil {
		return copyArgs{}, copySource{}, fmt.Errorf("invalid input \"source\": %w", err)
	}
	return args, src, nil
}

// checkCopyArgs validates CopyToRemote's inputs, skipping values that are not
// known yet, and returns every problem at once.
func checkCopyArgs(m resource.PropertyMap) []plugin.CheckFailure {
	var failures []plugin.CheckFailure
	fail := func(prop, format string, a ...any) {
		failures = append(failures, plugin.CheckFailure{
			Property: resource.PropertyKey(prop), Reason: fmt.Sprintf(format, a...),
		})
	}
	var args copyArgs
	for _, k := range m.StableKeys() {
		v := m[k]
		if k == "source" || k == "triggers" || strings.HasPrefix(string(k), "__") || v.ContainsUnknowns() {
			continue
		}
		if err := decodeKey(&args, k, v); err != nil {
			fail(string(k), "%s", err)
		}
	}
	checkConnection(m, args.Connection, fail)
	if v, ok := m["source"]; !ok || v.IsNull() {
		fail("source", "missing required property")
	} else if _, err := sourceOf(v); err != nil && !errors.Is(err, errUnknown) {
		fail("source", "%s", err)
	}
	if v, ok := m["remotePath"]; !ok || v.IsNull() {
		fail("remotePath", "missing required property")
	}
	return failures
}

func (p *commandProvider) createCopy(ctx context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	state := req.Properties.Copy()
	secretConnection(state)
	if req.Preview {
		return plugin.CreateResponse{Properties: state}, nil
	}
	if err := p.copyToRemote(ctx, req.URN, req.Properties, req.Timeout); err != nil {
		// As for a command, a failed create leaves no resource behind.
		return plugin.CreateResponse{}, err
	}
	// Upstream's IDs for this resource are random hex, without the name.
	id, err := resource.NewUniqueHexID("", 8, 0)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	return plugin.CreateResponse{ID: id, Properties: state}, nil
}

func (p *commandProvider) updateCopy(ctx context.Context, req plugin.UpdateRequest) (plugin.UpdateResponse, error) {
	state := req.NewInputs.Copy()
	secretConnection(state)
	if req.Preview || !copyNeeded(req.OldOutputs, req.NewInputs) {
		return plugin.UpdateResponse{Properties: state}, nil
	}
	if err := p.copyToRemote(ctx, req.URN, req.NewInputs, req.Timeout); err != nil {
		return plugin.UpdateResponse{}, err
	}
	return plugin.UpdateResponse{Properties: state}, nil
}

// copyNeeded says whether an update must copy again: as upstream, only when
// the source's content (its hash) or remotePath changed. Any other change,
// such as a new password in connection, is only recorded.
func copyNeeded(state, news resource.PropertyMap) bool {
	oldArgs, oldSrc, err := decodeCopyArgs(state)
	if err != nil {
		return true
	}
	newArgs, newSrc, err := decodeCopyArgs(news)
	if err != nil {
		return true // copyToRemote reports the error
	}
	return oldSrc.hash != newSrc.hash || *oldArgs.RemotePath != *newArgs.RemotePath
}

// copyToRemote dials the connection and copies source to remotePath.
func (p *commandProvider) copyToRemote(
	ctx context.Context, urn resource.URN, inputs resource.PropertyMap, timeout float64,
) error {
	args, src, err := decodeCopyArgs(inputs)
	if err != nil {
		return err
	}
	c := args.Connection
	if c.Proxy != nil {
		return errors.New("connection.proxy is not supported by this provider")
	}
	// Fail on a missing source before dialling; upstream dials first.
	if !src.isText {
		if _, err := os.Stat(src.path); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	}

	ctx, cancel := p.opContext(ctx, timeout)
	defer cancel()
	client, err := c.dial(ctx, p.status(ctx, urn))
	if err != nil {
		return err
	}
	defer client.Close()
	// SFTP calls take no context: cancellation closes the connection.
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()

	where := c.user() + "@" + c.address()
	// A single writer per file, so concurrent writes cannot leave holes.
	sc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true))
	if err != nil {
		return fmt.Errorf("sftp %s: start the SFTP subsystem: %w", where, err)
	}
	defer sc.Close()

	remotePath := *args.RemotePath
	if src.isText {
		err = putText(sc, *src.text, remotePath)
	} else {
		err = putPath(sc, src.path, remotePath)
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("sftp %s: %w", where, err)
	}
	return nil
}

// remoteStat returns nil, nil when nothing is at name.
func remoteStat(sc *sftp.Client, name string) (fs.FileInfo, error) {
	fi, err := sc.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	return fi, nil
}

// putText writes text to the file remotePath, creating parent directories.
func putText(sc *sftp.Client, text, remotePath string) error {
	fi, err := remoteStat(sc, remotePath)
	if err != nil {
		return err
	}
	if fi != nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory: a StringAsset needs remotePath to name a file", remotePath)
	}
	if err := sc.MkdirAll(path.Dir(remotePath)); err != nil {
		return fmt.Errorf("create parent directories of %s: %w", remotePath, err)
	}
	f, err := sc.Create(remotePath)
	if err != nil {
		return fmt.Errorf("create %s: %w", remotePath, err)
	}
	if _, err := f.Write([]byte(text)); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", remotePath, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", remotePath, err)
	}
	return nil
}

// putPath copies the local file or directory src as upstream does. A
// directory goes inside remotePath under its own name, unless src ends in a
// slash: then its contents go straight into remotePath.
//
//	src    remotePath: a directory   missing                  a file
//	file   remotePath/file           remotePath (parents)     remotePath, overwritten
//	dir    remotePath/dir/...        remotePath/dir/...       error
//	dir/   remotePath/...            remotePath/...           error
func putPath(sc *sftp.Client, src, remotePath string) error {
	info, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	dest, err := remoteStat(sc, remotePath)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		switch {
		case dest != nil && dest.IsDir():
			remotePath = path.Join(remotePath, filepath.Base(src))
		case dest == nil:
			if err := sc.MkdirAll(path.Dir(remotePath)); err != nil {
				return fmt.Errorf("create parent directories of %s: %w", remotePath, err)
			}
		}
		return putFile(sc, src, remotePath)
	}

	if dest == nil {
		if err := sc.MkdirAll(remotePath); err != nil {
			return fmt.Errorf("create directory %s: %w", remotePath, err)
		}
	}
	if !strings.HasSuffix(src, "/") {
		remotePath = path.Join(remotePath, filepath.Base(src))
	}
	return putDir(sc, src, remotePath)
}

// putDir copies the tree under src into remotePath, making directories as
// needed and overwriting files. Nothing is deleted on the remote side.
func putDir(sc *sftp.Client, src, remotePath string) error {
	return fs.WalkDir(os.DirFS(src), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		to := path.Join(remotePath, filepath.ToSlash(rel))
		if !d.IsDir() {
			return putFile(sc, filepath.Join(src, rel), to)
		}
		fi, err := remoteStat(sc, to)
		switch {
		case err != nil:
			return err
		case fi == nil:
			if err := sc.Mkdir(to); err != nil {
				return fmt.Errorf("create directory %s: %w", to, err)
			}
		case !fi.IsDir():
			return fmt.Errorf("%s exists and is not a directory", to)
		}
		return nil
	})
}

// putFile uploads one local file. sftp's Create sends no attributes, so a new
// file gets the server's default mode, as upstream's.
func putFile(sc *sftp.Client, local, remote string) error {
	in, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer in.Close()
	out, err := sc.Create(remote)
	if err != nil {
		return fmt.Errorf("create %s: %w", remote, err)
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", local, remote, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", local, remote, err)
	}
	return nil
}
