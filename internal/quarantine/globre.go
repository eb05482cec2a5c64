package quarantine

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gobwas/glob/syntax"
)

// globRegexp translates a quarantine_files glob (gobwas's syntax, with "/"
// as the separator, as glob.Compile(pattern, '/') reads it: its own lexer
// tokenizes it) into a regular expression that matches the same paths.
// Go's regexp matches in time linear in the path, where the glob's
// backtracking matcher can take time of the order of len(path) to the power
// of its wildcards: with three, a file name of a few thousand bytes that an
// agent chose kept a worker for minutes. FuzzGlobRegexpMatchesGlob keeps the
// two in step; a pattern this does not translate is an error, and the
// caller matches with the glob.
func globRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	lex := syntax.NewLexer(pattern)
	depth := 0
	for {
		tok := lex.Next()
		switch tok.Type {
		case syntax.EOF:
			if depth != 0 {
				return nil, errors.New("unclosed {")
			}
			b.WriteString(`\z`)
			return regexp.Compile(b.String())
		case syntax.Text:
			b.WriteString(regexp.QuoteMeta(tok.Data))
		case syntax.Any: // *: any run within a path segment
			b.WriteString(`[^/]*`)
		case syntax.Super: // **: any run, across segments
			b.WriteString(`.*`)
		case syntax.Single: // ?: one character, not the separator
			b.WriteString(`[^/]`)
		case syntax.TermsOpen:
			depth++
			b.WriteString(`(?:`)
		case syntax.TermSeparator:
			if depth == 0 {
				return nil, errors.New("`,` outside {}")
			}
			b.WriteString(`|`)
		case syntax.TermsClose:
			if depth == 0 {
				return nil, errors.New("`}` outside {}")
			}
			depth--
			b.WriteString(`)`)
		case syntax.RangeOpen:
			class, err := rangeClass(lex)
			if err != nil {
				return nil, err
			}
			b.WriteString(class)
		default:
			return nil, fmt.Errorf("token %v", tok)
		}
	}
}

// rangeClass reads a [...] after its `[`, as gobwas's parseRange does: a
// list of characters or one lo-hi range, negated by `!`.
func rangeClass(lex *syntax.Lexer) (string, error) {
	var (
		not    bool
		lo, hi rune = -1, -1
		chars  string
		text   bool
	)
	for {
		tok := lex.Next()
		switch tok.Type {
		case syntax.Not:
			not = true
		case syntax.RangeLo, syntax.RangeHi:
			r, w := utf8.DecodeRuneInString(tok.Data)
			if len(tok.Data) != w {
				return "", errors.New("range bound of more than one character")
			}
			if tok.Type == syntax.RangeLo {
				lo = r
			} else {
				hi = r
			}
		case syntax.RangeBetween:
		case syntax.Text:
			chars, text = tok.Data, true
		case syntax.RangeClose:
			var b strings.Builder
			b.WriteByte('[')
			if not {
				b.WriteByte('^')
			}
			switch {
			case text && lo < 0 && hi < 0:
				for _, r := range chars {
					fmt.Fprintf(&b, `\x{%x}`, r)
				}
			case !text && lo >= 0 && hi >= lo:
				fmt.Fprintf(&b, `\x{%x}-\x{%x}`, lo, hi)
			default:
				return "", errors.New("could not parse range")
			}
			b.WriteByte(']')
			return b.String(), nil
		default:
			return "", fmt.Errorf("token %v in a range", tok)
		}
	}
}
