package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Stdin is the path that names standard input.
const Stdin = "-"

// stdinSource is how messages name standard input.
const stdinSource = "stdin"

// fileExtensions are the files read from a directory, as kubectl reads them
// (k8s.io/cli-runtime/pkg/resource.FileExtensions). A file named on its own
// is read whatever its name.
var fileExtensions = []string{".json", ".yaml", ".yml"}

// document is one object of the input, as JSON.
type document struct {
	at   position
	json []byte
	gvk  schema.GroupVersionKind
	meta objectMeta
}

// controlled reports whether the object names a controller, which creates
// it once the controller's own object exists.
func (d document) controlled() bool {
	for _, ref := range d.meta.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// objectMeta is the part of metadata check reads before decoding.
type objectMeta struct {
	Name            string `json:"name"`
	GenerateName    string `json:"generateName"`
	Namespace       string `json:"namespace"`
	OwnerReferences []struct {
		Controller *bool `json:"controller"`
	} `json:"ownerReferences"`
}

// position locates an object in the input: its source, the line its
// document or object starts on, its number in the source, and within a
// List the path to the item.
type position struct {
	source string // file name, or "stdin"
	line   int    // 0 when the whole source is at fault
	unit   string // "document" in a YAML stream, "object" in a JSON stream
	number int
	item   string // "items[2]" for an item of a List, "" otherwise
}

func (p position) String() string {
	if p.line == 0 {
		return p.source
	}
	s := fmt.Sprintf("%s:%d: %s %d", p.source, p.line, p.unit, p.number)
	if p.item != "" {
		s += ", " + p.item
	}
	return s
}

// inputError is unreadable input, located as precisely as it is known.
type inputError struct {
	at  position
	err error
}

func (e *inputError) Error() string { return fmt.Sprintf("%v: %v", e.at, e.err) }

func (e *inputError) Unwrap() error { return e.err }

// readDocuments reads every object of paths in order: files as given,
// directories as their .json, .yaml and .yml files in name order (their
// subdirectories too when recursive, as kubectl -R), "-" as stdin. It reads
// all of the input and reports every unreadable object, so that one run
// shows all of them; the objects it could read are returned with the error.
func readDocuments(paths []string, recursive bool, stdin io.Reader) ([]document, error) {
	var docs []document
	var errs []error
	for _, path := range paths {
		files, err := expand(path, recursive)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, file := range files {
			d, err := readSource(file, stdin)
			docs = append(docs, d...)
			errs = append(errs, err...)
		}
	}
	return docs, errors.Join(errs...)
}

// expand lists the files a path stands for, in the order kubectl reads them
// (filepath.WalkDir's lexical order).
func expand(path string, recursive bool) ([]string, error) {
	if path == Stdin {
		return []string{Stdin}, nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, &inputError{at: position{source: path}, err: unwrapPathError(err)}
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	subdirectories := false
	err = filepath.WalkDir(path, func(file string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return &inputError{at: position{source: file}, err: unwrapPathError(err)}
		case d.IsDir() && file != path && !recursive:
			subdirectories = true
			return filepath.SkipDir
		case !d.IsDir() && slices.Contains(fileExtensions, filepath.Ext(file)):
			files = append(files, file)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		msg := "directory holds no .json, .yaml or .yml file"
		if subdirectories {
			msg += "; its subdirectories are read with -R"
		}
		return nil, &inputError{at: position{source: path}, err: errors.New(msg)}
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

// readSource reads the objects of one file (or stdin).
func readSource(file string, stdin io.Reader) ([]document, []error) {
	source, r := file, stdin
	if file == Stdin {
		source = stdinSource
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, []error{&inputError{at: position{source: file}, err: unwrapPathError(err)}}
		}
		defer f.Close()
		r = f
	}
	// Held whole, to locate objects and errors by line.
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, []error{&inputError{at: position{source: source}, err: unwrapPathError(err)}}
	}
	s := stream{source: source, data: data}
	// A stream that starts with "{" is a JSON stream, as for kubectl
	// (utilyaml.NewYAMLOrJSONDecoder); anything else is YAML.
	if utilyaml.IsJSONBuffer(data) {
		s.readJSON()
	} else {
		s.readYAML(0, 1)
	}
	return s.docs, s.errs
}

// stream reads the objects of one source.
type stream struct {
	source string
	data   []byte
	docs   []document
	errs   []error
}

// at is the position of the unit that starts at offset.
func (s *stream) at(unit string, number, offset int) position {
	return position{source: s.source, line: 1 + bytes.Count(s.data[:offset], []byte("\n")), unit: unit, number: number}
}

// fail records an unreadable unit.
func (s *stream) fail(at position, err error) {
	s.errs = append(s.errs, &inputError{at: at, err: err})
}

// readJSON reads a JSON stream: objects one after the other, with or without
// whitespace between them (`kubectl get -o json` in a loop, `yq -o json`).
// Like utilyaml.YAMLOrJSONDecoder, a stream in which at most one object
// precedes something that is not JSON is read as YAML from there on (one
// JSON object, then "---" and YAML documents); otherwise a syntax error ends
// the stream, as nothing tells where the next object starts.
func (s *stream) readJSON() {
	dec := json.NewDecoder(bytes.NewReader(s.data))
	for number := 1; ; number++ {
		end := int(dec.InputOffset()) // of the previous object
		start := len(s.data) - len(bytes.TrimLeft(s.data[end:], " \t\r\n"))
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return
		}
		at := s.at("object", number, start)
		if err == nil {
			s.add(at, raw)
			continue
		}
		err = s.jsonError(err)
		if number > 2 {
			s.fail(at, err)
			return
		}
		// As utilyaml.YAMLOrJSONDecoder: YAML from here on, and if that
		// fails on its first document, the error is the JSON decoder's.
		failed := len(s.errs)
		s.readYAML(end, number)
		var first *inputError
		if len(s.errs) > failed && errors.As(s.errs[failed], &first) && first.at.number == number {
			s.errs[failed] = &inputError{at: at, err: err}
		}
		return
	}
}

// jsonError says where a JSON syntax error is, and that reading stops there.
func (s *stream) jsonError(err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		// Offset counts from the start of the stream, the bad byte included.
		before := s.data[:min(max(int(syntax.Offset)-1, 0), len(s.data))]
		line := 1 + bytes.Count(before, []byte("\n"))
		column := 1 + len(before) - (bytes.LastIndexByte(before, '\n') + 1)
		return fmt.Errorf("line %d, column %d: %w; nothing after it in %s is read", line, column, err, s.source)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s ends inside the object", s.source)
	}
	return err
}

// readYAML reads the YAML documents of the stream from offset on, numbering
// them from number. The documents are split by apimachinery's YAMLReader
// (kubectl's own), on "---" lines.
func (s *stream) readYAML(offset, number int) {
	rest := bytes.NewReader(s.data[offset:])
	buffered := bufio.NewReader(rest)
	reader := utilyaml.NewYAMLReader(buffered)
	consumed := func() int { return offset + int(rest.Size()) - rest.Len() - buffered.Buffered() }
	for {
		from := consumed()
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		// Documents of only comments or whitespace are not counted: they
		// are not documents to the reader of the file either.
		at := s.at("document", number, documentStart(s.data, from))
		if err != nil {
			// A bad separator line: the reader goes on after it.
			s.fail(at, err)
			number++
			continue
		}
		// The YAML parser counts lines from the start of what it is given:
		// as many empty lines as precede the document make its line
		// numbers the file's.
		lines := at.line - 1
		js, err := yaml.YAMLToJSON(append(bytes.Repeat([]byte("\n"), lines), raw...))
		if js = bytes.TrimSpace(js); err == nil && bytes.Equal(js, []byte("null")) {
			continue
		}
		number++
		if err == nil {
			err = oneNode(raw)
		}
		if err != nil {
			s.fail(at, err)
			continue
		}
		s.add(at, js)
	}
}

// oneNode reports an error when a YAML document holds more than its first
// node, which the YAML parser would silently leave out: objects one after
// the other in flow style ({...}{...}), or a document after a "..." line.
// The document parsed as YAML already.
func oneNode(doc []byte) error {
	dec := yamlv2.NewDecoder(bytes.NewReader(doc))
	var node any
	if err := dec.Decode(&node); err != nil {
		return err
	}
	if err := dec.Decode(&node); !errors.Is(err, io.EOF) {
		return errors.New(`more than one object in one YAML document: separate them with a line "---"`)
	}
	return nil
}

// documentStart is the offset of the first line at or after from that is
// not a document separator: where YAMLReader's next document starts.
func documentStart(data []byte, from int) int {
	for from < len(data) && bytes.HasPrefix(data[from:], []byte("---")) {
		next := bytes.IndexByte(data[from:], '\n')
		if next < 0 {
			return len(data)
		}
		from += next + 1
	}
	return from
}

// add adds the object js read at at, or the items of a list.
func (s *stream) add(at position, js []byte) {
	d, err := parseObject(js)
	if err != nil {
		s.fail(at, err)
		return
	}
	d.at = at
	items, isList, err := listItems(d)
	switch {
	case err != nil:
		s.fail(at, err)
	case !isList:
		s.docs = append(s.docs, d)
	default:
		for i, item := range items {
			itemAt := at
			itemAt.item = fmt.Sprintf("items[%d]", i)
			if at.item != "" {
				itemAt.item = at.item + "." + itemAt.item
			}
			s.add(itemAt, item)
		}
	}
}

// listItems returns the items of a list, as kubectl flattens one: any object
// with an "items" field is a list (v1 List, DeploymentList, ...), and an
// item with neither kind nor apiVersion is of the list's kind less "List" and
// of its apiVersion (apimachinery's unstructuredJSONScheme.decodeToList, as
// the API server leaves them out of a typed list).
func listItems(list document) ([]json.RawMessage, bool, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(list.json, &fields); err != nil {
		return nil, false, err
	}
	raw, ok := fields["items"]
	if !ok {
		return nil, false, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, true, fmt.Errorf("reading the items of %s: %w", list.gvk.Kind, err)
	}
	itemKind := strings.TrimSuffix(list.gvk.Kind, "List")
	for i, item := range items {
		var h header
		if json.Unmarshal(item, &h) != nil || h.Kind != "" || h.APIVersion != "" || itemKind == "" {
			continue // parseObject says what is wrong with it, if anything
		}
		typed, err := withFields(item, map[string]any{"apiVersion": list.gvk.GroupVersion().String(), "kind": itemKind})
		if err != nil {
			return nil, true, fmt.Errorf("items[%d]: %w", i, err)
		}
		items[i] = typed
	}
	return items, true, nil
}

// header is what every object must carry.
type header struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
}

// parseObject checks that js is an object with a kind and an apiVersion.
func parseObject(js []byte) (document, error) {
	js = bytes.TrimSpace(js)
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

// withFields sets top-level fields of a JSON object. Numbers are kept as
// written (json.Number), not rounded through float64.
func withFields(js []byte, fields map[string]any) ([]byte, error) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("not an object")
	}
	for k, v := range fields {
		obj[k] = v
	}
	return json.Marshal(obj)
}
