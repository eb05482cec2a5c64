package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
)

// Envelope is the part of a webhook payload the intake reads to route a
// delivery. Processing decodes the payload again into go-github types.
type Envelope struct {
	Action       string
	Installation int64  // installation.id
	Repository   string // repository.full_name
	Number       int    // pull_request.number, else issue.number
	HeadSHA      string // head_sha of check_run, else check_suite, else merge_group
}

// parsers are reused across requests by parseEnvelopeSlow (fastjson, already
// linked in through OPA, validates and indexes a 25 KB payload about ten
// times faster than encoding/json; envScanner twice as fast again).
var parsers fastjson.ParserPool

// ParseEnvelope validates body as JSON and decodes the routing fields. A
// body that is not a JSON object is an error.
//
// One pass (envScanner) checks the JSON as encoding/json does and picks the
// routing fields out on the way; it skips the text that makes up most of a
// payload eight bytes at a time. Before it, fastjson's validator and then
// its parser took ~95 µs for 30 KB, a quarter of the intake's CPU. What
// that pass does not settle goes to parseEnvelopeSlow: a malformed body
// (for its message, and what fastjson takes that the scanner does not,
// which the fuzz test says is nothing), or a routing key or value written
// with escapes (fastjson decodes them). A body nested deeper than
// encoding/json takes is refused before anything recurses into it.
func ParseEnvelope(body []byte) (Envelope, error) {
	s := envScanner{b: body}
	if s.scan() {
		return s.envelope(), nil
	}
	if s.deep {
		return Envelope{}, fmt.Errorf("malformed JSON payload: nested deeper than %d levels", maxDepth)
	}
	return parseEnvelopeSlow(body)
}

// parseEnvelopeSlow is ParseEnvelope for what the scanner does not take: a
// payload that is not JSON, or whose routing keys or values are written
// with escapes. It validates with encoding/json, as processing reads the
// payload, then picks the fields with fastjson. (fastjson's own validator
// is lenient about a raw control character in a string before an escape,
// also a CR, LF or tab: FuzzParseEnvelope found both.) It is the rare path:
// ~100 µs for 30 KB.
func parseEnvelopeSlow(body []byte) (Envelope, error) {
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v) // says where and why
		return Envelope{}, fmt.Errorf("malformed JSON payload: %w", err)
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return Envelope{}, fmt.Errorf("malformed JSON payload: %w", err)
	}
	if v.Type() != fastjson.TypeObject {
		return Envelope{}, fmt.Errorf("malformed JSON payload: want an object, got %s", v.Type())
	}
	object := func(key string) *fastjson.Value {
		if o := v.Get(key); o != nil && o.Type() == fastjson.TypeObject {
			return o
		}
		return nil
	}
	e := Envelope{Action: string(v.GetStringBytes("action"))}
	if o := object("installation"); o != nil {
		e.Installation = o.GetInt64("id")
	}
	if o := object("repository"); o != nil {
		e.Repository = string(o.GetStringBytes("full_name"))
	}
	for _, k := range [...]string{"pull_request", "issue"} {
		if o := object(k); o != nil && e.Number == 0 {
			e.Number = o.GetInt("number")
		}
	}
	for _, k := range [...]string{"check_run", "check_suite", "merge_group"} {
		if o := object(k); o != nil && e.HeadSHA == "" {
			e.HeadSHA = string(o.GetStringBytes("head_sha"))
		}
	}
	return e, nil
}

// Key is the ordering key of a delivery: deliveries with equal keys are
// processed one at a time in order. Pull-request scoped events share the
// key of their pull request; check and merge-group events that carry no PR
// number are keyed by their head SHA.
func (e Envelope) Key(event string) string {
	switch {
	case e.Number != 0:
		return e.Repository + "#" + strconv.Itoa(e.Number)
	case e.HeadSHA != "":
		return e.Repository + "@" + e.HeadSHA
	case e.Repository != "":
		return e.Repository
	case e.Installation != 0:
		return "installation/" + strconv.FormatInt(e.Installation, 10)
	}
	return event
}
