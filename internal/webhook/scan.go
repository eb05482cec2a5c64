package webhook

import (
	"encoding/binary"
	"math/bits"

	"github.com/valyala/fastjson/fastfloat"
)

// maxDepth bounds the nesting of a payload, as encoding/json (processing)
// does: deeper is refused before any recursion could exhaust the stack.
const maxDepth = 10000

// envScanner checks a payload's JSON and picks its routing fields in one
// pass (see ParseEnvelope). It accepts exactly RFC 8259 JSON, as
// encoding/json does: strings without raw control characters and with
// valid escapes only, numbers -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?,
// the literals true, false and null, whitespace of space, tab, CR and LF.
// Like fastjson's Get, the first occurrence of a key counts.
type envScanner struct {
	b     []byte
	i     int
	depth int
	deep  bool // nested deeper than maxDepth
	// escaped: a payload key or a routing key or value is written with
	// escapes, so a routing field cannot be told from its raw bytes.
	escaped bool
	seen    uint8 // routing keys of the payload met (bit per topKeys index)

	action       string
	installation int64
	repository   string
	numbers      [2]int64 // pull_request.number, issue.number
	hasNumber    [2]bool  // pull_request, issue is an object
	headSHAs     [3]string
}

// topKeys are the payload's routing keys, by their seen bit.
var topKeys = [...]string{"action", "installation", "repository", "pull_request", "issue", "check_run", "check_suite", "merge_group"}

// scan reports whether the body is a JSON object whose routing fields the
// scanner could read (then envelope has them).
func (s *envScanner) scan() bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	if !s.object(s.topMember) {
		return false
	}
	s.ws()
	return s.i == len(s.b) && !s.escaped
}

// envelope is what ParseEnvelope's fastjson reading makes of the same
// fields: a pull request's number before an issue's unless it is 0, the
// first head SHA that is not empty of check_run, check_suite and
// merge_group.
func (s *envScanner) envelope() Envelope {
	e := Envelope{Action: s.action, Installation: s.installation, Repository: s.repository}
	for k, n := range s.numbers {
		if s.hasNumber[k] && e.Number == 0 {
			e.Number = intOf(n)
		}
	}
	for _, sha := range s.headSHAs {
		if e.HeadSHA == "" {
			e.HeadSHA = sha
		}
	}
	return e
}

// intOf is fastjson's GetInt of a number it read as n: 0 when it does not
// fit an int.
func intOf(n int64) int {
	if int64(int(n)) != n {
		return 0
	}
	return int(n)
}

// object scans an object from its '{', handing each member's key (raw,
// and whether it has escapes) to member, which scans the value.
func (s *envScanner) object(member func(key []byte, escaped bool) bool) bool {
	if empty, ok := s.enter('}'); !ok || empty {
		return ok
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		key, esc, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !member(key, esc) {
			return false
		}
		if more, ok := s.more('}'); !more {
			return ok
		}
	}
}

// enter takes the opening byte of an object or array and reports whether
// it is empty (its closing byte end follows, and is taken too); ok is false
// past maxDepth.
func (s *envScanner) enter(end byte) (empty, ok bool) {
	if s.depth++; s.depth > maxDepth {
		s.deep = true
		return false, false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == end {
		s.i++
		s.depth--
		return true, true
	}
	return false, true
}

// more takes what follows an element of an object or array: a comma (more)
// or its closing byte end; ok is false for anything else.
func (s *envScanner) more(end byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		s.ws()
		return true, true
	case end:
		s.i++
		s.depth--
		return false, true
	}
	return false, false
}

// topMember scans a member of the payload object.
func (s *envScanner) topMember(key []byte, esc bool) bool {
	if esc {
		s.escaped = true
		return s.value()
	}
	k := -1
	for j, name := range topKeys {
		if string(key) == name {
			k = j
			break
		}
	}
	if k < 0 || s.seen&(1<<k) != 0 {
		return s.value()
	}
	s.seen |= 1 << k
	switch k {
	case 0: // action: a string
		if s.peek() == '"' {
			raw, esc, ok := s.str()
			if esc {
				s.escaped = true
			}
			s.action = string(raw)
			return ok
		}
		return s.value()
	case 1:
		return s.routing("id", func(raw []byte) { s.installation = fastfloat.ParseInt64BestEffort(string(raw)) }, nil)
	case 2:
		return s.routing("full_name", nil, func(v string) { s.repository = v })
	case 3, 4:
		n := k - 3
		if s.peek() == '{' {
			s.hasNumber[n] = true
		}
		return s.routing("number", func(raw []byte) { s.numbers[n] = fastfloat.ParseInt64BestEffort(string(raw)) }, nil)
	default:
		n := k - 5
		return s.routing("head_sha", nil, func(v string) { s.headSHAs[n] = v })
	}
}

// routing scans the value of a routing key: when it is an object, the
// first member named want is handed to number (if it is a number) or str
// (if it is a string).
func (s *envScanner) routing(want string, number func([]byte), str func(string)) bool {
	if s.peek() != '{' {
		return s.value()
	}
	found := false
	return s.object(func(key []byte, esc bool) bool {
		if esc {
			s.escaped = true
			return s.value()
		}
		if found || string(key) != want {
			return s.value()
		}
		found = true
		switch c := s.peek(); {
		case number != nil && (c == '-' || '0' <= c && c <= '9'):
			start := s.i
			if !s.number() {
				return false
			}
			number(s.b[start:s.i])
			return true
		case str != nil && c == '"':
			raw, esc, ok := s.str()
			if esc {
				s.escaped = true
			}
			str(string(raw))
			return ok
		}
		return s.value()
	})
}

func (s *envScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// ws skips whitespace, eight spaces at a time where it can (payloads are
// often indented).
func (s *envScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ':
			if s.i+8 <= len(s.b) && binary.LittleEndian.Uint64(s.b[s.i:]) == 0x2020202020202020 {
				s.i += 8
				continue
			}
			s.i++
		case '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans any value.
func (s *envScanner) value() bool {
	switch s.peek() {
	case '{':
		return s.object(func([]byte, bool) bool { return s.value() })
	case '[':
		return s.array()
	case '"':
		_, _, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return s.number()
}

func (s *envScanner) array() bool {
	if empty, ok := s.enter(']'); !ok || empty {
		return ok
	}
	for {
		if !s.value() {
			return false
		}
		if more, ok := s.more(']'); !more {
			return ok
		}
	}
}

func (s *envScanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// number scans -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *envScanner) number() bool {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits scans [0-9]* and reports whether there was one.
func (s *envScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// str scans a string from its '"' and returns its raw contents and whether
// they have escapes. It looks at eight bytes at a time for the next quote,
// backslash or control character: payloads are mostly text.
func (s *envScanner) str() (raw []byte, escaped, ok bool) {
	s.i++ // '"'
	start := s.i
	for {
		s.i = nextSpecial(s.b, s.i)
		if s.i >= len(s.b) {
			return nil, false, false
		}
		switch c := s.b[s.i]; {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !hex4(s.b[s.i+2:s.i+6]) {
					return nil, false, false
				}
				s.i += 6
			default:
				return nil, false, false
			}
		default: // a control character
			return nil, false, false
		}
	}
}

// nextSpecial is the index from i on of the first quote, backslash or byte
// below 0x20 in b, or len(b). In each word of eight bytes, the lowest byte
// that special flags is one (the bit tricks flag no byte falsely below a
// true one).
func nextSpecial(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}

func hex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// special flags, with its high bit, each byte of a word of eight that is a
// quote, a backslash or below 0x20: with no false negatives, and false
// positives only above a true one (a borrow travels up from it).
func special(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) &^ v & highs }
	return zero(x^(ones*'"')) | zero(x^(ones*'\\')) | (x-0x20*ones)&^x&highs
}
