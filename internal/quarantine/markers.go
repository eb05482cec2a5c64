package quarantine

import (
	"regexp"
	"strings"
)

// language is how one language family skips tests: the comment and string
// syntax of a line, and the markers. Languages are package-level values built
// once and never modified.
type language struct {
	name        string // kind prefix: "go", "python", "js", ...
	lineComment string // "//" or "#"
	quotes      string // characters that open a string literal
	raw         byte   // quote character of raw strings (no escapes), or 0
	// hints: a line without any of these substrings has no marker, and is
	// not looked at further.
	hints   []string
	markers []marker
}

// marker is a regular expression whose first group names the marker; the
// kind is the language's name, ":", prefix and the group.
type marker struct {
	re     *regexp.Regexp
	prefix string
	suffix string
}

func m(prefix, re, suffix string) marker {
	return marker{re: regexp.MustCompile(re), prefix: prefix, suffix: suffix}
}

var (
	goLang = &language{
		name: "go", lineComment: "//", quotes: "\"'`", raw: '`',
		hints: []string{".Skip"},
		markers: []marker{
			m("t.", `(?:\b(?:t|tb|b|tt|f)|\bT\(\))\.(Skip|SkipNow|Skipf)\s*\(`, ""),
		},
	}
	pythonLang = &language{
		name: "python", lineComment: "#", quotes: `"'`,
		hints: []string{"skip", "xfail", "expectedFailure", "Skip"},
		markers: []marker{
			m("", `\b(pytest\.mark\.(?:skipif|skip|xfail))\b`, ""),
			m("", `\b(pytest\.(?:skip|xfail|importorskip))\s*\(`, ""),
			m("", `\b(unittest\.(?:skipIf|skipUnless|skip|expectedFailure))\b`, ""),
			m("", `\bself\.(skipTest)\s*\(`, ""),
			// from pytest import mark; from unittest import skip, SkipTest
			m("", `(?:^|[^\w.])(mark\.(?:skipif|skip|xfail))\b`, ""),
			m("@", `@(skipIf|skipUnless|skip|expectedFailure)\b`, ""),
			m("", `\b((?:unittest\.)?SkipTest)\b`, ""),
		},
	}
	jsLang = &language{
		name: "js", lineComment: "//", quotes: "\"'`",
		hints: []string{".skip", ".todo", ".only", ".fixme", "xit", "xtest", "xdescribe", "xcontext", "xspecify", "fit", "fdescribe", "pending"},
		markers: []marker{
			// .only runs one test and so skips all the others.
			m("", `\b((?:it|test|describe|context|suite|specify)(?:\.concurrent|\.describe)?\.(?:skipIf|skip|todo|only|fixme))\b`, ""),
			m("", `\b(xit|xtest|xdescribe|xcontext|xspecify)(?:\.each)?\s*\(`, ""),
			m("", `(?:^|[^\w.$])(fit|fdescribe)\s*\(`, ""),
			m("this.", `\bthis\.(skip)\s*\(`, ""),
			m("", `^\s*(pending)\s*\(`, ""),
		},
	}
	jvmMarkers = []marker{m("@", `@(?:[\w.]+\.)?(Disabled|Ignore)\b`, "")}
	javaLang   = &language{name: "java", lineComment: "//", quotes: `"'`, hints: []string{"@"}, markers: jvmMarkers}
	kotlinLang = &language{name: "kotlin", lineComment: "//", quotes: `"'`, hints: []string{"@"}, markers: jvmMarkers}
	rubyLang   = &language{
		name: "ruby", lineComment: "#", quotes: `"'`,
		hints: []string{"skip", "pending", "xit", "xspecify", "xdescribe", "xcontext"},
		markers: []marker{
			// A call, not a variable or hash key: `skip = false` and
			// `pending: 1` are no markers.
			m("", `^\s*(skip|pending|xit|xspecify|xdescribe|xcontext)(?:\s*$|\s*[(\x22']|\s+[^\s=:])`, ""),
			m("", `\b(skip|pending):\s*(?:true\b|["'])`, ""),
			m("", `,\s*:(skip|pending)\b`, ""),
		},
	}
	rustLang = &language{
		name: "rust", lineComment: "//", quotes: `"`,
		hints: []string{"ignore"},
		markers: []marker{
			m("#[", `#\[\s*(ignore)\b`, "]"),
		},
	}
	csharpLang = &language{
		name: "csharp", lineComment: "//", quotes: `"'`,
		hints: []string{"Skip", "Ignore"},
		markers: []marker{
			m("", `\b(Fact|Theory)\s*\([^)]*\bSkip\s*=`, "(Skip)"),
			// Inside an attribute list: [Ignore], [Test, Ignore("…")];
			// not an argument named Ignore.
			m("", `\[(?:[^\]]*,)?\s*(Ignore)\b`, ""),
		},
	}
)

// languages maps a file extension to its language.
var languages = map[string]*language{
	"go": goLang,
	"py": pythonLang,
	"js": jsLang, "jsx": jsLang, "mjs": jsLang, "cjs": jsLang,
	"ts": jsLang, "tsx": jsLang, "mts": jsLang, "cts": jsLang,
	"java": javaLang,
	"kt":   kotlinLang, "kts": kotlinLang,
	"rb": rubyLang,
	"rs": rustLang,
	"cs": csharpLang,
}

// languageOf returns the language of path by its extension, or nil.
func languageOf(path string) *language {
	base := path[strings.LastIndexByte(path, '/')+1:]
	dot := strings.LastIndexByte(base, '.')
	if dot < 0 {
		return nil
	}
	return languages[base[dot+1:]]
}

// marker returns the kind of the first marker on line, or "".
func (l *language) marker(line string) string {
	hinted := false
	for _, h := range l.hints {
		if strings.Contains(line, h) {
			hinted = true
			break
		}
	}
	if !hinted {
		return ""
	}
	code := l.code(line)
	for _, mk := range l.markers {
		if g := mk.re.FindStringSubmatch(code); g != nil {
			return l.name + ":" + mk.prefix + g[1] + mk.suffix
		}
	}
	return ""
}

// code returns line without its comment and with the contents of its string
// literals blanked out (quotes kept), so that markers are looked for in code
// only. Block comments (/* … */) are removed where they open and close on
// the line, and to its end where they do not; a line starting with "*" in a
// "//" language is taken for the inside of a block comment.
func (l *language) code(line string) string {
	if l.lineComment == "//" {
		t := strings.TrimLeft(line, " \t")
		if t == "*" || strings.HasPrefix(t, "* ") || strings.HasPrefix(t, "*/") || strings.HasPrefix(t, "*\t") {
			return ""
		}
	}
	b := []byte(line)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case strings.IndexByte(l.quotes, c) >= 0:
			j := i + 1
			for ; j < len(b) && b[j] != c; j++ {
				if b[j] == '\\' && c != l.raw && j+1 < len(b) {
					b[j] = ' '
					j++
				}
				b[j] = ' '
			}
			i = j
		case l.lineComment == "#" && c == '#':
			return string(b[:i])
		case l.lineComment == "//" && c == '/' && i+1 < len(b) && b[i+1] == '/':
			return string(b[:i])
		case l.lineComment == "//" && c == '/' && i+1 < len(b) && b[i+1] == '*':
			end := strings.Index(string(b[i+2:]), "*/")
			if end < 0 {
				return string(b[:i])
			}
			for k := i; k < i+2+end+2; k++ {
				b[k] = ' '
			}
			i += 2 + end + 1
		}
	}
	return string(b)
}
