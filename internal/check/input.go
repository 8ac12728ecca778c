package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Stdin is the path that names standard input.
const Stdin = "-"

// stdinSource is how messages name standard input.
const stdinSource = "stdin"

// document is one object of the input, as JSON.
type document struct {
	source string // file name, or "stdin"
	index  int    // 1-based position of the YAML document in source
	json   []byte
	gvk    schema.GroupVersionKind
	meta   objectMeta
}

// objectMeta is the part of metadata check reads before decoding.
type objectMeta struct {
	Name         string `json:"name"`
	GenerateName string `json:"generateName"`
	Namespace    string `json:"namespace"`
}

// inputError is unreadable input, located as precisely as it is known.
type inputError struct {
	source string
	index  int // 0 when the whole source is at fault
	err    error
}

func (e *inputError) Error() string {
	if e.index == 0 {
		return fmt.Sprintf("%s: %v", e.source, e.err)
	}
	return fmt.Sprintf("%s: document %d: %v", e.source, e.index, e.err)
}

func (e *inputError) Unwrap() error { return e.err }

// readDocuments reads every object of paths in order: files as given,
// directories as their .yaml and .yml files in name order (not recursing),
// "-" as stdin. It reads all of the input and reports every unreadable
// document, so that one run shows all of them.
func readDocuments(paths []string, stdin io.Reader) ([]document, error) {
	var docs []document
	var errs []error
	for _, path := range paths {
		files, err := expand(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, file := range files {
			d, err := readSource(file, stdin)
			docs = append(docs, d...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return docs, errors.Join(errs...)
}

// expand lists the files a path stands for.
func expand(path string) ([]string, error) {
	if path == Stdin {
		return []string{Stdin}, nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, &inputError{source: path, err: unwrapPathError(err)}
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, &inputError{source: path, err: unwrapPathError(err)}
	}
	var files []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.Type().IsRegular() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, &inputError{source: path, err: errors.New("directory holds no .yaml or .yml file")}
	}
	return files, nil
}

// unwrapPathError drops the path that inputError names already.
func unwrapPathError(err error) error {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

// readSource splits one file (or stdin) into its objects.
func readSource(file string, stdin io.Reader) ([]document, error) {
	source := file
	var r io.Reader
	if file == Stdin {
		source, r = stdinSource, stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, &inputError{source: file, err: unwrapPathError(err)}
		}
		defer f.Close()
		r = f
	}

	var docs []document
	var errs []error
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for index := 1; ; index++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The stream itself is broken: nothing after this point can be trusted.
			errs = append(errs, &inputError{source: source, index: index, err: err})
			break
		}
		d, err := parseDocument(raw)
		if err != nil {
			errs = append(errs, &inputError{source: source, index: index, err: err})
			continue
		}
		for i := range d {
			d[i].source, d[i].index = source, index
		}
		docs = append(docs, d...)
	}
	return docs, errors.Join(errs...)
}

// header is what every object must carry.
type header struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
}

// parseDocument converts one YAML document to its objects: none for an empty
// document, the items of a v1 List (as `kubectl get -o yaml` prints), or the
// document itself.
func parseDocument(raw []byte) ([]document, error) {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	js = bytes.TrimSpace(js)
	if bytes.Equal(js, []byte("null")) {
		return nil, nil // only comments or whitespace
	}
	obj, err := parseObject(js)
	if err != nil {
		return nil, err
	}
	if obj.gvk != (schema.GroupVersionKind{Version: "v1", Kind: "List"}) {
		return []document{obj}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(obj.json, &struct {
		Items *[]json.RawMessage `json:"items"`
	}{&items}); err != nil {
		return nil, fmt.Errorf("reading the items of a List: %w", err)
	}
	docs := make([]document, 0, len(items))
	for i, item := range items {
		d, err := parseObject(item)
		if err != nil {
			return nil, fmt.Errorf("List item %d: %w", i+1, err)
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// parseObject checks that js is an object with a kind and an apiVersion.
func parseObject(js []byte) (document, error) {
	if !bytes.HasPrefix(js, []byte("{")) {
		return document{}, errors.New("not an object: a manifest is a mapping with apiVersion and kind")
	}
	var h header
	if err := json.Unmarshal(js, &h); err != nil {
		return document{}, fmt.Errorf("reading apiVersion, kind and metadata: %w", err)
	}
	var missing []string
	if h.APIVersion == "" {
		missing = append(missing, "apiVersion")
	}
	if h.Kind == "" {
		missing = append(missing, "kind")
	}
	if len(missing) > 0 {
		return document{}, fmt.Errorf("object has no %s", strings.Join(missing, " and no "))
	}
	gv, err := schema.ParseGroupVersion(h.APIVersion)
	if err != nil {
		return document{}, err
	}
	return document{json: slices.Clone(js), gvk: gv.WithKind(h.Kind), meta: h.Metadata}, nil
}
