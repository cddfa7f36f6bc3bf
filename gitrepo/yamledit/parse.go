// Package yamledit edits, validates, diffs and merges Kubernetes YAML
// manifests while keeping every byte outside the edited fields unchanged.
//
// Files are parsed with kyaml's YAML node model (go.yaml.in/yaml/v3 nodes,
// wrapped as kyaml RNodes for edits). Edits are made on a copy of the node
// tree; the result is written back by patching only the byte ranges of the
// nodes that differ, so comments, key order, quoting, blank lines and the
// indentation style of the original file survive. Each patched document is
// re-parsed and compared with the intended tree; if a textual patch would not
// produce exactly that tree, the document alone is re-encoded with kyaml
// (keeping the file's indentation and sequence style) instead.
package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"unicode/utf8"

	goccyyaml "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Limits on what is accepted as input.
const (
	// MaxFileBytes is the largest manifest file accepted.
	MaxFileBytes = 4 << 20
	// MaxDocumentBytes is the largest single YAML document accepted.
	MaxDocumentBytes = 1 << 20
	// MaxExpandedNodes bounds the number of nodes a document may have once
	// its aliases are expanded (defence against "billion laughs" documents).
	MaxExpandedNodes = 200_000
	// MaxDepth bounds nesting.
	MaxDepth = 200
)

// SyntaxError is a YAML syntax error with its position (1-based; Column is
// 0 when unknown).
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("yaml syntax error at line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	if e.Line > 0 {
		return fmt.Sprintf("yaml syntax error at line %d: %s", e.Line, e.Msg)
	}
	return "yaml syntax error: " + e.Msg
}

// LimitError reports input over one of the limits above.
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return e.Msg }

// File is a parsed manifest file: the original bytes and its documents.
type File struct {
	Src  []byte
	Docs []*yaml.Node // DocumentNodes; Content[0] is the root (absent for empty documents)

	lines []int // lines[i] = byte offset of line i+1
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses a (possibly multi-document) YAML file, enforcing the size and
// alias-expansion limits.
func Parse(src []byte) (*File, error) {
	if len(src) > MaxFileBytes {
		return nil, &LimitError{Msg: fmt.Sprintf("file is %d bytes, over the %d byte limit", len(src), MaxFileBytes)}
	}
	f := &File{Src: src, lines: lineStarts(src)}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(src, err)
		}
		if err := checkNode(&doc); err != nil {
			return nil, err
		}
		f.Docs = append(f.Docs, &doc)
	}
	for i, seg := range f.segments() {
		if seg[1]-seg[0] > MaxDocumentBytes {
			return nil, &LimitError{Msg: fmt.Sprintf("document %d is %d bytes, over the %d byte limit", i+1, seg[1]-seg[0], MaxDocumentBytes)}
		}
	}
	return f, nil
}

// syntaxError turns a yaml.v3 error into a *SyntaxError, asking goccy/go-yaml
// (which reports the offending token's line and column) for the position.
func syntaxError(src []byte, err error) error {
	se := &SyntaxError{Msg: err.Error()}
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		se.Line, _ = strconv.Atoi(m[1])
		se.Msg = m[2]
	}
	if _, perr := goccyparser.ParseBytes(src, 0); perr != nil {
		var gse *goccyyaml.SyntaxError
		if errors.As(perr, &gse) && gse.Token != nil && gse.Token.Position != nil {
			// goccy reports the offending token precisely; yaml.v3's line
			// is that of its parser context, which may be off by one.
			se.Line = gse.Token.Position.Line
			se.Column = gse.Token.Position.Column
		}
	}
	return se
}

// checkNode rejects documents whose alias expansion or depth is too large,
// and mappings with duplicate keys (ambiguous, and refused by Kubernetes).
func checkNode(doc *yaml.Node) error {
	memo := map[*yaml.Node]int{}
	var size func(n *yaml.Node, depth int) (int, error)
	size = func(n *yaml.Node, depth int) (int, error) {
		if depth > MaxDepth {
			return 0, &LimitError{Msg: fmt.Sprintf("document nests deeper than %d levels", MaxDepth)}
		}
		if v, ok := memo[n]; ok {
			if v < 0 {
				return 0, &LimitError{Msg: "recursive alias"}
			}
			return v, nil
		}
		memo[n] = -1
		if n.Kind == yaml.MappingNode {
			seen := make(map[string]bool, len(n.Content)/2)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if k.Kind != yaml.ScalarNode {
					continue
				}
				if seen[k.Value] {
					return 0, &SyntaxError{Line: k.Line, Column: k.Column, Msg: fmt.Sprintf("duplicate key %q", k.Value)}
				}
				seen[k.Value] = true
			}
		}
		total := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			s, err := size(n.Alias, depth+1)
			if err != nil {
				return 0, err
			}
			total += s
		}
		for _, c := range n.Content {
			s, err := size(c, depth+1)
			if err != nil {
				return 0, err
			}
			total += s
			if total > MaxExpandedNodes {
				break
			}
		}
		if total > MaxExpandedNodes {
			return 0, &LimitError{Msg: fmt.Sprintf("document expands to more than %d nodes (alias bomb?)", MaxExpandedNodes)}
		}
		memo[n] = total
		return total, nil
	}
	_, err := size(doc, 0)
	return err
}

func lineStarts(src []byte) []int {
	ls := []int{0}
	for i, b := range src {
		if b == '\n' {
			ls = append(ls, i+1)
		}
	}
	return ls
}

// Root returns the root content node of document i, or nil when empty.
func (f *File) Root(i int) *yaml.Node {
	if i < 0 || i >= len(f.Docs) || len(f.Docs[i].Content) == 0 {
		return nil
	}
	return f.Docs[i].Content[0]
}

// segments returns the byte range of each document's text: documents are
// separated by "---" lines. The result is aligned with f.Docs when the
// separators can be matched, otherwise a single segment covers the file.
func (f *File) segments() [][2]int {
	var seps [][2]int // [start of separator line, start of next line]
	for i, start := range f.lines {
		end := len(f.Src)
		if i+1 < len(f.lines) {
			end = f.lines[i+1]
		}
		line := f.Src[start:end]
		if bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || line[3] == ' ' || line[3] == '\n' || line[3] == '\r' || line[3] == '\t') {
			seps = append(seps, [2]int{start, end})
		}
	}
	// Segment boundaries: text before the first separator is its own segment
	// only if it contains a document.
	var segs [][2]int
	prev := 0
	for _, s := range seps {
		segs = append(segs, [2]int{prev, s[0]})
		prev = s[1]
	}
	segs = append(segs, [2]int{prev, len(f.Src)})
	// Assign documents to segments by the line of their root.
	out := make([][2]int, 0, len(f.Docs))
	for _, d := range f.Docs {
		line := d.Line
		if len(d.Content) > 0 {
			line = d.Content[0].Line
		}
		off := f.offset(line, 1)
		found := false
		for _, s := range segs {
			if off >= s[0] && off < s[1] || (off == s[1] && s[1] == len(f.Src)) {
				out = append(out, s)
				found = true
				break
			}
		}
		if !found {
			return [][2]int{{0, len(f.Src)}}
		}
	}
	if len(out) == 0 {
		return [][2]int{{0, len(f.Src)}}
	}
	return out
}

// offset converts a 1-based line and rune column to a byte offset.
func (f *File) offset(line, col int) int {
	if line < 1 {
		return 0
	}
	if line > len(f.lines) {
		return len(f.Src)
	}
	off := f.lines[line-1]
	for c := 1; c < col && off < len(f.Src) && f.Src[off] != '\n'; c++ {
		_, size := utf8.DecodeRune(f.Src[off:])
		off += size
	}
	return off
}

// toLF converts CRLF line ends to LF for editing; fromLF restores them.
func toLF(src []byte) ([]byte, bool) {
	if !bytes.Contains(src, []byte("\r\n")) {
		return src, false
	}
	return bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n")), true
}

func fromLF(out []byte, crlf bool) []byte {
	if !crlf {
		return out
	}
	return bytes.ReplaceAll(out, []byte("\n"), []byte("\r\n"))
}
