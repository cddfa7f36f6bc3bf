package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// errUnsupported means a textual patch cannot be made safely for some
// layout; the document is then re-encoded instead.
var errUnsupported = errors.New("layout not supported by textual patch")

type textEdit struct {
	start, end int
	text       string
}

// docStyle is the formatting style of a document, used for new content.
type docStyle struct {
	indent int  // spaces per nesting level of mappings
	wide   bool // sequences indented under their key ("wide") or not ("compact")
}

type slotKind int

const (
	slotRoot slotKind = iota
	slotMapValue
	slotSeqItem
)

// slot says where a node sits: the document root, the value of key, or an
// item of a block sequence whose dashes are at column indent.
type slot struct {
	kind   slotKind
	key    *yaml.Node
	indent int
}

type patcher struct {
	f     *File
	style docStyle
	edits []textEdit
}

// Render writes docs back as file bytes. docs are edited copies of f.Docs
// in the same order; a nil entry deletes that document, and extra trailing
// documents are appended. Only the byte ranges of nodes that changed are
// rewritten; see the package comment.
func (f *File) Render(docs []*yaml.Node) ([]byte, error) {
	var want []*yaml.Node // the documents of the result
	var origin []int      // index in docs of each wanted document
	for i, d := range docs {
		if d != nil {
			want = append(want, d)
			origin = append(origin, i)
		}
	}
	segs := f.segments()
	if len(docs) < len(f.Docs) || len(segs) != len(f.Docs) || len(f.Docs) == 0 {
		return encodeDocs(want, styleOfFile(f))
	}
	fallback := make([]bool, len(docs))
	for attempt := 0; attempt < 3; attempt++ {
		var edits []textEdit
		for i := range f.Docs {
			st := styleOf(f.Root(i))
			if docs[i] == nil {
				// Delete the document with the separator before it (or,
				// for the first, the one after it).
				switch {
				case i > 0:
					edits = append(edits, textEdit{segs[i-1][1], segs[i][1], ""})
				case len(segs) > 1:
					edits = append(edits, textEdit{segs[0][0], segs[1][0], ""})
				default:
					edits = append(edits, textEdit{0, len(f.Src), ""})
				}
				continue
			}
			if !fallback[i] {
				oldR, newR := f.Root(i), rootOf(docs[i])
				switch {
				case oldR == nil && newR == nil:
					continue
				case oldR != nil && newR != nil:
					p := &patcher{f: f, style: st}
					if err := p.diff(oldR, newR, slot{kind: slotRoot, indent: -1}); err == nil {
						edits = append(edits, p.edits...)
						continue
					}
				}
				fallback[i] = true
			}
			text, err := encodeDocs([]*yaml.Node{docs[i]}, st)
			if err != nil {
				return nil, err
			}
			edits = append(edits, textEdit{segs[i][0], segs[i][1], string(text)})
		}
		out, err := applyEdits(f.Src, edits)
		if err != nil {
			for i := range fallback {
				fallback[i] = true
			}
			continue
		}
		if extraDocs := nonNil(docs[len(f.Docs):]); len(extraDocs) > 0 {
			extra, err := encodeDocs(extraDocs, styleOfFile(f))
			if err != nil {
				return nil, err
			}
			if len(out) > 0 && out[len(out)-1] != '\n' {
				out = append(out, '\n')
			}
			if len(bytes.TrimSpace(out)) > 0 {
				out = append(out, "---\n"...)
			}
			out = append(out, extra...)
		}
		g, err := Parse(out)
		if err != nil || len(g.Docs) != len(want) {
			for i := range fallback {
				fallback[i] = true
			}
			continue
		}
		ok := true
		for j := range want {
			if !equalNodes(g.Root(j), rootOf(want[j])) {
				ok = false
				fallback[origin[j]] = true
			}
		}
		if ok {
			return out, nil
		}
	}
	return encodeDocs(want, styleOfFile(f))
}

func nonNil(docs []*yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for _, d := range docs {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

func rootOf(doc *yaml.Node) *yaml.Node {
	if doc == nil {
		return nil
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		return doc.Content[0]
	}
	return doc
}

func applyEdits(src []byte, edits []textEdit) ([]byte, error) {
	// By start; at the same start an insertion (empty range) goes before
	// the deletion or replacement that begins there.
	sort.SliceStable(edits, func(i, j int) bool {
		if edits[i].start != edits[j].start {
			return edits[i].start < edits[j].start
		}
		return edits[i].end < edits[j].end
	})
	var out bytes.Buffer
	prev := 0
	for _, e := range edits {
		if e.start < prev || e.end < e.start || e.end > len(src) {
			return nil, errUnsupported
		}
		out.Write(src[prev:e.start])
		out.WriteString(e.text)
		prev = e.end
	}
	out.Write(src[prev:])
	return out.Bytes(), nil
}

// encodeDocs re-encodes whole documents with kyaml's encoder settings,
// adjusted to the file's indentation and sequence style.
func encodeDocs(docs []*yaml.Node, st docStyle) ([]byte, error) {
	var buf bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		if rootOf(d) == nil {
			continue
		}
		var one bytes.Buffer
		enc := newEncoder(&one, st)
		d = deepCopy(d)
		quoteYAML11(d)
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("encode yaml: %w", err)
		}
		if err := enc.Close(); err != nil {
			return nil, fmt.Errorf("encode yaml: %w", err)
		}
		buf.Write(one.Bytes())
	}
	return buf.Bytes(), nil
}

func newEncoder(w *bytes.Buffer, st docStyle) *yaml3.Encoder {
	enc := yaml3.NewEncoder(w)
	enc.SetIndent(st.indent)
	if !st.wide {
		enc.CompactSeqIndent()
	}
	return enc
}

func styleOfFile(f *File) docStyle {
	for i := range f.Docs {
		if r := f.Root(i); r != nil {
			return styleOf(r)
		}
	}
	return docStyle{indent: yaml.DefaultIndent}
}

// styleOf derives the indentation unit and sequence style of a document.
func styleOf(root *yaml.Node) docStyle {
	st := docStyle{indent: 0}
	seqKnown := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || (st.indent > 0 && seqKnown) {
			return
		}
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0 {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Line > k.Line {
					switch v.Kind {
					case yaml.MappingNode:
						if d := v.Content[0].Column - k.Column; d > 0 && st.indent == 0 {
							st.indent = d
						}
					case yaml.SequenceNode:
						if !seqKnown {
							seqKnown = true
							st.wide = v.Column > k.Column
						}
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	if st.indent <= 0 || st.indent > 8 {
		st.indent = yaml.DefaultIndent
	}
	return st
}

// --- positions ---

func (p *patcher) pos(n *yaml.Node) int { return p.f.offset(n.Line, n.Column) }

func (p *patcher) lineStartOf(off int) int {
	for off > 0 && p.f.Src[off-1] != '\n' {
		off--
	}
	return off
}

func (p *patcher) lineEndOf(off int) int {
	if i := bytes.IndexByte(p.f.Src[off:], '\n'); i >= 0 {
		return off + i
	}
	return len(p.f.Src)
}

func (p *patcher) nextLine(off int) int {
	e := p.lineEndOf(off)
	if e < len(p.f.Src) {
		return e + 1
	}
	return e
}

func (p *patcher) firstOnLine(off int) bool {
	ls := p.lineStartOf(off)
	return len(bytes.Trim(p.f.Src[ls:off], " ")) == 0
}

func isEmptyNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "" && n.Style == 0 && n.ShortTag() == "!!null"
}

// scalarEnd returns the offset just past the text of scalar n. indent is
// the column of the enclosing key or dash (block scalar content lies right of
// it).
func (p *patcher) scalarEnd(n *yaml.Node, indent int) (int, error) {
	src := p.f.Src
	s := p.pos(n)
	if s >= len(src) {
		if n.Value == "" {
			return s, nil
		}
		return 0, errUnsupported
	}
	if c := src[s]; c == '!' || c == '&' || c == '*' {
		return 0, errUnsupported
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if src[s] != '"' {
			return 0, errUnsupported
		}
		for i := s + 1; i < len(src); i++ {
			switch src[i] {
			case '\\':
				i++
			case '"':
				return i + 1, nil
			}
		}
		return 0, errUnsupported
	case n.Style&yaml.SingleQuotedStyle != 0:
		if src[s] != '\'' {
			return 0, errUnsupported
		}
		for i := s + 1; i < len(src); i++ {
			if src[i] == '\'' {
				if i+1 < len(src) && src[i+1] == '\'' {
					i++
					continue
				}
				return i + 1, nil
			}
		}
		return 0, errUnsupported
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		if src[s] != '|' && src[s] != '>' {
			return 0, errUnsupported
		}
		end := p.lineEndOf(s)
		off := end + 1
		for off < len(src) {
			le := p.lineEndOf(off)
			line := src[off:le]
			if len(bytes.TrimSpace(line)) == 0 {
				off = le + 1
				continue
			}
			ind := len(line) - len(bytes.TrimLeft(line, " "))
			if ind <= indent {
				break
			}
			end = le
			off = le + 1
		}
		return end, nil
	}
	if isEmptyNull(n) {
		return s, nil
	}
	i := s
	for i < len(src) {
		c := src[i]
		if c == '\n' || c == '\r' {
			break
		}
		if c == '#' && i > s && (src[i-1] == ' ' || src[i-1] == '\t') {
			break
		}
		if c == ':' && (i+1 == len(src) || src[i+1] == ' ' || src[i+1] == '\t' || src[i+1] == '\n' || src[i+1] == '\r') {
			break
		}
		i++
	}
	e := i
	for e > s && (src[e-1] == ' ' || src[e-1] == '\t') {
		e--
	}
	if string(src[s:e]) != n.Value {
		return 0, errUnsupported
	}
	return e, nil
}

// colonEnd returns the offset just past the ':' that follows key k.
func (p *patcher) colonEnd(k *yaml.Node) (int, error) {
	e, err := p.scalarEnd(k, -1)
	if err != nil {
		return 0, err
	}
	src := p.f.Src
	for e < len(src) && (src[e] == ' ' || src[e] == '\t') {
		e++
	}
	if e >= len(src) || src[e] != ':' {
		return 0, errUnsupported
	}
	return e + 1, nil
}

// flowEnd returns the offset just past a flow collection.
func (p *patcher) flowEnd(n *yaml.Node) (int, error) {
	src := p.f.Src
	s := p.pos(n)
	if s >= len(src) || (src[s] != '{' && src[s] != '[') {
		return 0, errUnsupported
	}
	depth := 0
	for i := s; i < len(src); i++ {
		switch c := src[i]; c {
		case '"':
			for i++; i < len(src) && src[i] != '"'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case '\'':
			for i++; i < len(src); i++ {
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
		case '#':
			if i > 0 && (src[i-1] == ' ' || src[i-1] == '\t' || src[i-1] == '\n') {
				i = p.lineEndOf(i)
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		}
	}
	return 0, errUnsupported
}

// nodeEnd returns the offset just past the last character of node n.
func (p *patcher) nodeEnd(n *yaml.Node, indent int) (int, error) {
	switch n.Kind {
	case yaml.AliasNode:
		s := p.pos(n)
		if s >= len(p.f.Src) || p.f.Src[s] != '*' {
			return 0, errUnsupported
		}
		return s + 1 + len(n.Value), nil
	case yaml.ScalarNode:
		return p.scalarEnd(n, indent)
	case yaml.MappingNode, yaml.SequenceNode:
		if n.Style&yaml.FlowStyle != 0 || len(n.Content) == 0 {
			return p.flowEnd(n)
		}
		if n.Kind == yaml.MappingNode {
			k, v := n.Content[len(n.Content)-2], n.Content[len(n.Content)-1]
			if isEmptyNull(v) {
				return p.colonEnd(k)
			}
			return p.nodeEnd(v, k.Column-1)
		}
		last := n.Content[len(n.Content)-1]
		if isEmptyNull(last) {
			return 0, errUnsupported
		}
		return p.nodeEnd(last, n.Column-1)
	}
	return 0, errUnsupported
}

// dashOf returns the offset of the '-' introducing block sequence item n.
func (p *patcher) dashOf(n *yaml.Node) (int, error) {
	if isEmptyNull(n) {
		return 0, errUnsupported
	}
	i := p.pos(n) - 1
	for i >= 0 && p.f.Src[i] == ' ' {
		i--
	}
	if i < 0 || p.f.Src[i] != '-' || !p.firstOnLine(i) {
		return 0, errUnsupported
	}
	return i, nil
}

// extendOverComment moves start up over the comment lines of head comment hc.
func (p *patcher) extendOverComment(start int, hc string) int {
	if hc == "" {
		return start
	}
	n := strings.Count(hc, "\n") + 1
	for ; n > 0 && start > 0; n-- {
		prev := p.lineStartOf(start - 1)
		if !bytes.HasPrefix(bytes.TrimLeft(p.f.Src[prev:start], " "), []byte("#")) {
			break
		}
		start = prev
	}
	return start
}

// afterNestedComments moves a line start past comment lines indented more
// than col: they belong to the nested content just before them.
func (p *patcher) afterNestedComments(at, col int) int {
	src := p.f.Src
	for at < len(src) {
		le := p.lineEndOf(at)
		line := src[at:le]
		trimmed := bytes.TrimLeft(line, " ")
		if !bytes.HasPrefix(trimmed, []byte("#")) || len(line)-len(trimmed) <= col {
			break
		}
		at = p.nextLine(at)
		if le == len(src) {
			break
		}
	}
	return at
}

func (p *patcher) add(start, end int, text string) {
	p.edits = append(p.edits, textEdit{start, end, text})
}

// insertLines inserts text (whole lines ending in "\n") at a line start.
func (p *patcher) insertLines(at int, text string) {
	if at == len(p.f.Src) && len(p.f.Src) > 0 && p.f.Src[len(p.f.Src)-1] != '\n' {
		text = "\n" + strings.TrimSuffix(text, "\n")
	}
	p.add(at, at, text)
}

// --- diff ---

func isBlock(n *yaml.Node) bool { return n.Style&yaml.FlowStyle == 0 && len(n.Content) > 0 }

func (p *patcher) diff(old, new *yaml.Node, s slot) error {
	if equalNodes(old, new) {
		return nil
	}
	if old.Kind == yaml.AliasNode || new.Kind == yaml.AliasNode || old.Anchor != "" {
		return errUnsupported
	}
	switch {
	case old.Kind == yaml.ScalarNode && new.Kind == yaml.ScalarNode:
		return p.replaceScalar(old, new, s)
	case old.Kind == yaml.MappingNode && new.Kind == yaml.MappingNode && isBlock(old) && len(new.Content) > 0:
		return p.diffMapping(old, new, s)
	case old.Kind == yaml.SequenceNode && new.Kind == yaml.SequenceNode && isBlock(old) && len(new.Content) > 0:
		return p.diffSeq(old, new, s)
	}
	return p.replaceNode(old, new, s)
}

func (p *patcher) replaceScalar(old, new *yaml.Node, s slot) error {
	start := p.pos(old)
	end, err := p.scalarEnd(old, s.indent)
	if err != nil {
		return err
	}
	r := *new
	r.HeadComment, r.LineComment, r.FootComment = "", "", ""
	if r.Style == 0 && old.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && r.ShortTag() == "!!str" && !strings.Contains(r.Value, "\n") {
		r.Style = old.Style & (yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle)
	}
	text, err := p.renderInline(&r, s.indent)
	if err != nil {
		return err
	}
	src := p.f.Src
	if start == end {
		if start > 0 && src[start-1] != ' ' {
			text = " " + text
		}
		if end < len(src) && src[end] == '#' {
			text += " "
		}
	}
	p.add(start, end, text)
	return nil
}

func (p *patcher) diffMapping(old, new *yaml.Node, s slot) error {
	keyCol := old.Content[0].Column - 1
	newIdx := map[string]int{}
	for i := 0; i+1 < len(new.Content); i += 2 {
		if new.Content[i].Kind != yaml.ScalarNode {
			return errUnsupported
		}
		newIdx[new.Content[i].Value] = i
	}
	oldKeys := map[string]bool{}
	survivors := 0
	for i := 0; i+1 < len(old.Content); i += 2 {
		k := old.Content[i]
		if k.Kind != yaml.ScalarNode {
			return errUnsupported
		}
		oldKeys[k.Value] = true
		if _, ok := newIdx[k.Value]; ok {
			survivors++
		}
	}
	if survivors == 0 {
		return p.replaceNode(old, new, s)
	}
	for i := 0; i+1 < len(old.Content); i += 2 {
		k, v := old.Content[i], old.Content[i+1]
		j, ok := newIdx[k.Value]
		if ok {
			if err := p.diff(v, new.Content[j+1], slot{kind: slotMapValue, key: k, indent: keyCol}); err != nil {
				return err
			}
			continue
		}
		ks := p.pos(k)
		if !p.firstOnLine(ks) {
			return errUnsupported
		}
		start := p.extendOverComment(p.lineStartOf(ks), k.HeadComment)
		var end int
		var err error
		if isEmptyNull(v) {
			end, err = p.colonEnd(k)
		} else {
			end, err = p.nodeEnd(v, keyCol)
		}
		if err != nil {
			return err
		}
		p.add(start, p.nextLine(end), "")
	}
	// New keys go where they are in new: each run of added keys right
	// after the existing key that precedes it (or before the first key).
	oldIdx := map[string]int{}
	for i := 0; i+1 < len(old.Content); i += 2 {
		oldIdx[old.Content[i].Value] = i
	}
	anchor := -1 // index in old.Content of the preceding surviving key
	var run []*yaml.Node
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		text, err := p.renderBlock(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: run}, keyCol)
		if err != nil {
			return err
		}
		var at int
		if anchor < 0 {
			first := old.Content[0]
			at = p.lineStartOf(p.pos(first))
			if !p.firstOnLine(p.pos(first)) {
				return errUnsupported
			}
			if s.kind != slotRoot {
				at = p.extendOverComment(at, first.HeadComment)
			}
		} else {
			k, v := old.Content[anchor], old.Content[anchor+1]
			var end int
			var err error
			if isEmptyNull(v) {
				end, err = p.colonEnd(k)
			} else {
				end, err = p.nodeEnd(v, keyCol)
			}
			if err != nil {
				return err
			}
			at = p.afterNestedComments(p.nextLine(end), keyCol)
		}
		p.insertLines(at, text+"\n")
		run = nil
		return nil
	}
	for i := 0; i+1 < len(new.Content); i += 2 {
		k := new.Content[i].Value
		if oi, ok := oldIdx[k]; ok {
			if err := flush(); err != nil {
				return err
			}
			anchor = oi
			continue
		}
		run = append(run, new.Content[i], new.Content[i+1])
	}
	return flush()
}

// namedItems indexes a sequence of mappings by their unique "name" field.
func namedItems(seq *yaml.Node) (map[string]int, bool) {
	idx := map[string]int{}
	for i, it := range seq.Content {
		name, ok := itemName(it)
		if !ok {
			return nil, false
		}
		if _, dup := idx[name]; dup {
			return nil, false
		}
		idx[name] = i
	}
	return idx, len(idx) > 0
}

func itemName(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.MappingNode {
		return "", false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode && n.Content[i+1].Value != "" {
			return n.Content[i+1].Value, true
		}
	}
	return "", false
}

func (p *patcher) diffSeq(old, new *yaml.Node, s slot) error {
	dashCol := old.Column - 1
	dashes := make([]int, len(old.Content))
	for i, it := range old.Content {
		d, err := p.dashOf(it)
		if err != nil {
			return err
		}
		dashes[i] = d
	}
	itemSlot := slot{kind: slotSeqItem, indent: dashCol}
	seqEnd := func() (int, error) {
		e, err := p.nodeEnd(old, s.indent)
		if err != nil {
			return 0, err
		}
		return p.afterNestedComments(p.nextLine(e), dashCol), nil
	}
	oldNames, okOld := namedItems(old)
	newNames, okNew := namedItems(new)
	if okOld && okNew {
		// Common items must keep their relative order.
		last := -1
		common := 0
		for _, it := range old.Content {
			name, _ := itemName(it)
			if j, ok := newNames[name]; ok {
				if j < last {
					return p.replaceNode(old, new, s)
				}
				last = j
				common++
			}
		}
		if common == 0 {
			return p.replaceNode(old, new, s)
		}
		for i, it := range old.Content {
			name, _ := itemName(it)
			if j, ok := newNames[name]; ok {
				if err := p.diff(it, new.Content[j], itemSlot); err != nil {
					return err
				}
				continue
			}
			end, err := p.nodeEnd(it, dashCol)
			if err != nil {
				return err
			}
			start := p.extendOverComment(p.lineStartOf(dashes[i]), headComment(it))
			p.add(start, p.nextLine(end), "")
		}
		// New items go before the next item they precede in new, or last.
		pending := []*yaml.Node{}
		flush := func(at int) error {
			if len(pending) == 0 {
				return nil
			}
			text, err := p.renderItems(pending, dashCol)
			if err != nil {
				return err
			}
			p.insertLines(at, text)
			pending = pending[:0]
			return nil
		}
		for _, it := range new.Content {
			name, _ := itemName(it)
			if oi, ok := oldNames[name]; ok {
				if err := flush(p.extendOverComment(p.lineStartOf(dashes[oi]), headComment(old.Content[oi]))); err != nil {
					return err
				}
				continue
			}
			pending = append(pending, it)
		}
		if len(pending) > 0 {
			at, err := seqEnd()
			if err != nil {
				return err
			}
			return flush(at)
		}
		return nil
	}
	n := min(len(old.Content), len(new.Content))
	for i := 0; i < n; i++ {
		if len(old.Content) != len(new.Content) && !equalNodes(old.Content[i], new.Content[i]) {
			return p.replaceNode(old, new, s)
		}
	}
	for i := 0; i < n; i++ {
		if err := p.diff(old.Content[i], new.Content[i], itemSlot); err != nil {
			return err
		}
	}
	switch {
	case len(new.Content) > len(old.Content):
		text, err := p.renderItems(new.Content[n:], dashCol)
		if err != nil {
			return err
		}
		at, err := seqEnd()
		if err != nil {
			return err
		}
		p.insertLines(at, text)
	case len(new.Content) < len(old.Content):
		at, err := seqEnd()
		if err != nil {
			return err
		}
		p.add(p.lineStartOf(dashes[n]), at, "")
	}
	return nil
}

func headComment(n *yaml.Node) string {
	if n.HeadComment != "" {
		return n.HeadComment
	}
	if n.Kind == yaml.MappingNode && len(n.Content) > 0 {
		return n.Content[0].HeadComment
	}
	return ""
}

func (p *patcher) replaceNode(old, new *yaml.Node, s slot) error {
	switch s.kind {
	case slotMapValue:
		start, err := p.colonEnd(s.key)
		if err != nil {
			return err
		}
		end := start
		if !isEmptyNull(old) {
			if end, err = p.nodeEnd(old, s.indent); err != nil {
				return err
			}
		}
		var text string
		switch {
		case (new.Kind == yaml.MappingNode || new.Kind == yaml.SequenceNode) && isBlock(new):
			ind := s.indent + p.style.indent
			if new.Kind == yaml.SequenceNode && !p.style.wide {
				ind = s.indent
			}
			body, err := p.renderBlock(new, ind)
			if err != nil {
				return err
			}
			text = "\n" + body
		default:
			body, err := p.renderInline(new, s.indent)
			if err != nil {
				return err
			}
			text = " " + body
		}
		p.add(start, end, text)
		return nil
	case slotSeqItem:
		start := p.pos(old)
		end, err := p.nodeEnd(old, s.indent)
		if err != nil {
			return err
		}
		var text string
		if new.Kind == yaml.MappingNode && isBlock(new) {
			body, err := p.renderBlock(new, 0)
			if err != nil {
				return err
			}
			text = indentLines(body, old.Column-1, true)
		} else {
			if text, err = p.renderInline(new, s.indent); err != nil {
				return err
			}
		}
		p.add(start, end, text)
		return nil
	}
	return errUnsupported
}

// --- rendering ---

// quoteYAML11 double-quotes string scalars that YAML 1.1 parsers (such as
// the one Kubernetes tooling uses) would read as something else: "on",
// "yes", "0x1f", … stay strings everywhere.
func quoteYAML11(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Style == 0 && n.ShortTag() == "!!str" && yaml.IsYaml1_1NonString(n) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteYAML11(c)
	}
}

func (p *patcher) encode(n *yaml.Node) (string, error) {
	n = deepCopy(n)
	quoteYAML11(n)
	var buf bytes.Buffer
	enc := newEncoder(&buf, p.style)
	if err := enc.Encode(n); err != nil {
		return "", fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("encode yaml: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// renderBlock renders n in block style with every line indented by indent.
func (p *patcher) renderBlock(n *yaml.Node, indent int) (string, error) {
	out, err := p.encode(n)
	if err != nil {
		return "", err
	}
	return indentLines(out, indent, false), nil
}

// renderInline renders n on the current line (scalars keep their style;
// collections in flow style). Continuation lines of multi-line scalars are
// indented past indent.
func (p *patcher) renderInline(n *yaml.Node, indent int) (string, error) {
	c := deepCopy(n)
	clearComments(c)
	if c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode {
		c.Style |= yaml.FlowStyle
	}
	out, err := p.encode(c)
	if err != nil {
		return "", err
	}
	return indentLines(out, max(indent, 0), true), nil
}

// renderItems renders sequence items as "- item" lines at column dashCol.
func (p *patcher) renderItems(items []*yaml.Node, dashCol int) (string, error) {
	var b strings.Builder
	for _, it := range items {
		var body string
		var err error
		// A head comment goes above the dash, not between dash and key.
		if hc := headComment(it); hc != "" {
			it = deepCopy(it)
			it.HeadComment = ""
			if it.Kind == yaml.MappingNode && len(it.Content) > 0 {
				it.Content[0].HeadComment = ""
			}
			for _, l := range strings.Split(hc, "\n") {
				b.WriteString(strings.Repeat(" ", dashCol) + l + "\n")
			}
		}
		if it.Kind == yaml.MappingNode && isBlock(it) {
			body, err = p.encode(it)
		} else {
			body, err = p.renderInline(it, 0)
		}
		if err != nil {
			return "", err
		}
		for i, line := range strings.Split(body, "\n") {
			switch {
			case i == 0:
				b.WriteString(strings.Repeat(" ", dashCol) + "- " + line)
			case line == "":
			default:
				b.WriteString(strings.Repeat(" ", dashCol+2) + line)
			}
			b.WriteString("\n")
		}
	}
	return b.String(), nil
}

// indentLines prefixes lines with n spaces (all lines, or all but the first).
func indentLines(s string, n int, skipFirst bool) string {
	if n <= 0 {
		return s
	}
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if (i == 0 && skipFirst) || l == "" {
			continue
		}
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

func clearComments(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		clearComments(c)
	}
}
